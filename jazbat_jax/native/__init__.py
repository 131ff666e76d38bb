"""The BiGRU recurrence as native XLA FFI custom calls for the CPU (``bigru.cc``), built on first use.

``bigru.cc`` is compiled with the system's C++ compiler the first time it is asked for, into a cache
folder keyed by a hash of the source, the compiler, its flags and the jaxlib headers (a file lock
lets concurrent processes share one build), loaded with ``ctypes`` and registered with XLA. Building
at first use rather than at install time keeps the package a pure-Python wheel: the build needs
jaxlib's FFI headers, which only an installed jaxlib provides. Without a working compiler,
``available()`` is False and ``unavailable_reason()`` says why; ``jazbat_jax.kernels`` then uses its
pure-JAX kernels and says so in one line.

The calls are wrapped in two JAX primitives (forward, backward) rather than called directly, for
two reasons:

* export: ``jax.export`` and jax2tf (which serialises through ``jax.export``) refuse custom calls
  they do not know, and the StableHLO a user exports must run without this library. When a module
  is lowered for export, the primitives lower to the plain JAX formulation instead, so an exported
  model is exactly what it was without the native kernels. Other platforms than the CPU get the
  plain formulation too.
* ``jax.vmap`` over runs (``train/multi.py``): the batching rule loops over the batch members, each
  one the unbatched call, as ``kernels.per_run`` does for the pure-JAX kernels.
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

SOURCE = Path(__file__).with_name("bigru.cc")
# The GRU shapes ``kernels.native_selected`` gives these kernels, where they beat XLA (docs/training.md):
# hidden sizes with register-blocked vector code in bigru.cc (any other size runs a scalar loop), and
# inputs narrow enough for the per-step input projection (Jazbat-Net reads 1-6 channels; S-754's second
# BiGRU reads 192 features, which XLA projects faster as one matmul).
FAST_UNITS = (16, 32, 64)
FAST_MAX_FEATURES = 8
TARGETS = {  # XLA custom-call name -> symbol in the library
    "jazbat_gru_forward": "JazbatGruForward",
    "jazbat_gru_backward": "JazbatGruBackward",
}


def cache_dir() -> Path:
    """Where built libraries are kept: ``$JAZBAT_NATIVE_CACHE``, else ``$XDG_CACHE_HOME/jazbat-jax/native``
    (``~/.cache/jazbat-jax/native``)."""
    if os.environ.get("JAZBAT_NATIVE_CACHE"):
        return Path(os.environ["JAZBAT_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jazbat-jax" / "native"


def compiler() -> str | None:
    """The C++ compiler to build with: ``$CXX``, else ``g++``, else ``c++`` (None: none found)."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_flags() -> list[str]:
    flags = ["-O3", "-std=c++17", "-shared", "-fPIC", "-w", "-I", jax.ffi.include_dir()]
    if platform.machine().lower() in ("x86_64", "amd64"):
        # The AVX-512 clone uses whole 512-bit registers (compilers default to 256-bit ones there);
        # the other clones are unaffected. No -march: the library must run on any x86-64.
        flags.append("-mprefer-vector-width=512")
    return flags


def _compiler_version(cxx: str) -> str:
    return subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout.split("\n")[0]


def _headers_digest() -> str:
    root = Path(jax.ffi.include_dir()) / "xla" / "ffi" / "api"
    digest = hashlib.sha256()
    for header in sorted(root.glob("*.h")):
        digest.update(header.read_bytes())
    return digest.hexdigest()


def library_path(cxx: str, source: bytes | None = None) -> Path:
    """Where the library built from ``source`` (default: ``bigru.cc``) with this toolchain is cached."""
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes() if source is None else source, _compiler_version(cxx).encode(),
                 " ".join(compile_flags()).encode(), _headers_digest().encode(), platform.machine().encode()):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / f"bigru-{key.hexdigest()[:16]}.so"


