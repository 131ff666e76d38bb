"""The Keras 3 twin (benchmarks/keras_twin.py) has Jazbat-Net's layers: same parameter count and,
with the Flax weights copied in, the same probabilities."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

pytestmark = pytest.mark.slow  # builds and converts the Keras 3 twin with TensorFlow

from conversion.source import fresh_source, perturbed  # noqa: E402

# benchmarks/ is not a package (its files import it as `keras_twin`); load it by path.
_spec = importlib.util.spec_from_file_location("keras_twin", Path(__file__).parents[1] / "benchmarks" / "keras_twin.py")
keras_twin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(keras_twin)
build_keras_twin, copy_flax_weights = keras_twin.build_keras_twin, keras_twin.copy_flax_weights


def test_twin_matches_the_flax_model():
    source = perturbed(fresh_source("jazbat_net", "1d"), seed=5)
    twin = build_keras_twin(input_dim=1, num_classes=6, reduce_filters=6)
    assert twin.count_params() == 28360
    copy_flax_weights(twin, source.variables)
    x = np.random.default_rng(0).standard_normal((4, 256, 1)).astype(np.float32)
    np.testing.assert_allclose(twin.predict(x, verbose=0), np.asarray(source.probabilities_fn()(x)), atol=1e-5, rtol=0)
