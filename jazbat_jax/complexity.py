"""Exact complexity accounting, derived from the real variable tree and the traced layer outputs.

Nothing here is a hand-kept table: parameters come from ``model.init``, output shapes from
``capture_intermediates`` under ``jax.eval_shape`` (no compute), and MACs from each layer's
weight shapes times the number of output positions it is applied at.

MAC convention (the paper's; it reproduces its 6.96M / 7.05M / 7.20M exactly):
    conv  = T_out · k · C_in · C_out        (kernel size × output positions)
    GRU   = T · 3h · (d + h) per direction  (kernel + recurrent kernel, per step)
    LSTM  = T · 4h · (d + h) per direction  (the same rule: a recurrent layer with 4 gates)
    dense = in · out                        (per output position when applied along time)
Biases, BatchNorm, LayerNorm, activations, additions, gate products, attention's score and mixing
products and pooling count zero. A layer with variables no rule knows (a user's model) counts zero
MACs and is listed in ``ModelCost.unknown``: the analytic total is then a lower bound, and XLA's
count (always available) is the one to read.

XLA cross-checks: ``cost_analysis()`` counts a rolled ``lax.scan`` body once, not once per
step, so the GRU is checked by compiling one step and multiplying by T and by the number of
directions; ``memory_analysis()`` of the jitted forward gives the activation (temp) memory.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jazbat_jax import kernels
from jazbat_jax.kernels import gru_step

FP32_BYTES = 4
NO_RULE = "no MAC rule"


@dataclasses.dataclass(frozen=True)
class LayerCost:
    name: str  # module path, e.g. "module_1/b1_1x5"
    kind: str  # "GRU", "Conv1D k=5", "BatchNorm", "Dense"
    output_shape: tuple[int, ...]  # for one window (batch axis dropped)
    trainable: int
    non_trainable: int
    macs: int

    @property
    def activations(self) -> int:
        return math.prod(self.output_shape)

    @property
    def group(self) -> str:
        """Top-level block: 'bigru', 'batchnorm', 'modules' (all module_i), 'reduce', 'head' ..."""
        top = self.name.split("/")[0]
        return "modules" if top.startswith("module_") else top


@dataclasses.dataclass(frozen=True)
class ModelCost:
    model_name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerCost, ...]

    @property
    def trainable(self) -> int:
        return sum(l.trainable for l in self.layers)

    @property
    def non_trainable(self) -> int:
        return sum(l.non_trainable for l in self.layers)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Layers no MAC rule covers (counted as zero): the analytic MACs are a lower bound when any."""
        return tuple(l.name for l in self.layers if l.kind.startswith(NO_RULE))

    @property
    def fp32_bytes(self) -> int:
        return self.total * FP32_BYTES

    @property
    def activations(self) -> int:
        """Sum of every parameterised layer's output elements for one window."""
        return sum(l.activations for l in self.layers)

    def groups(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for l in self.layers:
            g = out.setdefault(l.group, {"trainable": 0, "non_trainable": 0, "macs": 0})
            g["trainable"] += l.trainable
            g["non_trainable"] += l.non_trainable
            g["macs"] += l.macs
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "trainable_params": self.trainable,
            "non_trainable_params": self.non_trainable,
            "total_params": self.total,
            "macs": self.macs,
            "fp32_weight_bytes": self.fp32_bytes,
            "layer_output_activations": self.activations,
            "groups": self.groups(),
            "layers": [
                {**dataclasses.asdict(l), "output_shape": list(l.output_shape), "activations": l.activations}
                for l in self.layers
            ],
        }


def _leaf_modules(tree: dict) -> dict[tuple[str, ...], dict[str, Any]]:
    """Group a flat variable tree by the module that owns each leaf: {module_path: {leaf_name: array}}."""
    modules: dict[tuple[str, ...], dict[str, Any]] = {}
    for path, leaf in traverse_util.flatten_dict(tree).items():
        modules.setdefault(path[:-1], {})[path[-1]] = leaf
    return modules