def build(cxx: str, source: bytes | None = None) -> Path:
    """The library for this source (default: ``bigru.cc``) and toolchain, compiled unless already in the cache."""
    source = SOURCE.read_bytes() if source is None else source
    path = library_path(cxx, source)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build; the others wait for it and load its result
        if path.exists():
            return path
        print(f"jazbat: building the native GRU kernels into {path.parent} (once; {Path(cxx).name})", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        os.close(fd)
        try:  # the source comes on stdin: the same bytes whether they are bigru.cc or a committed copy of it
            done = subprocess.run([cxx, *compile_flags(), "-x", "c++", "-", "-o", tmp], input=source,
                                  capture_output=True, timeout=600)
            if done.returncode != 0:
                lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
                detail = next((line for line in lines if "error" in line), lines[-1]).strip()
                raise RuntimeError(f"{Path(cxx).name} failed to build {SOURCE.name}: {detail}")
            os.replace(tmp, path)  # atomic: a reader sees no library or a whole one
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    if sys.platform != "linux":
        return None, f"native GRU kernels are built for Linux only (this is {sys.platform})"
    cxx = compiler()
    if cxx is None:
        return None, "no C++ compiler found (set CXX, or install g++)"
    try:
        lib = ctypes.cdll.LoadLibrary(str(build(cxx)))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as error:
        return None, f"native GRU kernels could not be built or loaded: {error}".splitlines()[0]
    return lib, ""


REFERENCE_SUFFIX = "_reference"  # target names of a library built from another source (``load_reference``)


def load_reference(source: bytes) -> None:
    """Build ``source`` (a copy of ``bigru.cc`` as accepted code had it) and register its calls under the
    target names + ``REFERENCE_SUFFIX``, beside the current ones: the benchmarks time the current kernels
    against the accepted ones in one process. Raises RuntimeError (one line) when it cannot."""
    cxx = compiler()
    if sys.platform != "linux" or cxx is None:
        raise RuntimeError("the native reference kernels need Linux and a C++ compiler (set CXX, or install g++)")
    try:
        lib = ctypes.cdll.LoadLibrary(str(build(cxx, source)))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name + REFERENCE_SUFFIX, jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
    except (OSError, subprocess.SubprocessError, AttributeError) as error:
        raise RuntimeError(f"the native reference kernels could not be built or loaded: {error}".splitlines()[0]) from None


def available() -> bool:
    """Whether the native kernels are built, loaded and registered (builds them on the first call)."""
    return _load()[0] is not None


def unavailable_reason() -> str:
    """Why ``available()`` is False, in one line ('' when it is True)."""
    return _load()[1]


# ---------------------------------------------------------------- the plain formulation
# What the primitives compute, in JAX: their lowering for export and for other platforms than the CPU.


def plain_forward(x, kernel, bias, rk, *, reverse_mask: int):
    """hs (B, T, D*H) of x (B, T, F) with stacked (D, ...) Keras weights (see bigru.cc), as
    ``kernels.gru_step`` computes it."""
    from jazbat_jax.kernels import gru_step

    def direction(d):
        def step(h, x_t):
            h, _ = gru_step(x_t, h, kernel[d], bias[d], rk[d])
            return h, h

        h0 = jnp.zeros((x.shape[0], rk.shape[1]), x.dtype)
        return jnp.swapaxes(jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1), reverse=bool(reverse_mask >> d & 1))[1], 0, 1)

    return jnp.concatenate([direction(d) for d in range(kernel.shape[0])], axis=-1)


def plain_backward(x, kernel, bias, rk, hs, d_hs, *, reverse_mask: int):
    del hs  # recomputed: this path only serves export and other platforms
    _, vjp = jax.vjp(lambda *w: plain_forward(*w, reverse_mask=reverse_mask), x, kernel, bias, rk)
    return list(vjp(d_hs))


# ---------------------------------------------------------------- primitives


def _forward_abstract(x, kernel, bias, rk, *, reverse_mask):
    return [jax.core.ShapedArray((x.shape[0], x.shape[1], rk.shape[0] * rk.shape[1]), x.dtype)]


