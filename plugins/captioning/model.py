"""The captioner: a CNN encoder and a GRU decoder with attention over image regions.

As in the TensorFlow tutorial the decoder attends to a grid of encoder features; here the
attention reads the GRU's output at each step (Luong style), so the decoder's one-step
function — ``token, state, regions -> probabilities, state`` — computes exactly what the
training model computes for every position. That step function is what browsers and
phones run in their decoding loop.
"""

from __future__ import annotations


def build_captioner(vocab_size: int, image_size: int, caption_length: int, units: int = 128,
                    embedding_dim: int = 64, filters: tuple[int, ...] = (32, 64, 128)):
    """The training model: ``[image (s, s, 3) 0..255, tokens (caption_length - 1,)] ->
    next-token probabilities`` (teacher forcing); :func:`caption_step` makes its decoder step."""
    import keras

    image = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(image)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool_{i + 1}")(x)
    side = image_size // 2 ** len(filters)
    if side < 1:
        raise ValueError(f"image_size={image_size} is too small for {len(filters)} pooling steps")
    x = keras.layers.Reshape((side * side, filters[-1]), name="grid")(x)
    regions = keras.layers.Dense(units, activation="relu", name="regions")(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="summary")(regions)
    first_state = keras.layers.Dense(units, activation="tanh", name="first_state")(pooled)

    embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
    gru = keras.layers.GRU(units, return_sequences=True, name="decoder")
    attention = keras.layers.Attention(name="attention")
    join = keras.layers.Concatenate(name="join")
    head = keras.layers.Dense(vocab_size, activation="softmax", name="next_token")

    tokens = keras.Input((caption_length - 1,), dtype="int32", name="tokens")
    sequence = gru(embedding(tokens), initial_state=first_state)
    probabilities = head(join([sequence, attention([sequence, regions])]))
    return keras.Model([image, tokens], probabilities, name="captioner")


def caption_step(train, start_id: int):
    """One model for export: ``[image, token (1,), state (units,)] -> [probabilities, next_state]``.

    It encodes the image on every call and, when ``token`` is ``<start>``, begins from the
    image's first state instead of ``state``: a page or an app only loops
    ``p, state = step(image, token, state)`` from ``token = <start>`` and a zero state.
    """
    import keras
    from keras import ops

    image = keras.Input(train.get_layer("scale").input.shape[1:], name="image")
    x = image
    for layer in train.layers:
        if layer.name == "scale" or layer.name.startswith(("conv_", "pool_")) or layer.name in ("grid", "regions"):
            x = layer(x)
    regions = x
    first_state = train.get_layer("first_state")(train.get_layer("summary")(regions))
    units = first_state.shape[-1]
    token = keras.Input((1,), dtype="int32", name="token")
    state = keras.Input((units,), name="state")

    class StartOrCarry(keras.layers.Layer):
        def call(self, token, first, carried):
            starting = ops.cast(ops.equal(token, start_id), "float32")
            return starting * first + (1.0 - starting) * carried

    begun = StartOrCarry(name="start_or_carry")(token, first_state, state)
    gru, attention = train.get_layer("decoder"), train.get_layer("attention")

    class DecoderStep(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.cell = gru.cell

        def call(self, embedded, state):
            output, new_state = self.cell(embedded[:, 0], [state], training=False)
            new_state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
            return output[:, None], new_state

    output, next_state = DecoderStep(name="decoder_step")(train.get_layer("embedding")(token), begun)
    joined = train.get_layer("join")([output, attention([output, regions])])
    vocab = train.get_layer("next_token").units
    probabilities = keras.layers.Reshape((vocab,), name="probabilities")(train.get_layer("next_token")(joined))
    next_state = keras.layers.Identity(name="next_state")(next_state)
    return keras.Model([image, token, state], [probabilities, next_state], name="caption_step")
