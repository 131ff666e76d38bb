"""ONNX built directly from the parameter tree, with ONNX's native bidirectional ``GRU`` operator.

This is the default ONNX path: jax2tf produces one ``XlaCallModule`` op that tf2onnx cannot read,
and the only generic route (fully unrolled TFLite → tf2onnx, see ``conversion.tf2onnx_path``) gives
a ~1 MB graph of 256 unrolled steps that runs ~20× slower. ONNX's ``GRU`` with
``linear_before_reset=1`` *is* a Keras ``GRU(reset_after=True)``: gate order z, r, h; W = kernelᵀ,
R = recurrent_kernelᵀ, B = the Keras (2, 3h) bias flattened (input bias, then recurrent bias); the
reverse direction's outputs are time-aligned like Keras ``Bidirectional``. Convolutions run in
NCW layout, so the only layout changes are around the GRUs.

The graph has a dynamic batch axis: input ``x`` (batch, T, F) float32 → ``probabilities`` (batch, C).
With the standardizer folded (the default) the graph starts with ``(x - mean) / std`` and ``x`` is
raw sensor values. Node names are ``<layer>/<Op>_<n>`` (``bigru``, ``module_2``, ``reduce``, ``head``
...), so a profile of the graph maps back to the model's layers.
"""
from __future__ import annotations

import json

import numpy as np

from conversion.source import ExportSource
from jazbat_jax.model import JazbatNet, SotaSurrogate

# The architectures this builder knows; any other model's ONNX goes through conversion.tf2onnx_path.
ARCHITECTURES = ("jazbat_net", "sota_surrogate")
OPSET = 20  # Gelu (approximate='tanh') needs 20; everything else would work from 18
BN_EPSILON = 1e-3  # both models use Keras' BatchNormalization epsilon


