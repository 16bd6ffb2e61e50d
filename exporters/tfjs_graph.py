"""Fix-ups of a converted tfjs graph model that the converter leaves to the runtime.

TensorFlow's grappler fuses ``MatMul``/``Conv2D`` + ``BiasAdd`` + activation into one
``_FusedMatMul``/``_FusedConv2D`` node. tfjs 4.22 runs fused nodes only for a few
activations (linear, relu, relu6, elu, prelu, leakyrelu, sigmoid); a fused ``Tanh`` fails at
run time with "Activation tanh has not been implemented for the CPU backend". Such nodes are
split back into the fused op without the activation followed by the activation as its own op,
which every backend runs.

Grappler also fuses ``x @ W + y`` into a ``_FusedMatMul`` whose "bias" ``y`` is a whole
tensor (an unrolled LSTM cell adds ``h @ U`` that way). The wasm backend accepts only a
rank-1 bias ("_FusedMatMul only supports rank-1 bias but got rank 3"), so such nodes become
``MatMul`` followed by ``AddV2`` (and the activation, if any).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tinkerflow.core.runfs import write_atomic

FUSED_OPS = {"_FusedMatMul", "_FusedConv2D", "FusedDepthwiseConv2dNative"}
TFJS_FUSED_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Prelu", "LeakyRelu", "Sigmoid"}


def _decode(items: list[str]) -> list[str]:
    return [base64.b64decode(item).decode() for item in items]


def _encode(items: list[str]) -> list[str]:
    return [base64.b64encode(item.encode()).decode() for item in items]


def _split_tensor_bias(node: dict, ops: list[str]) -> list[dict]:
    """``_FusedMatMul(a, b, y)`` with a tensor ``y``: ``MatMul`` + ``AddV2`` (+ the activation)."""
    dtype = node["attr"].get("T", {"type": "DT_FLOAT"})
    activation = ops[1] if len(ops) > 1 else None
    matmul = {"name": f"{node['name']}/matmul", "op": "MatMul", "input": node["input"][:2],
              "attr": {key: node["attr"][key] for key in ("transpose_a", "transpose_b", "T") if key in node["attr"]}}
    add_name = f"{node['name']}/add" if activation else node["name"]
    out = [matmul, {"name": add_name, "op": "AddV2", "input": [matmul["name"], node["input"][2]], "attr": {"T": dtype}}]
    if activation:
        out.append({"name": node["name"], "op": activation, "input": [add_name], "attr": {"T": dtype}})
    return out


def unfuse_unsupported_activations(model_json: Path) -> list[str]:
    """Rewrite ``model.json`` in place; returns the names of the nodes that were split."""
    model = json.loads(Path(model_json).read_text())
    nodes = model["modelTopology"]["node"]
    computed = {n["name"] for n in nodes if n.get("op") not in ("Const", "Placeholder")}
    rewritten, split = [], []
    for node in nodes:
        fused = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s")
        if node.get("op") not in FUSED_OPS or not fused:
            rewritten.append(node)
            continue
        ops = _decode(fused)
        if (node["op"] == "_FusedMatMul" and ops[0] == "BiasAdd" and len(node["input"]) == 3
                and node["input"][2].split(":")[0] in computed):
            rewritten += _split_tensor_bias(node, ops)
            split.append(node["name"])
            continue
        activation = ops[-1] if len(ops) > 1 else None
        if activation is None or activation in TFJS_FUSED_ACTIVATIONS:
            rewritten.append(node)
            continue
        inner = dict(node, name=f"{node['name']}/without_{activation.lower()}")
        inner["attr"] = dict(node["attr"], fused_ops={"list": {"s": _encode(ops[:-1])}})
        outer = {"name": node["name"], "op": activation, "input": [inner["name"]],
                 "attr": {"T": node["attr"].get("T", {"type": "DT_FLOAT"})}}
        rewritten += [inner, outer]
        split.append(node["name"])
    if split:
        model["modelTopology"]["node"] = rewritten
        write_atomic(model_json, json.dumps(model))
    return split


def layer_output_nodes(model_json: Path, layer_names: list[str]) -> dict[str, str]:
    """The graph node holding each Keras layer's output (for widgets that show a hidden layer).

    Nodes of a layer live under a name scope named after the layer (``.../hidden_1/...``);
    the layer's output is the node of that scope that a node outside it consumes.
    """
    nodes = json.loads(Path(model_json).read_text())["modelTopology"]["node"]
    found = {}
    for layer in layer_names:
        scope = {n["name"] for n in nodes if n.get("op") != "Const"
                 and any(part in (layer, f"{layer}_1") for part in n["name"].split("/")[:-1])}
        consumed = [i.split(":")[0].lstrip("^") for n in nodes if n["name"] not in scope for i in n.get("input", [])]
        outputs = [name for name in consumed if name in scope]
        if outputs:
            found[layer] = outputs[0] + ":0"
    return found