def _backward_abstract(x, kernel, bias, rk, hs, d_hs, *, reverse_mask):
    return [jax.core.ShapedArray(a.shape, a.dtype) for a in (x, kernel, bias, rk)]


def _plain_forward(*args, reverse_mask):
    return [plain_forward(*args, reverse_mask=reverse_mask)]


# Set by ``exporting_custom_calls``: the suffix of the targets an export calls instead of the plain formulation.
_EXPORT_SUFFIX: contextvars.ContextVar[str | None] = contextvars.ContextVar("jazbat_native_export_suffix",
                                                                             default=None)


@contextlib.contextmanager
def exporting_custom_calls(suffix: str = REFERENCE_SUFFIX):
    """Within it, ``jax.export`` keeps the custom calls (to the targets + ``suffix``) instead of lowering to the
    plain formulation: the benchmarks' regression reference of the native kernels is such an export, run
    against the kernels ``load_reference`` registered. The export must allow the targets
    (``exported_targets``); running it needs them registered."""
    # JAX caches lowerings without this setting in the key: clear them on the way in and out, so that no
    # export is served another's lowering.
    jax.clear_caches()
    token = _EXPORT_SUFFIX.set(suffix)
    try:
        yield
    finally:
        _EXPORT_SUFFIX.reset(token)
        jax.clear_caches()


def exported_targets(suffix: str = REFERENCE_SUFFIX) -> list[str]:
    return [name + suffix for name in TARGETS]


def _lowering(target, plain):
    def rule(ctx, *args, reverse_mask):
        name = target
        if ctx.module_context.lowering_parameters.for_export:
            if _EXPORT_SUFFIX.get() is None:
                return mlir.lower_fun(plain, multiple_results=True)(ctx, *args, reverse_mask=reverse_mask)
            name = target + _EXPORT_SUFFIX.get()
        return jax.ffi.ffi_lowering(name)(ctx, *args, reverse_mask=np.int64(reverse_mask))

    return rule


def _loop_over_batch(primitive):
    """Batching rule: one call per batch member (each exactly the unbatched call), stacked."""

    def rule(args, dims, **params):
        size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)  # None: not batched
        outs = [primitive.bind(*(a if d is None else jax.lax.index_in_dim(a, i, d, keepdims=False)
                                 for a, d in zip(args, dims)), **params) for i in range(size)]
        return [jnp.stack(o) for o in zip(*outs)], [0] * len(outs[0])

    return rule


def _primitive(target, abstract, plain):
    p = Primitive(target)
    p.multiple_results = True
    p.def_abstract_eval(abstract)
    p.def_impl(lambda *args, **params: jax.jit(functools.partial(p.bind, **params))(*args))
    mlir.register_lowering(p, mlir.lower_fun(plain, multiple_results=True))  # every platform but the CPU
    mlir.register_lowering(p, _lowering(target, plain), platform="cpu")
    batching.primitive_batchers[p] = _loop_over_batch(p)
    return p


forward_p = _primitive("jazbat_gru_forward", _forward_abstract, _plain_forward)
backward_p = _primitive("jazbat_gru_backward", _backward_abstract, plain_backward)


def _require() -> None:
    if not available():
        raise RuntimeError(unavailable_reason())


def gru_forward(x, kernel, bias, rk, reverse_mask: int):
    """Native forward: the states hs (B, T, D*H) (also what the gradient needs)."""
    _require()
    return forward_p.bind(x, kernel, bias, rk, reverse_mask=int(reverse_mask))[0]


def gru_backward(x, kernel, bias, rk, hs, d_hs, reverse_mask: int):
    """Native gradient: (dx, d_kernel, d_bias, d_recurrent_kernel) from the forward's states hs."""
    _require()
    return backward_p.bind(x, kernel, bias, rk, hs, d_hs, reverse_mask=int(reverse_mask))
