"""Shared fixtures. Helpers live in ``tiny.py`` (small real data and models); no test module imports another."""
import os
import shutil
import tempfile

import jax
import pytest

import tiny

# Every training test builds its own optimizer (a new static part of the train state), so jit's in-memory cache
# misses and each fit would compile the same train and eval steps again. One persistent XLA cache for the whole
# session, fresh each session, makes each distinct program compile once; the minimum compile time keeps the
# many small eager-op programs out of it.
_XLA_CACHE = {"dir": None, "min_compile_s": "0.2"}


def pytest_configure(config):
    # Before collection: JAX decides whether to use the cache at its first compile.
    _XLA_CACHE["dir"] = tempfile.mkdtemp(prefix="jazbat-tests-xla-cache-")
    jax.config.update("jax_compilation_cache_dir", _XLA_CACHE["dir"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(_XLA_CACHE["min_compile_s"]))


def pytest_unconfigure(config):
    if _XLA_CACHE["dir"]:
        shutil.rmtree(_XLA_CACHE["dir"], ignore_errors=True)


@pytest.fixture(scope="session")
def xla_cache_env():
    """The environment for a subprocess that compiles what this session compiles (a killed run and its resume):
    the session's XLA cache."""
    return {**os.environ, "JAX_COMPILATION_CACHE_DIR": _XLA_CACHE["dir"],
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": _XLA_CACHE["min_compile_s"]}


@pytest.fixture(scope="session")
def jazbat_1d_source():
    """``tiny.export_source()``: what the export and deployment-profile tests convert."""
    return tiny.export_source()


@pytest.fixture(scope="session")
def jazbat_1d_export(jazbat_1d_source, tmp_path_factory):
    """Its TFLite, ONNX and SavedModel files, each through its parity gate (conversions are slow: once per
    session): (folder, manifest)."""
    from conversion import export

    out = tmp_path_factory.mktemp("export")
    return out, export.export(jazbat_1d_source, out, ["tflite", "onnx", "saved_model"])


@pytest.fixture(scope="session")
def expected():
    """The exact numbers the tests assert (tests/expected_counts.json)."""
    return tiny.EXPECTED


@pytest.fixture(scope="session")
def make_windows():
    return tiny.tiny_windowset


@pytest.fixture(scope="session")
def make_model():
    return tiny.tiny_model
