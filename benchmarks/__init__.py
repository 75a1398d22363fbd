"""Benchmarks: each ``bench_<topic>.py`` compares our code with a reference, as ratios.

``python -m benchmarks [--quick] [--only NAME]`` runs them all and prints one table.
"""

import importlib
import pkgutil
from types import ModuleType


def module_names() -> list[str]:
    """Names of the benchmark modules (``bench_*``), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("bench_"))


def load(name: str) -> ModuleType:
    """Import the benchmark module ``name`` (e.g. ``"bench_dataloader"``)."""
    return importlib.import_module(f"{__name__}.{name}")
