"""The benchmark runner: discovery, --only, the table, and a failing module not stopping others."""

import sys
import textwrap

import pytest

import benchmarks
from benchmarks.__main__ import main

OK = """
from benchmarks.common import Result

def run(quick=False):
    return [Result("zz fast thing", ours=2.0, reference=10.0, unit="s", goal="ratio ≥ 4")]
"""
BROKEN = """
def run(quick=False):
    raise RuntimeError("the reference could not start")
"""


@pytest.fixture
def extra_modules(tmp_path, monkeypatch):
    """Two real benchmark modules in a temporary folder on the package's search path."""
    (tmp_path / "bench_zz_ok.py").write_text(textwrap.dedent(OK))
    (tmp_path / "bench_zz_broken.py").write_text(textwrap.dedent(BROKEN))
    monkeypatch.setattr(benchmarks, "__path__", [*benchmarks.__path__, str(tmp_path)])
    yield
    for name in ("benchmarks.bench_zz_ok", "benchmarks.bench_zz_broken"):
        sys.modules.pop(name, None)


def test_discovery_finds_bench_modules_only(extra_modules):
    names = benchmarks.module_names()
    assert {"bench_zz_ok", "bench_zz_broken", "bench_dataloader"} <= set(names)
    assert "common" not in names and names == sorted(names)


def test_failing_module_is_reported_and_the_others_still_run(extra_modules, capsys):
    assert main(["--quick", "--only", "zz_"]) == 1
    out = capsys.readouterr().out
    assert "zz fast thing" in out and "5.00×" in out and "yes" in out
    assert "FAILED bench_zz_broken: RuntimeError: the reference could not start" in out


def test_only_selects_modules(extra_modules, capsys):
    assert main(["--quick", "--only", "zz_ok"]) == 0
    out = capsys.readouterr().out
    assert "zz fast thing" in out and "FAILED" not in out


def test_only_without_a_match_is_an_error(capsys):
    assert main(["--only", "no-such-benchmark"]) == 2
    assert "no benchmark matches" in capsys.readouterr().err
