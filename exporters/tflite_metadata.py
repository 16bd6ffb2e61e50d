"""TFLite metadata: what a .tflite file says about itself to the tools and frameworks that open it.

Netron, Model Explorer and Android Studio show a file's metadata (a name, a description, what
each input and output is); MediaPipe Tasks' ImageClassifier *needs* it: the input's
normalization, and the labels as a file packed into the model. The metadata is a flatbuffer
(schema ``metadata_schema.fbs``, file identifier ``M001``) stored in a model buffer named
``TFLITE_METADATA``; associated files (``labels.txt``) are a zip archive appended to the model.

The writer is pure Python on the ``flatbuffers`` package (mediapipe's own writer does not
import in its recent wheels), and rewrites the model through TensorFlow's flatbuffer object
API, which keeps everything else in the file, signatures included.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import flatbuffers

from tinkerflow.core.errors import TinkerflowError

METADATA_BUFFER = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
#: every field written here is in the schema's first version
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
#: the longest label this project writes into a labels file (characters)
MAX_LABEL_CHARS = 128

# the schema's union tags and enums
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1
_RGB = 1
_TENSOR_AXIS_LABELS = 2


@dataclass
class TensorInfo:
    """One input or output as the metadata describes it."""

    name: str
    description: str = ""
    image: bool = False                                # an RGB image (ImageProperties)
    normalization: tuple[list[float], list[float]] | None = None  # (mean, std) per channel
    value_range: tuple[float, float] | None = None      # Stats: min, max
    labels: list[str] | None = None                     # one label per class, packed as labels.txt


@dataclass
class ModelInfo:
    """The model's metadata; ``tensors`` are keyed by their signature names (a tensor no
    entry names gets its name alone)."""

    name: str
    description: str
    version: str
    author: str
    tensors: dict[str, TensorInfo] = field(default_factory=dict)


@dataclass
class _Subgraph:
    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


def check_labels(labels: list[str]) -> None:
    """Labels a labels file can carry: one line each, non-empty, at most
    :data:`MAX_LABEL_CHARS` characters; anything else is refused in one line."""
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise TinkerflowError(f"label {label!r} cannot go into the model's {LABELS_FILE}; expected a "
                                  "non-empty text")
        if "\n" in label or "\r" in label:
            raise TinkerflowError(f"label {label!r} has a line break; expected one line per label in the model's "
                                  f"{LABELS_FILE}")
        if len(label) > MAX_LABEL_CHARS:
            raise TinkerflowError(f"label {label[:40]!r}... has {len(label)} characters; expected at most "
                                  f"{MAX_LABEL_CHARS} in the model's {LABELS_FILE}")


def write_metadata(model_bytes: bytes, info: ModelInfo) -> bytes:
    """``model_bytes`` with ``info`` as its metadata (replacing any) and the labels file
    appended as a zip archive. Each subgraph (one per signature) is described with its
    tensors in the file's own input and output order, as the schema requires."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    files: dict[str, bytes] = {}
    for tensor in info.tensors.values():
        if tensor.labels is not None:
            check_labels(tensor.labels)
            files[LABELS_FILE] = ("\n".join(tensor.labels) + "\n").encode()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(_strip_archive(model_bytes)))
    buffer = schema.BufferT()
    buffer.data = _metadata_flatbuffer(info, _subgraphs(model, info.tensors))
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != METADATA_BUFFER]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_BUFFER
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    out = io.BytesIO(flatbuffer_utils.convert_object_to_bytearray(model))
    if files:
        out.seek(0, io.SEEK_END)
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return out.getvalue()


def packed_files(model_bytes: bytes) -> dict[str, bytes]:
    """The associated files packed into a .tflite (empty when there are none)."""
    stream = io.BytesIO(model_bytes)
    if not zipfile.is_zipfile(stream):
        return {}
    with zipfile.ZipFile(stream) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _strip_archive(model_bytes: bytes) -> bytes:
    """The flatbuffer alone, without a previously appended zip archive (the flatbuffer reader
    ignores trailing bytes, so this only matters for not carrying two archives)."""
    stream = io.BytesIO(model_bytes)
    if not zipfile.is_zipfile(stream):
        return model_bytes
    with zipfile.ZipFile(stream) as archive:
        start = min((i.header_offset for i in archive.infolist()), default=len(model_bytes))
    return model_bytes[:start]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _described(tensors: dict[str, TensorInfo], name: str) -> TensorInfo:
    return tensors.get(name) or TensorInfo(name)


