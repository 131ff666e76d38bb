"""jax2tf → ``tf.function`` with a fixed input signature → TFLite with builtin ops only.

jax2tf (jax 0.10) serialises the whole model into one ``XlaCallModule`` op; the TFLite converter
legalises its StableHLO to builtins (no Flex / Select TF ops, which are the slow path behind the
paper's 90 ms on a phone). The batch size is fixed at export: a polymorphic batch makes the
scan's dynamic slices unconvertible ('vhlo.dynamic_gather_v1' is not supported).

Two converter artefacts are cleaned up afterwards, on the flatbuffer, without touching the math:
* ``lax.scan`` stacks its outputs into a zero-initialised (T, B, h) buffer that the converter
  folds into a 32 KB constant per batch element; it is replaced by a FILL op (same zeros, 0 bytes);
* tensor names (long JAX name stacks, ~10 KB) are dropped except for inputs and outputs.
The GRU is the TFLite bottleneck (per-op overhead of a WHILE loop of ~20 small ops per step), so the
exported function runs both directions of each BiGRU in *one* scan over (2, B, h) states with a
batched recurrent matmul (a Flax method interceptor swaps it in for ``BiGRU.__call__``; same gate
code, ``keras_gru_step``): half the loop iterations, ~30% less latency. The parity gate checks it.

The sidecar (class names, standardizer, which input the file takes, input_spec, output semantics)
is embedded as TFLite metadata ``jazbat_sidecar`` (UTF-8 JSON), written into a SavedModel as
``assets.extra/jazbat_sidecar.json``, and also written next to the file by the exporter.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the converter is very chatty

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from conversion.source import ExportSource
from jazbat_jax.model import BiGRU, keras_gru_step

QUANTIZATIONS = ("fp32", "dynamic_int8", "int8")
METADATA_NAME = "jazbat_sidecar"
SIDECAR_FILE = "jazbat_sidecar.json"  # in a SavedModel's assets.extra/ (files TensorFlow carries but ignores)
# Export-time unroll of the GRU scan (fewer WHILE iterations, more graph); the training model keeps 1.
DEFAULT_TFLITE_UNROLL = 8


def stacked_bigru(params: dict, x: jax.Array, unroll: int) -> jax.Array:
    """Keras ``Bidirectional(GRU)`` on (B, T, d) with both directions in one scan (export graph)."""
    fwd, bwd = params["forward"], params["backward"]
    # Input projections for all steps at once; the backward direction reads time reversed.
    xp_f = jnp.swapaxes(x @ fwd["kernel"] + fwd["bias"][0], 0, 1)  # (T, B, 3h)
    xp_b = jnp.flip(jnp.swapaxes(x @ bwd["kernel"] + bwd["bias"][0], 0, 1), 0)
    xp = jnp.stack([xp_f, xp_b], axis=1)  # (T, 2, B, 3h)
    # keras_gru_step reads only recurrent_kernel and bias[1]: (2, h, 3h) @ batched, (2, 1, 3h) biases.
    stacked = {"recurrent_kernel": jnp.stack([fwd["recurrent_kernel"], bwd["recurrent_kernel"]]),
               "bias": (None, jnp.stack([fwd["bias"][1], bwd["bias"][1]])[:, None, :])}
    units = fwd["recurrent_kernel"].shape[0]

    def step(h, xp_t):
        h = keras_gru_step(stacked, h, xp_t)
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros((2, x.shape[0], units), x.dtype), xp, unroll=unroll)  # (T, 2, B, h)
    return jnp.swapaxes(jnp.concatenate([hs[:, 0], jnp.flip(hs[:, 1], 0)], axis=-1), 0, 1)  # (B, T, 2h)


def export_probabilities_fn(source: ExportSource, gru_unroll: int = DEFAULT_TFLITE_UNROLL):
    """``source.probabilities_fn()`` with every BiGRU computed by ``stacked_bigru``."""
    probabilities = source.probabilities_fn()

    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, BiGRU) and context.method_name == "__call__":
            return stacked_bigru(context.module.variables["params"], args[0], gru_unroll)
        return next_fun(*args, **kwargs)

    def fn(x):
        with nn.intercept_methods(interceptor):
            return probabilities(x)

    return fn


def tf_function(source: ExportSource, batch_size: int = 1, gru_unroll: int = DEFAULT_TFLITE_UNROLL):
    """The probabilities function as a ``tf.function`` with input signature (batch_size, T, F) float32."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    converted = jax2tf.convert(export_probabilities_fn(source, gru_unroll), with_gradient=False)
    spec = tf.TensorSpec(source.input_shape(batch_size), tf.float32, name="x")
    return tf.function(lambda x: {"probabilities": converted(x)}, input_signature=[spec], autograph=False)


def to_saved_model(source: ExportSource, path: str, batch_size: int = 1,
                   gru_unroll: int = DEFAULT_TFLITE_UNROLL) -> None:
    """A SavedModel with one ``serving_default`` signature: x (batch_size, T, F) -> probabilities."""
    import tensorflow as tf

    module = tf.Module()
    module.serve = tf_function(source, batch_size, gru_unroll)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    extra = Path(path) / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / SIDECAR_FILE).write_text(json.dumps(source.sidecar(), indent=2) + "\n")


