"""The two hot spots of a Jazbat-Net train step, with hand-written gradients that XLA:CPU runs fast.

Both functions compute exactly what the textbook formulation computes (tests compare values and
gradients with ``jax.grad`` of the plain version); they only arrange the work differently, for
reasons found with ``jax.profiler`` (the measurements are in docs/training.md):

* ``gru_scan``: XLA:CPU compiles a loop-body fusion that reads several slices of one per-step
  array (the usual hoisted ``x_proj[t][..., :h]``, ``[..., h:2h]``, ``[..., 2h:]``) into slow
  scalar code, several times slower than the same fusion on separate arrays. Jazbat-Net's input is
  1-6 channels wide, so each step projects its own input, gate by gate, inside the loop: this
  also saves writing and re-reading three (T, B, h) projection arrays per direction. The
  reverse loop is written out by hand, so that it reads only what it needs, once.
* ``conv1d_same``: the weight gradient of a convolution is lowered to a convolution over the
  time axis that first transposes the whole (batch, time, channels) activation; written as one
  matmul over (batch * time) it needs no transpose.

With several processes the GRU gradient sums its weight gradients after the time loop rather than in
it (``weight_grads_after_loop``): with the batch split across hosts, that is one all-reduce per weight
instead of one per time step.

Under ``jax.vmap`` over runs (``train/multi.py``: R runs, each with its own weights) the plain batching
rules turn each run's convolution into one grouped convolution and each GRU step's small matmuls into
batched matmuls. The operations that touch a run's weights are instead ``per_run`` functions inside
the gradient kernels: batched over runs they loop over the runs (unrolled), each run's call exactly the
single-run call, while everything elementwise stays batched across runs. A multi-run train step is
about twice as fast that way on XLA:CPU (docs/training.md); ``RUN_LOOP`` switches back for measuring.

By default (``JAZBAT_KERNELS=native``, or unset) the GRU recurrence and its gradient run as native XLA FFI
custom calls instead (``jazbat_jax.native``, C++ built with the system compiler on first use), on a single
CPU device only; ``JAZBAT_KERNELS=xla`` asks for the pure-JAX code here everywhere. Export (jax2tf, ``jax.export``) always gets the pure-JAX
formulation, and without a compiler ``native`` falls back to it with a one-line note (docs/training.md).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys

import jax
import jax.numpy as jnp
from jax import custom_batching

from jazbat_jax import native

_CONV_DIMS = ("NWC", "WIO", "NWC")  # (batch, time, channels), Keras Conv1D kernel layout (k, in, out)


# Whether the gradient kernels loop over runs under vmap (``per_run``) or use JAX's batching rules.
RUN_LOOP = {"conv": True, "gru": True}


def per_run(f, kind: str):
    """``f`` for one run; batched by ``jax.vmap`` it runs once per batch member, an unrolled loop of the
    unbatched calls (arguments without the batch axis are shared), when ``RUN_LOOP[kind]`` is on."""
    looped = custom_batching.custom_vmap(f)

    @looped.def_vmap
    def rule(axis_size, in_batched, *args):
        if not RUN_LOOP[kind]:
            args = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip(args, in_batched)]
            out = jax.vmap(f)(*args)
            return out, jax.tree.map(lambda _: True, out)
        outs = [f(*(a[r] if b else a for a, b in zip(args, in_batched))) for r in range(axis_size)]
        return jax.tree.map(lambda *o: jnp.stack(o), *outs), jax.tree.map(lambda _: True, outs[0])

    return looped


def _matmul(a, b):
    return a @ b


def _matmul_at(a, b):
    """a.T @ b over the leading (batch) axis."""
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))


gru_matmul = per_run(_matmul, "gru")
gru_matmul_at = per_run(_matmul_at, "gru")


def gru_gates(h, xz, xr, xh, recurrent_kernel, recurrent_bias, matmul=_matmul):
    """One Keras ``GRU(reset_after=True)`` step from the input projections of each gate.

    Returns the new state and the gate values the gradient needs: (h_new, (z, r, n, rh)), where
    ``rh = h @ recurrent_kernel[:, 2u:] + recurrent_bias[2u:]`` is the reset-gated recurrent term.
    """
    units = h.shape[-1]
    rec = matmul(h, recurrent_kernel) + recurrent_bias
    z = jax.nn.sigmoid(xz + rec[..., :units])
    r = jax.nn.sigmoid(xr + rec[..., units : 2 * units])
    rh = rec[..., 2 * units :]
    n = jnp.tanh(xh + r * rh)
    return z * h + (1.0 - z) * n, (z, r, n, rh)


def gru_step(x_t, h, kernel, bias, recurrent_kernel, matmul=_matmul):
    """Project this step's input per gate (see the module docstring), then take one GRU step.

    For the 1-6 input channels of Jazbat-Net the projection is a sum of broadcast products,
    which XLA fuses into the gate arithmetic, faster than a small matmul per gate (docs/training.md).
    Wider inputs (S-754's stacked BiGRUs) use the matmul.
    """
    units = h.shape[-1]

    def projection(g):
        cols = slice(g * units, (g + 1) * units)
        if x_t.shape[-1] <= 8:
            return sum(x_t[..., j, None] * kernel[j, cols] for j in range(x_t.shape[-1])) + bias[0, cols]
        return matmul(x_t, kernel[:, cols]) + bias[0, cols]

    return gru_gates(h, projection(0), projection(1), projection(2), recurrent_kernel, bias[1], matmul)


def _zero_state(x, recurrent_kernel):
    return jnp.zeros((x.shape[1], recurrent_kernel.shape[0]), x.dtype)


KERNELS_ENV = "JAZBAT_KERNELS"  # "native" (the default): jazbat_jax/native where it applies; "xla": the pure-JAX kernels below


# Set by ``pure_jax()``: forces the pure-JAX kernels whatever JAZBAT_KERNELS says.
_FORCE_PURE_JAX: contextvars.ContextVar[bool] = contextvars.ContextVar("jazbat_force_pure_jax", default=False)


@contextlib.contextmanager
def pure_jax():
    """Trace with the pure-JAX kernels inside this block, whatever JAZBAT_KERNELS asks for: for analyses of
    the XLA program itself (``complexity.xla_crosscheck`` reads XLA's flop count, which cannot see inside a
    custom call)."""
    token = _FORCE_PURE_JAX.set(True)
    try:
        yield
    finally:
        _FORCE_PURE_JAX.reset(token)


@functools.cache
def _note(message: str) -> None:
    print(message, file=sys.stderr)


def kernel_choice() -> str:
    """What ``JAZBAT_KERNELS`` asks for: "native" (also when unset) or "xla"."""
    return os.environ.get(KERNELS_ENV, "").strip().lower() or "native"


def native_selected(dtype=jnp.float32, units: int | None = None, features: int | None = None) -> bool:
    """Whether the GRU runs as the native custom calls (``jazbat_jax.native``): unless
    ``JAZBAT_KERNELS=xla`` asks for the pure-JAX kernels, whenever they could be built, the
    computation is float32 on a single CPU device, and the GRU's shape (when given) is one the kernels are
    fast at: a hidden size ``units`` with vector code (``native.FAST_UNITS``; others take a scalar path)
    and at most ``native.FAST_MAX_FEATURES`` input ``features`` (the kernels project the input step by
    step; a wide input is XLA's matmul). Both measured against XLA: docs/training.md.
    Read when a function is traced: a jitted function keeps the choice it was traced with. Export (jax2tf,
    ``jax.export``) always gets the pure-JAX formulation, whatever this says (``jazbat_jax.native`` lowers
    to it)."""
    mode = kernel_choice()
    if mode == "xla" or _FORCE_PURE_JAX.get():
        return False
    if mode != "native":
        raise ValueError(f"{KERNELS_ENV}={mode!r} is not a kernel choice; use 'xla' (pure JAX) or 'native'")
    if not native.available():
        _note(f"jazbat: {native.unavailable_reason()}; using the pure-JAX GRU kernels")
        return False
    # Several devices: a custom call is not partitioned, XLA would gather the split batch onto each device.
    return (dtype == jnp.float32 and jax.default_backend() == "cpu" and jax.device_count() == 1
            and (units is None or units in native.FAST_UNITS)
            and (features is None or features <= native.FAST_MAX_FEATURES))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def native_gru(x, kernel, bias, recurrent_kernel, reverse_mask):
    """D Keras GRU directions over x (B, T, F) batch-major, with the weights of each direction stacked:
    kernel (D, F, 3h), bias (D, 2, 3h), recurrent_kernel (D, h, 3h); direction d runs backwards in time
    when bit d of ``reverse_mask`` is set. Returns (B, T, D * h): the directions' states side by side,
    time-aligned (Keras' ``Bidirectional(merge_mode='concat')``)."""
    return native.gru_forward(x, kernel, bias, recurrent_kernel, reverse_mask)


def _native_gru_fwd(x, kernel, bias, recurrent_kernel, reverse_mask):
    hs = native.gru_forward(x, kernel, bias, recurrent_kernel, reverse_mask)
    return hs, (x, kernel, bias, recurrent_kernel, hs)


def _native_gru_bwd(reverse_mask, residuals, d_hs):
    return tuple(native.gru_backward(*residuals, d_hs, reverse_mask))


native_gru.defvjp(_native_gru_fwd, _native_gru_bwd)


def gru_scan(x, kernel, bias, recurrent_kernel, reverse=False, unroll=1):
    """All states of one Keras GRU direction. x (T, B, d) time-major; kernel (d, 3h), bias (2, 3h),
    recurrent_kernel (h, 3h) as in Keras. Returns (T, B, h), time-aligned also for ``reverse``.
    The native kernel when ``native_selected()``, else ``gru_scan_xla``."""
    if native_selected(x.dtype, recurrent_kernel.shape[0], x.shape[-1]):
        hs = native_gru(jnp.swapaxes(x, 0, 1), kernel[None], bias[None], recurrent_kernel[None], int(bool(reverse)))
        return jnp.swapaxes(hs, 0, 1)
    return gru_scan_xla(x, kernel, bias, recurrent_kernel, reverse, unroll)


def bigru(x, forward, backward, unroll=1):
    """Keras ``Bidirectional(GRU(return_sequences=True), merge_mode='concat')`` of x (B, T, d): forward and
    backward are each a direction's Keras weights {kernel, bias, recurrent_kernel}. Returns (B, T, 2h).
    Natively both directions are one call; otherwise two ``gru_scan_xla`` loops.

    ``model.BiGRU`` does not call this: it runs each direction as its own ``KerasGRU`` module (one native
    call each), because complexity accounting (``complexity.count``) reads every GRU module's output shape."""
    if native_selected(x.dtype, forward["recurrent_kernel"].shape[0], x.shape[-1]):
        stacked = [jnp.stack([forward[name], backward[name]]) for name in ("kernel", "bias", "recurrent_kernel")]
        return native_gru(x, *stacked, 0b10)
    x_t = jnp.swapaxes(x, 0, 1)
    hs = [gru_scan_xla(x_t, p["kernel"], p["bias"], p["recurrent_kernel"], reverse, unroll)
          for p, reverse in ((forward, False), (backward, True))]
    return jnp.concatenate([jnp.swapaxes(h, 0, 1) for h in hs], axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def gru_scan_xla(x, kernel, bias, recurrent_kernel, reverse=False, unroll=1):
    """``gru_scan`` in pure JAX, with the hand-written gradient below."""

    def step(h, x_t):
        h, _ = gru_step(x_t, h, kernel, bias, recurrent_kernel)
        return h, h

    return jax.lax.scan(step, _zero_state(x, recurrent_kernel), x, reverse=reverse, unroll=unroll)[1]


def _gru_scan_fwd(x, kernel, bias, recurrent_kernel, reverse, unroll):
    def step(h, x_t):
        h, gates = gru_step(x_t, h, kernel, bias, recurrent_kernel, gru_matmul)
        return h, (h, *gates)

    hs, z, r, n, rh = jax.lax.scan(step, _zero_state(x, recurrent_kernel), x, reverse=reverse, unroll=unroll)[1]
    return hs, (x, hs, z, r, n, rh, kernel, recurrent_kernel)


def weight_grads_after_loop() -> bool:
    """Where the GRU gradient sums its weight gradients over (time, batch): in the loop carry with one
    process (fastest: each step's values are summed while they are in cache), after the loop as one
    contraction with several. With the batch split across hosts XLA keeps a loop carry replicated, so
    a sum carried through the loop is all-reduced over the network at every time step (two per step
    of each direction); after the loop it is one all-reduce per weight (docs/training.md)."""
    return jax.process_count() > 1


def _matmul_at_tb(a, b):
    """a.T @ b over the two leading (time, batch) axes, as one dot: a batch split over devices stays
    local (a reshape to (time * batch, .) would first gather it)."""
    return jax.lax.dot_general(a, b, (((0, 1), (0, 1)), ((), ())))


gru_matmul_at_tb = per_run(_matmul_at_tb, "gru")


def _gate_grads(dh, h_p, z, r, n, rh):
    """One step's gradients of the input projection and of ``h_prev @ recurrent_kernel + bias[1]``."""
    d_z = dh * (h_p - n) * z * (1.0 - z)  # through the sigmoid
    d_n = dh * (1.0 - z) * (1.0 - n * n)  # through the tanh
    d_r = d_n * rh * r * (1.0 - r)
    return jnp.concatenate([d_z, d_r, d_n], axis=-1), jnp.concatenate([d_z, d_r, d_n * r], axis=-1)


def _gru_scan_bwd(reverse, unroll, residuals, d_hs):
    x, hs, z, r, n, rh, kernel, recurrent_kernel = residuals
    zero = jnp.zeros_like(hs[:1])
    # The state each step started from: the previous step's output in the direction of travel.
    h_prev = jnp.concatenate([hs[1:], zero]) if reverse else jnp.concatenate([zero, hs[:-1]])
    kernel_t, recurrent_kernel_t = kernel.T, recurrent_kernel.T

    if weight_grads_after_loop():
        def step_only(dh, per_step):
            d_out, h_p, z, r, n, rh = per_step
            dh = dh + d_out
            d_in, d_rec = _gate_grads(dh, h_p, z, r, n, rh)
            return dh * z + gru_matmul(d_rec, recurrent_kernel_t), (gru_matmul(d_in, kernel_t), d_in, d_rec)

        _, (dx, d_in, d_rec) = jax.lax.scan(step_only, jnp.zeros_like(hs[0]), (d_hs, h_prev, z, r, n, rh),
                                            reverse=not reverse, unroll=unroll)
        d_bias = jnp.stack([d_in.sum((0, 1)), d_rec.sum((0, 1))])
        return dx, gru_matmul_at_tb(x, d_in), d_bias, gru_matmul_at_tb(h_prev, d_rec)

    def step(carry, per_step):
        dh, d_kernel, d_bias, d_recurrent = carry
        d_out, x_t, h_p, z, r, n, rh = per_step
        dh = dh + d_out
        d_in, d_rec = _gate_grads(dh, h_p, z, r, n, rh)
        carry = (
            dh * z + gru_matmul(d_rec, recurrent_kernel_t),
            d_kernel + gru_matmul_at(x_t, d_in),
            d_bias + jnp.stack([d_in.sum(0), d_rec.sum(0)]),
            d_recurrent + gru_matmul_at(h_p, d_rec),
        )
        return carry, gru_matmul(d_in, kernel_t)

    init = (jnp.zeros_like(hs[0]), jnp.zeros_like(kernel), jnp.zeros((2, kernel.shape[1]), x.dtype),
            jnp.zeros_like(recurrent_kernel))
    (_, d_kernel, d_bias, d_recurrent), dx = jax.lax.scan(
        step, init, (d_hs, x, h_prev, z, r, n, rh), reverse=not reverse, unroll=unroll
    )
    return dx, d_kernel, d_bias, d_recurrent


gru_scan_xla.defvjp(_gru_scan_fwd, _gru_scan_bwd)


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1,), "SAME", dimension_numbers=_CONV_DIMS)


def _conv_input_grad(kernel, dy):
    return jax.vjp(lambda x: _conv(x, kernel), jnp.zeros((*dy.shape[:-1], kernel.shape[1]), dy.dtype))[1](dy)[0]


def _conv_kernel_grad(x, dy, k: int):
    """The weight gradient as one matmul over all (batch, time) positions of the k shifted inputs."""
    c_in, c_out = x.shape[-1], dy.shape[-1]
    if k == 1:
        columns = x
    else:
        left = (k - 1) // 2
        padded = jnp.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
        columns = jnp.concatenate([padded[:, j : j + x.shape[1]] for j in range(k)], axis=-1)
    d_kernel = jax.lax.dot_general(
        columns.reshape(-1, k * c_in), dy.reshape(-1, c_out), (((0,), (0,)), ((), ()))
    )
    return d_kernel.reshape(k, c_in, c_out)


conv_run = per_run(_conv, "conv")
conv_input_grad_run = per_run(_conv_input_grad, "conv")


@jax.custom_vjp
def conv1d_same(x, kernel, bias):
    """Keras ``Conv1D(padding='same')``: x (B, T, C_in), kernel (k, C_in, C_out), bias (C_out,)."""
    return _conv(x, kernel) + bias


def _conv1d_same_fwd(x, kernel, bias):
    return conv_run(x, kernel) + bias, (x, kernel)


def _conv1d_same_bwd(residuals, dy):
    x, kernel = residuals
    k = kernel.shape[0]
    kernel_grad = per_run(functools.partial(_conv_kernel_grad, k=k), "conv")
    return conv_input_grad_run(kernel, dy), kernel_grad(x, dy), dy.sum(axis=(0, 1))


conv1d_same.defvjp(_conv1d_same_fwd, _conv1d_same_bwd)
