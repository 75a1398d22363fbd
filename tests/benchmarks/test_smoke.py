"""Every benchmark module runs in quick mode and returns Results with positive figures."""

import math

import pytest

from benchmarks import load, module_names
from benchmarks.common import Result


def test_the_dataloader_benchmark_is_discovered():
    assert "bench_dataloader" in module_names()


@pytest.mark.parametrize("name", module_names())
def test_quick_run_returns_positive_results(name):
    results = load(name).run(quick=True)
    assert results, f"{name}.run(quick=True) returned no results"
    for result in results:
        assert isinstance(result, Result)
        assert result.name and result.unit and result.goal
        assert result.ours > 0 and result.reference > 0
        assert math.isfinite(result.ratio) and result.ratio > 0