def to_tflite_bytes(
    source: ExportSource,
    batch_size: int = 1,
    quantization: str = "fp32",
    representative_windows: np.ndarray | None = None,
    gru_unroll: int = DEFAULT_TFLITE_UNROLL,
    keep_names: bool = False,
) -> bytes:
    """Convert to a TFLite flatbuffer (builtin ops only).

    quantization: 'fp32'; 'dynamic_int8' (INT8 weights, float activations); 'int8' (INT8 weights and
    activations calibrated on ``representative_windows`` (N, T, F), float32 input and output so the
    file is a drop-in replacement; ops without an INT8 kernel stay float). The TFLite calibrator
    segfaults on WHILE loops (tensorflow 2.21), so 'int8' always fully unrolls the GRU scan: the
    file is ~2 MB of unrolled graph and no faster than FP32; 'dynamic_int8' is the useful one.
    keep_names: keep internal tensor names (tf2onnx needs them).
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of {QUANTIZATIONS}")
    if quantization == "int8":
        gru_unroll = source.window  # see the docstring: calibration crashes on a rolled scan
    fn = tf_function(source, batch_size, gru_unroll)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        if representative_windows is None or len(representative_windows) < batch_size:
            raise ValueError("full INT8 quantisation needs representative_windows (N >= batch_size, T, F)")
        reps = np.asarray(representative_windows, np.float32)

        def representative() -> Iterable[list[np.ndarray]]:
            for i in range(0, len(reps) - batch_size + 1, batch_size):
                yield [reps[i : i + batch_size]]

        converter.representative_dataset = representative
    flatbuffer = converter.convert()
    return compact(flatbuffer, {METADATA_NAME: json.dumps(source.sidecar()).encode()}, strip_names=not keep_names)


def compact(flatbuffer: bytes, metadata: dict[str, bytes] | None = None, strip_names: bool = True) -> bytes:
    """Replace large splat constants in the main graph with FILL ops, drop internal tensor names,
    attach ``metadata`` buffers. Numerically a no-op (checked by the parity gate)."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    main = model.subgraphs[0]
    fill_ops = []
    fill_code = None
    numpy_of = {fb.TensorType.FLOAT32: np.float32, fb.TensorType.INT32: np.int32}
    for index, tensor in enumerate(main.tensors):
        data = model.buffers[tensor.buffer].data if tensor.buffer else None
        if data is None or len(data) < 1024 or tensor.type not in numpy_of:
            continue
        values = np.frombuffer(bytes(data), numpy_of[tensor.type])
        if not np.all(values == values[0]):
            continue
        if fill_code is None:
            fill_code = _opcode_index(model, fb.BuiltinOperator.FILL, fb)
        # Named only where names are kept: tf2onnx reads every tensor's name (and fails on a missing one).
        named = None if strip_names else f"fill_{index}"
        dims = _const_tensor(model, main, np.asarray(tensor.shape, np.int32), fb, named and f"{named}/dims")
        value = _const_tensor(model, main, values[:1].reshape(()), fb, named and f"{named}/value")
        freed = tensor.buffer
        tensor.buffer = 0  # buffer 0 is the empty sentinel: the tensor becomes a computed one
        if not any(t.buffer == freed for sg in model.subgraphs for t in sg.tensors):
            model.buffers[freed].data = None
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = fill_code, [dims, value], [index]
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.FillOptions, fb.FillOptionsT()
        fill_ops.append(op)
    main.operators = fill_ops + list(main.operators)

    for subgraph in model.subgraphs if strip_names else ():
        keep = set(subgraph.inputs) | set(subgraph.outputs) if subgraph is main else set()
        for i, tensor in enumerate(subgraph.tensors):
            if i not in keep:
                tensor.name = None
    for name, payload in (metadata or {}).items():
        buffer = fb.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        model.buffers.append(buffer)
        entry = fb.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode_index(model, builtin: int, fb) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = fb.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _const_tensor(model, subgraph, value: np.ndarray, fb, name: str | None = None) -> int:
    buffer = fb.BufferT()
    buffer.data = np.frombuffer(value.tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = fb.TensorT()
    tensor.shape = list(value.shape)
    tensor.type = fb.TensorType.INT32 if value.dtype == np.int32 else fb.TensorType.FLOAT32
    tensor.buffer = len(model.buffers) - 1
    if name is not None:
        tensor.name = name
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def read_metadata(flatbuffer: bytes, name: str = METADATA_NAME) -> dict | None:
    """The embedded sidecar of a file written by ``to_tflite_bytes`` (None if absent)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    for entry in model.metadata or []:
        entry_name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if entry_name == name:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return None


def builtin_op_names(flatbuffer: bytes) -> list[str]:
    """Operator names in the file; custom (Flex / Select TF) ops appear as 'CUSTOM:<name>'."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    by_code = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for code in model.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == fb.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            names.append(f"CUSTOM:{custom}")
        else:
            names.append(by_code[builtin])
    return sorted(set(names))


class TFLiteRunner:
    """Run a TFLite flatbuffer with the LiteRT interpreter (XNNPACK delegate, ``num_threads`` threads).

    The file has a fixed batch size; ``__call__`` splits or rejects inputs accordingly.
    """

    def __init__(self, flatbuffer: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=flatbuffer, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (self._input,) = self.interpreter.get_input_details()
        (self._output,) = self.interpreter.get_output_details()
        self.batch_size = int(self._input["shape"][0])

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One call on exactly one batch (the timed unit)."""
        self.interpreter.set_tensor(self._input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if len(x) % self.batch_size:
            raise ValueError(f"this TFLite file takes batches of {self.batch_size}; got {len(x)} windows")
        return np.concatenate([self.invoke(x[i : i + self.batch_size]).copy()
                               for i in range(0, len(x), self.batch_size)])

