"""The README of a deploy bundle (:mod:`.deploy`): how to load this run's files in an app,
with its own file, signature and tensor names. Python blocks in it run as they are, in the
bundle folder."""

from __future__ import annotations

import json

VARIANT_NOTES = {
    "float32": "float32 weights and arithmetic: the reference",
    "float16": "float16 weights (half the size), float32 arithmetic",
    "int8_dynamic": "int8 weights, float activations, float32 inputs and outputs",
    "int8": "integer arithmetic inside, float32 inputs and outputs",
    "uint8_io": "integer arithmetic, uint8 inputs and outputs (scale and zero point below)",
    "float32_any_batch": "float32 with any batch size (slower than the fixed batch)",
}
KOTLIN_WRITE = {"float32": ("writeFloat", "FloatArray"), "int32": ("writeInt", "IntArray"),
                "uint8": ("writeInt8", "ByteArray"), "int8": ("writeInt8", "ByteArray")}
KOTLIN_READ = {"float32": "readFloat()", "int32": "readInt()", "uint8": "readInt8()", "int8": "readInt8()"}


def render_readme(run, experiment, manifest: dict, cases: dict, info: dict, files: dict[str, int]) -> str:
    variants = manifest["variants"]
    first = next(iter(variants.values()))
    parts = [
        f"# {experiment.name} · {run.path.name}: deploy bundle",
        "",
        manifest["summary"],
        "",
        f"Exported by tinkerflow from the run `{run.path.name}`. Every file here passed the export gate: the "
        "same outputs as Keras (float files), or the same metric within the experiment's margin (quantized ones).",
        "",
        "## Files",
        "",
        "| file | bytes | what it is |",
        "|---|---:|---|",
        *[f"| `{name}` | {size:,} | {_file_note(name)} |" for name, size in files.items()],
        "| `model.json` | | each file's signature and tensors, preprocessing and postprocessing |",
        "| `golden.json` | | example inputs with the outputs LiteRT gave: run them in your app's tests |",
        "",
        "## The tensors",
        "",
        f"Every file has the signature `{first['signature']}`"
        + (f" (and {', '.join(f'`{s}`' for s in first['signatures'] if s != first['signature'])})"
           if len(first["signatures"]) > 1 else "")
        + ". Inputs and outputs by name, in the signature's order:",
        "",
        "| file | tensor | name | shape | dtype | real value |",
        "|---|---|---|---|---|---|",
    ]
    for described in variants.values():
        for kind in ("inputs", "outputs"):
            for spec in described[kind]:
                parts.append(f"| `{described['file']}` | {kind[:-1]} | `{spec['name']}` | {spec['shape']} | "
                             f"{spec['dtype']} | "
                             f"{_real(spec)} |")
    positions = first.get("input_positions")
    if positions:
        parts += ["", "Index-based APIs (Swift's `input(at:)`) take the inputs in this order: "
                  + ", ".join(f"{i}: `{name}`" for i, name in enumerate(positions)) + "; outputs: "
                  + ", ".join(f"{i}: `{spec['name']}`" for i, spec in enumerate(first["outputs"])) + "."]
    parts += ["", "What the values mean:", ""]
    for name, text in (info.get("description") or {}).items():
        parts.append(f"- `{name}`: {text}")
    for key in ("preprocessing", "postprocessing"):
        if info.get(key):
            parts.append(f"- {key}: " + _plain(info[key]))
    parts += _python(first, cases)
    parts += _kotlin(first)
    parts += _swift(first)
    if type(experiment).export_spec.image_classifier is not None:
        parts += _mediapipe(first, info)
    parts += ["", "## golden.json", "",
              "For each file: `calls`, each with `inputs` and `outputs` as `{dtype, shape, data}` (data flat, "
              "row-major) exactly as the tensors take and give them, and `tolerance`, the largest difference "
              "from those outputs a correct run shows (one step for uint8 outputs). A GPU or NPU delegate may "
              "need more.", ""]
    return "\n".join(parts)


def _file_note(name: str) -> str:
    if name.endswith(".tflite"):
        return VARIANT_NOTES.get(name[: -len(".tflite")], "TFLite model")
    return {"labels.txt": "one label per line, in the order of the scores",
            "vocabulary.json": "`tokens`: the word or token of each id"}.get(name, "")


