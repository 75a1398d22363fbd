"""What every benchmark module shares: the ``Result`` row and a timer.

A benchmark module ``benchmarks/bench_<topic>.py`` defines ``run(quick: bool = False) ->
list[Result]``; each ``Result`` compares our implementation with a reference measured side by
side in the same process. ``quick=True`` must finish in seconds (the smoke test uses it).
"""

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_RATIO_GOAL = re.compile(r"ratio\s*(≥|>=|>)\s*([0-9]*\.?[0-9]+)")


@dataclass
class Result:
    """One measurement against its reference.

    Attributes:
        name: What was measured, with the workload (e.g. image count and size).
        ours: Our figure, in ``unit``.
        reference: The reference's figure, in ``unit``.
        unit: ``"s"``, ``"ms"``, ``"MB"``, ``"images/s"``...
        goal: The target in words; a ``ratio ≥ N`` (or ``> N``) in it is checked.
        note: Anything that helps read the figures.
        higher_is_better: For rates (e.g. images/s); times and memory are lower-is-better.
    """

    name: str
    ours: float
    reference: float
    unit: str
    goal: str
    note: str = ""
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        """How many times better ours is: ``reference / ours`` (or ``ours / reference``)."""
        num, den = (self.ours, self.reference) if self.higher_is_better else (
            self.reference, self.ours,
        )  # fmt: skip
        return num / den if den else float("inf")

    @property
    def goal_met(self) -> bool | None:
        """Whether the ratio meets the ``ratio ≥ N`` in ``goal``; None when the goal has none."""
        match = _RATIO_GOAL.search(self.goal)
        if match is None:
            return None
        bound = float(match.group(2))
        return self.ratio > bound if match.group(1) == ">" else self.ratio >= bound


def scratch_experiment(folder: Path, name: str) -> str:
    """The SQLite tracking store in ``folder`` with experiment ``name`` (made once) whose
    artifacts stay in ``folder`` too: MLflow's default, ``./mlruns`` of the working directory,
    is the checkout. Returns the tracking URI."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=str(folder / "artifacts"))
    return uri


def scratch_tracking(folder: Path, name: str) -> str:
    """:func:`scratch_experiment`, made this process's tracking store and active experiment."""
    import mlflow

    uri = scratch_experiment(folder, name)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(name)
    return uri


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a benchmark starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_best(
    ours: Callable[[], object], reference: Callable[[], object], repeat: int = 3
) -> tuple[float, float]:
    """Best times of ``ours`` and ``reference`` run alternately, so that load on the machine
    (other processes, CPU frequency) affects both alike."""
    a, b = [], []
    for _ in range(repeat):
        a.append(best_time(ours, 1))
        b.append(best_time(reference, 1))
    return min(a), min(b)


def format_table(results: list[Result]) -> str:
    """The results as an aligned text table."""
    header = ("benchmark", "ours", "reference", "unit", "ratio", "goal", "met", "note")
    rows = [header]
    for r in results:
        met = {True: "yes", False: "NO", None: ""}[r.goal_met]
        rows.append((r.name, f"{r.ours:.4g}", f"{r.reference:.4g}", r.unit, f"{r.ratio:.2f}×",
                     r.goal, met, r.note))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