def _subgraphs(model, tensors: dict[str, TensorInfo]) -> list[_Subgraph]:
    """Each subgraph's inputs and outputs in the file's order, named as its signature names them."""
    result = []
    for index, subgraph in enumerate(model.subgraphs):
        signature = next((s for s in model.signatureDefs or [] if s.subgraphIndex == index), None)
        names = {t.tensorIndex: _text(t.name) for t in (signature.inputs + signature.outputs)} if signature else {}
        described = [_described(tensors, names.get(i) or _text(subgraph.tensors[i].name))
                     for i in list(subgraph.inputs) + list(subgraph.outputs)]
        result.append(_Subgraph(_text(signature.signatureKey) if signature else _text(subgraph.name),
                                described[:len(subgraph.inputs)], described[len(subgraph.inputs):]))
    return result


# -- the metadata flatbuffer, written table by table (field slots as in metadata_schema.fbs) --

def _metadata_flatbuffer(info: ModelInfo, described: list[_Subgraph]) -> bytes:
    b = flatbuffers.Builder(1024)
    subgraphs = [_subgraph(b, s) for s in described]
    name, description, version, author, parser = (b.CreateString(s) for s in (
        info.name, info.description, info.version, info.author, MIN_PARSER_VERSION))
    subgraph_vector = _offsets(b, subgraphs)
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(1, description, 0)
    b.PrependUOffsetTRelativeSlot(2, version, 0)
    b.PrependUOffsetTRelativeSlot(3, subgraph_vector, 0)
    b.PrependUOffsetTRelativeSlot(4, author, 0)
    b.PrependUOffsetTRelativeSlot(7, parser, 0)
    b.Finish(b.EndObject(), file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _subgraph(b: flatbuffers.Builder, subgraph: _Subgraph) -> int:
    inputs = _offsets(b, [_tensor(b, t) for t in subgraph.inputs])
    outputs = _offsets(b, [_tensor(b, t) for t in subgraph.outputs])
    name = b.CreateString(subgraph.name)
    b.StartObject(10)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(2, inputs, 0)
    b.PrependUOffsetTRelativeSlot(3, outputs, 0)
    return b.EndObject()


def _tensor(b: flatbuffers.Builder, tensor: TensorInfo) -> int:
    content = _content(b, tensor.image)
    units = None
    if tensor.normalization is not None:
        mean, std = (_floats(b, values) for values in tensor.normalization)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, mean, 0)
        b.PrependUOffsetTRelativeSlot(1, std, 0)
        options = b.EndObject()
        b.StartObject(2)
        b.PrependUint8Slot(0, _NORMALIZATION_OPTIONS, 0)
        b.PrependUOffsetTRelativeSlot(1, options, 0)
        units = _offsets(b, [b.EndObject()])
    stats = None
    if tensor.value_range is not None:
        low, high = (_floats(b, [v]) for v in tensor.value_range)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, high, 0)
        b.PrependUOffsetTRelativeSlot(1, low, 0)
        stats = b.EndObject()
    files = None
    if tensor.labels is not None:
        file_name, file_description = b.CreateString(LABELS_FILE), b.CreateString("one label per output score")
        b.StartObject(5)
        b.PrependUOffsetTRelativeSlot(0, file_name, 0)
        b.PrependUOffsetTRelativeSlot(1, file_description, 0)
        b.PrependInt8Slot(2, _TENSOR_AXIS_LABELS, 0)
        files = _offsets(b, [b.EndObject()])
    name, description = b.CreateString(tensor.name), b.CreateString(tensor.description)
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(1, description, 0)
    b.PrependUOffsetTRelativeSlot(3, content, 0)
    for slot, value in ((4, units), (5, stats), (6, files)):
        if value is not None:
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
    return b.EndObject()


def _content(b: flatbuffers.Builder, image: bool) -> int:
    b.StartObject(2 if image else 0)
    if image:
        b.PrependInt8Slot(0, _RGB, 0)
    properties = b.EndObject()
    b.StartObject(3)
    b.PrependUint8Slot(0, _IMAGE_PROPERTIES if image else _FEATURE_PROPERTIES, 0)
    b.PrependUOffsetTRelativeSlot(1, properties, 0)
    return b.EndObject()


def _floats(b: flatbuffers.Builder, values) -> int:
    b.StartVector(4, len(values), 4)
    for value in reversed(list(values)):
        b.PrependFloat32(float(value))
    return b.EndVector()


def _offsets(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()