def _real(spec: dict) -> str:
    q = spec.get("quantization")
    return f"(value - {q['zero_point']}) × {q['scale']:.6g}" if q else "as it is"


def _plain(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v if not isinstance(v, (dict, list)) else json.dumps(v)}" for k, v in value.items())
    return str(value)


def _python(first: dict, cases: dict) -> list[str]:
    feeds = ", ".join(f"{spec['name']}=..." for spec in first["inputs"])
    results = ", ".join(f"'{spec['name']}': ..." for spec in first["outputs"])
    return ["", "## Python: ai-edge-litert", "",
            "`pip install ai-edge-litert numpy`, then, in this folder (this runs every file on golden.json):", "",
            "```python",
            "import json",
            "",
            "import numpy as np",
            "from ai_edge_litert.interpreter import Interpreter",
            "",
            "golden = json.load(open(\"golden.json\"))",
            "for variant, case in golden[\"variants\"].items():",
            "    runner = Interpreter(model_path=case[\"file\"]).get_signature_runner(case[\"signature\"])",
            "    for call in case[\"calls\"]:",
            "        feeds = {name: np.array(t[\"data\"], dtype=t[\"dtype\"]).reshape(t[\"shape\"])",
            "                 for name, t in call[\"inputs\"].items()}",
            "        outputs = runner(**feeds)",
            "        for name, t in call[\"outputs\"].items():",
            "            expected = np.array(t[\"data\"], dtype=t[\"dtype\"]).reshape(t[\"shape\"])",
            "            worst = np.abs(outputs[name].astype(\"float64\") - expected).max()",
            "            assert worst <= case[\"tolerance\"], f\"{variant}: {name} is off by {worst}\"",
            "    print(f\"{case['file']}: golden.json reproduced ({len(case['calls'])} calls)\")",
            "```",
            "",
            "In an app: `runner = "
            f"Interpreter(model_path=\"{first['file']}\").get_signature_runner(\"{first['signature']}\")`, "
            f"then `runner({feeds})` returns {{{results}}}."]


def _kotlin(first: dict) -> list[str]:
    signature = first["signature"]
    lines = ["", "## Android: LiteRT `CompiledModel` (Kotlin)", "",
             "Add `com.google.ai.edge.litert:litert` to your dependencies and the .tflite to your assets:", "",
             "```kotlin",
             f"val model = CompiledModel.create(context.assets, \"{first['file']}\", "
             "CompiledModel.Options(Accelerator.CPU))"]
    for spec in first["inputs"]:
        write, array = KOTLIN_WRITE.get(spec["dtype"], ("writeFloat", "FloatArray"))
        lines += [f"val {_ident(spec['name'])} = model.createInputBuffer(\"{spec['name']}\", \"{signature}\")",
                  f"{_ident(spec['name'])}.{write}(/* {array} of {_count(spec)}: {spec['dtype']} {spec['shape']} */)"]
    for spec in first["outputs"]:
        lines.append(f"val {_ident(spec['name'])}Out = model.createOutputBuffer(\"{spec['name']}\", \"{signature}\")")
    lines.append("model.run(mapOf(" + ", ".join(f"\"{s['name']}\" to {_ident(s['name'])}" for s in first["inputs"])
                 + "), mapOf(" + ", ".join(f"\"{s['name']}\" to {_ident(s['name'])}Out" for s in first["outputs"])
                 + f"), \"{signature}\")")
    for spec in first["outputs"]:
        lines.append(f"val {_ident(spec['name'])}Values = "
                     f"{_ident(spec['name'])}Out.{KOTLIN_READ.get(spec['dtype'], 'readFloat()')}"
                     f"  // {_count(spec)} values, {spec['dtype']} {spec['shape']}")
    lines += ["```", "", "A uint8 file's buffers are `ByteArray`s: read byte `b` as `b.toInt() and 0xFF`."]
    return lines


