"""Shared fixtures. Helpers live in ``tiny.py`` (small real data and models); no test module imports another."""
import pytest

import tiny


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