class _Graph:
    """A tiny ONNX graph builder: unique names, initializers from NumPy arrays."""

    def __init__(self):
        import onnx

        self.onnx = onnx
        self.nodes, self.initializers, self._count = [], [], 0
        self.scope = "model"  # the model layer the next nodes belong to (prefix of their names)

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str, dtype=np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, outputs: int = 1, **attrs) -> str | list[str]:
        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        node_name = f"{self.scope}/{self.name(op_type)}"
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, names, name=node_name, **attrs))
        return names[0] if outputs == 1 else names

    # -- layers, all on NCW tensors unless stated --------------------------------------------

    def conv(self, x: str, p: dict, hint: str) -> str:
        kernel = np.asarray(p["kernel"])  # Flax (k, Cin, Cout) -> ONNX (Cout, Cin, k)
        k = kernel.shape[0]
        w = self.const(kernel.transpose(2, 1, 0), f"{hint}_W")
        b = self.const(p["bias"], f"{hint}_B")
        # XLA 'SAME': total padding k-1, the smaller half first
        return self.op("Conv", [x, w, b], hint, kernel_shape=[k], pads=[(k - 1) // 2, k // 2])

    def batchnorm(self, x: str, p: dict, stats: dict, hint: str) -> str:
        inputs = [x] + [self.const(a, f"{hint}_{n}") for n, a in
                        (("scale", p["scale"]), ("bias", p["bias"]), ("mean", stats["mean"]), ("var", stats["var"]))]
        return self.op("BatchNormalization", inputs, hint, epsilon=BN_EPSILON)

    def bigru(self, x_tbc: str, p: dict, hint: str) -> str:
        """Bidirectional Keras GRU on (T, B, d); returns ONNX Y of shape (T, 2, B, h)."""
        fwd, bwd = p["forward"], p["backward"]
        units = np.asarray(fwd["recurrent_kernel"]).shape[0]
        w = self.const(np.stack([np.asarray(fwd["kernel"]).T, np.asarray(bwd["kernel"]).T]), f"{hint}_W")
        r = self.const(np.stack([np.asarray(fwd["recurrent_kernel"]).T, np.asarray(bwd["recurrent_kernel"]).T]), f"{hint}_R")
        b = self.const(np.stack([np.asarray(fwd["bias"]).reshape(-1), np.asarray(bwd["bias"]).reshape(-1)]), f"{hint}_B")
        y, _ = self.op("GRU", [x_tbc, w, r, b], hint, outputs=2, direction="bidirectional",
                       hidden_size=int(units), linear_before_reset=1)
        return y

    def activation(self, x: str, name: str) -> str:
        if name == "linear":
            return x
        if name == "relu":
            return self.op("Relu", [x])
        if name == "tanh":
            return self.op("Tanh", [x])
        if name == "elu":
            return self.op("Elu", [x], alpha=1.0)
        if name == "gelu":  # flax.linen.gelu defaults to the tanh approximation
            return self.op("Gelu", [x], approximate="tanh")
        if name == "swish":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        raise ValueError(f"no ONNX mapping for activation {name!r}")


def _jazbat_graph(g: _Graph, model: JazbatNet, params: dict, stats: dict, x: str) -> str:
    window = model.window
    g.scope = "bigru"
    h = g.op("Transpose", [x], "x_tbf", perm=[1, 0, 2])  # (T, B, F)
    y = g.bigru(h, params["bigru"], "bigru")  # (T, 2, B, h)
    y = g.op("Transpose", [y], "bigru_bdht", perm=[2, 1, 3, 0])  # (B, 2, h, T): channel = dir * h + unit
    h = g.op("Reshape", [y, g.const([0, -1, window], "shape", np.int64)], "bigru_ncw")
    g.scope = "batchnorm"
    h = g.batchnorm(h, params["batchnorm"], stats["batchnorm"], "batchnorm")
    for i in range(1, model.num_modules + 1):
        g.scope = f"module_{i}"
        p = params[f"module_{i}"]
        merged = None
        for j, k in enumerate(model.kernel_sizes, start=1):
            b = g.activation(g.conv(h, p[f"b{j}_1x1"], f"m{i}_b{j}_1x1"), model.branch_activation)
            b = g.activation(g.conv(b, p[f"b{j}_1x{k}"], f"m{i}_b{j}_1x{k}"), model.branch_activation)
            merged = b if merged is None else g.op("Add", [merged, b])
        aggregated = g.conv(merged, p["aggregate"], f"m{i}_aggregate")
        projected = g.conv(h, p["project"], f"m{i}_project")
        h = g.activation(g.op("Add", [aggregated, projected]), model.residual_activation)
    g.scope = "reduce"
    h = g.activation(g.conv(h, params["reduce"], "reduce"), model.reduce_activation)
    z = g.op("ReduceMean", [h, g.const([2], "axes", np.int64)], "gap", keepdims=0)  # (B, K)
    g.scope = "head"
    return _dense(g, z, params["head"], "head")


def _surrogate_graph(g: _Graph, model: SotaSurrogate, params: dict, stats: dict, x: str) -> str:
    g.scope = "block_1"
    x_ncw = g.op("Transpose", [x], "x_ncw", perm=[0, 2, 1])  # (B, F, T)
    h = x_ncw
    for i in range(1, model.num_blocks + 1):
        p, name = params[f"block_{i}"], f"block_{i}"
        g.scope = name
        a = g.op("Relu", [g.conv(h, p["a_1x1"], f"{name}_a_1x1")])
        b = g.op("Relu", [g.conv(h, p["b_1x1"], f"{name}_b_1x1")])
        b = g.op("Relu", [g.conv(b, p["b_1x3"], f"{name}_b_1x3")])
        c = g.op("Relu", [g.conv(h, p["c_1x1"], f"{name}_c_1x1")])
        c = g.op("Relu", [g.conv(c, p["c_1x5"], f"{name}_c_1x5")])
        up = g.conv(g.op("Concat", [a, b, c], axis=1), p["up_1x1"], f"{name}_up_1x1")
        shortcut = g.conv(h, p["proj_1x1"], f"{name}_proj_1x1") if "proj_1x1" in p else h
        h = g.op("Relu", [g.op("Add", [up, shortcut])])
        h = g.batchnorm(h, p["batchnorm"], stats[f"block_{i}"]["batchnorm"], f"{name}_bn")
    g.scope = "raw_dense_1x1"
    raw = g.op("Relu", [g.conv(x_ncw, params["raw_dense_1x1"], "raw_dense_1x1")])
    h = g.op("Concat", [h, raw], axis=1)  # (B, C, T)
    h = g.op("Transpose", [h], "tbc", perm=[2, 0, 1])  # (T, B, C)
    for i in range(1, len(model.gru_units) + 1):
        g.scope = f"bigru_{i}"
        y = g.bigru(h, params[f"bigru_{i}"], f"bigru_{i}")  # (T, 2, B, h)
        y = g.op("Transpose", [y], f"bigru_{i}_tbdh", perm=[0, 2, 1, 3])
        h = g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)], f"bigru_{i}_tbc")  # (T, B, 2h)
    g.scope = "gap"
    z = g.op("ReduceMean", [h, g.const([0], "axes", np.int64)], "gap", keepdims=0)  # (B, 2h)
    g.scope = "fc1"
    z = g.op("Relu", [_dense(g, z, params["fc1"], "fc1")])  # dropout is off at inference
    g.scope = "head"
    return _dense(g, z, params["head"], "head")