def _swift(first: dict) -> list[str]:
    positions = first.get("input_positions") or [s["name"] for s in first["inputs"]]
    name = first["file"].rsplit(".", 1)[0]
    lines = ["", "## iOS: Swift (`TensorFlowLiteSwift`, LiteRT's interpreter for iOS)", "",
             "```swift",
             "import TensorFlowLite",
             "",
             f"let path = Bundle.main.path(forResource: \"{name}\", ofType: \"tflite\")!",
             "let interpreter = try Interpreter(modelPath: path)",
             "try interpreter.allocateTensors()"]
    specs = {s["name"]: s for s in first["inputs"]}
    for i, input_name in enumerate(positions):
        spec = specs[input_name]
        lines.append(f"try interpreter.copy({_ident(input_name)}Data, toInputAt: {i})  // {input_name}: "
                     f"{spec['dtype']} {spec['shape']}, {_count(spec) * _bytes(spec['dtype'])} bytes")
    lines.append("try interpreter.invoke()")
    for i, spec in enumerate(first["outputs"]):
        lines.append(f"let {_ident(spec['name'])} = try interpreter.output(at: {i}).data  // {spec['name']}: "
                     f"{spec['dtype']} {spec['shape']}")
    lines.append("```")
    return lines


def _mediapipe(first: dict, info: dict) -> list[str]:
    size = (info.get("preprocessing") or {}).get("size")
    image, scores = first["inputs"][0]["name"], first["outputs"][0]["name"]
    return ["", "## MediaPipe Tasks: ImageClassifier", "",
            "Each .tflite here carries the metadata MediaPipe's ImageClassifier needs (normalization and "
            "`labels.txt` packed inside), so it loads as it is on Android, iOS, the web and in Python. Give it "
            f"RGB images prepared as the model was trained ({_plain(info.get('preprocessing', {}))}): MediaPipe "
            "resizes other sizes its own way, and the scores then differ a little. Never pass a one-channel "
            "(GRAY8) image: convert grey photos to RGB first.", "",
            "Python (`pip install mediapipe`), in this folder:", "",
            "```python",
            "import json",
            "",
            "import mediapipe as mp",
            "import numpy as np",
            "from mediapipe.tasks.python import BaseOptions, vision",
            "",
            "labels = open(\"labels.txt\").read().splitlines()",
            f"call = json.load(open(\"golden.json\"))[\"variants\"][\"{first['file'].rsplit('.', 1)[0]}\"]"
            "[\"calls\"][0]",
            f"pixels = np.array(call[\"inputs\"][\"{image}\"][\"data\"])"
            f".reshape(call[\"inputs\"][\"{image}\"][\"shape\"])[0]",
            f"options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=\"{first['file']}\"),",
            "                                        max_results=len(labels))",
            "with vision.ImageClassifier.create_from_options(options) as classifier:",
            "    result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, "
            "data=pixels.astype(np.uint8)))",
            "best = result.classifications[0].categories[0]",
            f"expected = labels[int(np.argmax(call[\"outputs\"][\"{scores}\"][\"data\"]))]",
            "assert best.category_name == expected, (best, expected)",
            "print(f\"MediaPipe: {best.category_name} ({best.score:.3f})\")",
            "```",
            "",
            "Android (`com.google.mediapipe:tasks-vision`):",
            "",
            "```kotlin",
            "val options = ImageClassifier.ImageClassifierOptions.builder()",
            f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{first['file']}\").build())",
            "    .build()",
            "val classifier = ImageClassifier.createFromOptions(context, options)",
            f"val result = classifier.classify(BitmapImageBuilder(bitmap{size}x{size}).build())",
            "```",
            "",
            "The web (`@mediapipe/tasks-vision`, its wasm folder served beside your page):",
            "",
            "```js",
            "const vision = await FilesetResolver.forVisionTasks(\"./tasks-vision/wasm\");",
            f"const classifier = await ImageClassifier.createFromOptions(vision, {{ baseOptions: {{ modelAssetPath: "
            f"\"{first['file']}\" }} }});",
            "const { classifications } = classifier.classify(canvas);",
            "```"]


def _ident(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name)
    return cleaned if cleaned[:1].isalpha() else f"t_{cleaned}"


def _count(spec: dict) -> int:
    count = 1
    for d in spec["shape"]:
        count *= d or 1
    return count


def _bytes(dtype: str) -> int:
    return {"float32": 4, "int32": 4, "uint8": 1, "int8": 1}.get(dtype, 4)
