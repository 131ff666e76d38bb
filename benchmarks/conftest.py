"""Every test under benchmarks/ is a benchmark: marked `bench`, and skipped by the default test run
(`--benchmark-disable` is in the default options, and `tests/` is the default test path)."""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.bench)