def _dense(g: _Graph, z: str, p: dict, hint: str) -> str:
    return g.op("Gemm", [z, g.const(p["kernel"], f"{hint}_W"), g.const(p["bias"], f"{hint}_B")], hint)


def to_onnx_model(source: ExportSource, opset: int = OPSET):
    """The ONNX ``ModelProto`` (checked with ``onnx.checker``); metadata_props carry the sidecar."""
    import onnx

    model = source.model
    params = source.variables["params"]
    stats = source.variables.get("batch_stats", {})
    g = _Graph()
    x = "x"
    if source.folded:  # the Standardizer, in the graph: the file takes raw sensor values
        g.scope = "standardize"
        mean = g.const(source.standardizer.mean, "standardizer_mean")
        std = g.const(source.standardizer.std, "standardizer_std")
        x = g.op("Div", [g.op("Sub", [x, mean], "centred"), std], "standardised")
    if isinstance(model, JazbatNet):
        logits = _jazbat_graph(g, model, params, stats, x)
    elif isinstance(model, SotaSurrogate):
        logits = _surrogate_graph(g, model, params, stats, x)
    else:
        raise TypeError(f"no ONNX builder for {type(model).__name__}")
    g.nodes.append(onnx.helper.make_node("Softmax", [logits], ["probabilities"], name="head/softmax", axis=-1))
    graph = onnx.helper.make_graph(
        g.nodes,
        source.name,
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", model.window, model.input_dim])],
        [onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["batch", model.num_classes])],
        initializer=g.initializers,
    )
    opset_id = onnx.helper.make_opsetid("", opset)
    proto = onnx.helper.make_model(graph, opset_imports=[opset_id], producer_name="jazbat-jax conversion.onnx_native",
                                   ir_version=onnx.helper.find_min_ir_version_for([opset_id]))
    sidecar = source.sidecar()
    onnx.helper.set_model_props(proto, {
        "class_names": json.dumps(sidecar["class_names"]),
        "standardizer": json.dumps(sidecar["standardizer"]),
        "input_values": sidecar["input"]["values"],
        "input_spec": json.dumps(sidecar["input_spec"]),
        "output": sidecar["output"]["meaning"],
        "jazbat_sidecar": json.dumps(sidecar),
    })
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx_bytes(source: ExportSource, opset: int = OPSET) -> bytes:
    return to_onnx_model(source, opset).SerializeToString()


class OnnxRunner:
    """ONNX Runtime session on ``num_threads`` intra-op threads (1 = the paper's protocol)."""

    def __init__(self, model_bytes: bytes, num_threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape[0]
        self.batch_size = shape if isinstance(shape, int) else None  # None: any batch

    def invoke(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: x})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.batch_size is None:
            return self.invoke(x)
        return np.concatenate([self.invoke(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)])