def _layer_kind_and_macs(params: dict[str, Any], stats: dict[str, Any], out_shape: tuple[int, ...]) -> tuple[str, int]:
    positions = math.prod(out_shape[:-1])  # time steps (1 for a Dense on pooled features)
    if "recurrent_kernel" in params:
        # GRU / LSTM: kernel (d, gh) and recurrent kernel (h, gh) are each applied once per time step.
        h, gh = params["recurrent_kernel"].shape
        return {3: "GRU", 4: "LSTM"}.get(gh // h, "recurrent"), positions * (params["kernel"].size + params["recurrent_kernel"].size)
    if "kernel" in params and params["kernel"].ndim == 3:
        return f"Conv1D k={params['kernel'].shape[0]}", positions * params["kernel"].size
    if "kernel" in params and params["kernel"].ndim == 4:  # a (k, 1) kernel: each sensor channel convolved alone
        return f"Conv2D k={params['kernel'].shape[0]}x{params['kernel'].shape[1]}", positions * params["kernel"].size
    if "kernel" in params and params["kernel"].ndim == 2:
        return "Dense", positions * params["kernel"].size
    if "scale" in params and "mean" in stats:
        return "BatchNorm", 0
    if set(params) <= {"scale", "bias"} and not stats:
        return "LayerNorm", 0
    if all(a.size == 1 for a in params.values()):  # a learned scalar (an attention's gamma)
        return "scalar", 0
    return f"{NO_RULE} (variables {', '.join(sorted(params) + sorted(stats))})", 0


def _trace_outputs(model: nn.Module, variables: dict, x) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Output shape of every module call, in forward (call) order, traced without compute."""
    outputs: dict[tuple[str, ...], tuple[int, ...]] = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__":
            outputs[tuple(context.module.path)] = tuple(out.shape[1:])  # drop the batch axis
        return out

    def forward(v, x):
        with nn.intercept_methods(record):
            return model.apply(v, x, train=False)

    jax.eval_shape(forward, variables, x)
    return outputs


def count(model: nn.Module, variables: dict | None = None) -> ModelCost:
    """Per-layer parameters, MACs and output sizes of ``model`` for one window, in forward order."""
    x = jax.ShapeDtypeStruct((1, model.window, model.input_dim), jnp.float32)
    if variables is None:
        variables = jax.eval_shape(
            lambda x: model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x), x
        )
    params = _leaf_modules(variables["params"])
    stats = _leaf_modules(variables.get("batch_stats", {}))
    layers = []
    for path, out_shape in _trace_outputs(model, variables, x).items():
        if path not in params:  # containers (bigru, module_i) and the model itself own no leaves
            continue
        kind, macs = _layer_kind_and_macs(params[path], stats.get(path, {}), out_shape)
        layers.append(
            LayerCost(
                name="/".join(path),
                kind=kind,
                output_shape=out_shape,
                trainable=sum(int(np.prod(a.shape)) for a in params[path].values()),
                non_trainable=sum(int(np.prod(a.shape)) for a in stats.get(path, {}).values()),
                macs=int(macs),
            )
        )
    missing = set(params) - {tuple(l.name.split("/")) for l in layers}
    if missing:  # every parameter must be accounted for, or the totals would silently be wrong
        raise RuntimeError(f"parameters of modules never called in the forward pass: {sorted(missing)}")
    return ModelCost(type(model).__name__, (model.window, model.input_dim), tuple(layers))


def _compiled(fn, *args):
    return jax.jit(fn).lower(*args).compile()


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax returned one dict per device
        analysis = analysis[0]
    return float(analysis["flops"])


def gru_step_flops(gru_params: dict) -> dict[str, float]:
    """XLA flops of one GRU or LSTM step (batch 1): each weight matmul alone, and the scan's body.

    ``recurrent_body`` is what the scan runs per step: ``kernels.gru_step`` for a GRU (this step's
    input projection x·W, h·U and the gates); for an LSTM (4 gates) ``baselines.lstm_step``
    (h·U and the gates; its input projection runs outside the loop, over every step at once).
    """
    d, gates_h = gru_params["kernel"].shape
    h = gru_params["recurrent_kernel"].shape[0]
    x = jnp.zeros((1, d), jnp.float32)
    state = jnp.zeros((1, h), jnp.float32)
    if gates_h == 4 * h:
        from jazbat_jax.baselines import lstm_step

        def body(p, x, h):
            return lstm_step(jnp.zeros((1, gates_h), jnp.float32), h, h, p["recurrent_kernel"])[0]
    else:
        def body(p, x, h):
            return gru_step(x, h, p["kernel"], p["bias"], p["recurrent_kernel"])[0]

    return {
        "input_matmul": _flops(_compiled(lambda w, x: x @ w, gru_params["kernel"], x)),
        "recurrent_matmul": _flops(_compiled(lambda u, s: s @ u, gru_params["recurrent_kernel"], state)),
        "recurrent_body": _flops(_compiled(body, gru_params, x, state)),
    }


def xla_macs(matmul_flops: float, contraction: int) -> float:
    """MACs from XLA's matmul flops: 2 flops per MAC, but XLA counts a length-1 contraction
    (d = 1, the 1D input) as one multiply per output with no add."""
    return matmul_flops / (2 if contraction > 1 else 1)


def xla_crosscheck(model: nn.Module, variables: dict, batch: int = 1) -> dict[str, Any]:
    """Cross-check the analytic counts against XLA on this machine.

    - GRU / LSTM: XLA's matmul count of one step × T, summed over directions, must equal the analytic
      recurrent MACs (the "gru_*" keys cover LSTM layers too).
    - Whole model: ``cost_analysis`` of the jitted forward counts each scan body once; we add
      the other T−1 steps of every GRU / LSTM direction to get the scan-corrected XLA flops (a loop
      of a kind the analytic count does not know stays counted once).
    - ``memory_analysis`` of the jitted forward: temp (activation) bytes, argument and output bytes.
    """
    cost = count(model, variables)
    # The steps each recurrent layer runs (fewer than the window after strided or unpadded convolutions).
    steps = {tuple(l.name.split("/")): l.output_shape[0] for l in cost.layers if l.kind in ("GRU", "LSTM")}
    params = _leaf_modules(variables["params"])
    grus = [(path, params[path]) for path in steps]
    gru_analytic = sum(l.macs for l in cost.layers if l.kind in ("GRU", "LSTM"))
    gru_xla_macs = 0.0
    other_steps_flops = 0.0  # the T − 1 steps of every loop that XLA's count of a rolled scan leaves out
    for path, p in grus:
        T = steps[path]
        step = gru_step_flops(p)
        d, h = p["kernel"].shape[0], p["recurrent_kernel"].shape[0]
        gru_xla_macs += T * (xla_macs(step["input_matmul"], d) + xla_macs(step["recurrent_matmul"], h))
        other_steps_flops += (T - 1) * step["recurrent_body"]

    x = jnp.zeros((batch, model.window, model.input_dim), jnp.float32)
    with kernels.pure_jax():  # XLA's own count: the native GRU kernels would be opaque custom calls
        forward = _compiled(lambda v, x: model.apply(v, x, train=False), variables, x)
    rolled = _flops(forward)
    mem = forward.memory_analysis()
    return {
        "batch": batch,
        "gru_directions": len(grus),
        "gru_macs_analytic": gru_analytic,
        "gru_macs_xla": int(gru_xla_macs),
        "gru_macs_match": int(gru_xla_macs) == gru_analytic,
        "xla_flops_rolled_scan": int(rolled),
        "xla_flops_scan_corrected": int(rolled + other_steps_flops * batch),  # body scales with batch
        "analytic_flops_2x_macs": 2 * cost.macs * batch,
        "memory_temp_bytes": int(mem.temp_size_in_bytes),
        "memory_argument_bytes": int(mem.argument_size_in_bytes),
        "memory_output_bytes": int(mem.output_size_in_bytes),
    }
