"""Job handlers for tests that run in spawned worker processes (a light module to import).

``effect_handler`` leaves a trace of everything it does in the file ``inputs["effects"]``, one
line per event, so that a test can count starts and publications across processes:
``start <pid> <attempt>`` when it begins, ``fenced <job id> <attempt>`` after ``ctx.fence()``,
then after ``publish_s`` seconds (the publication's own time) ``publish <job id> <attempt>``.
Its steps go through a (disabled) tqdm bar, as the evaluator's and explainer's handlers do.
"""

import os
import time

from tqdm import tqdm


def _log(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def effect_handler(job: dict, ctx) -> dict:
    """``steps`` steps of ``step_s`` seconds with progress, then a fenced publication."""
    inputs = job["inputs"]
    attempt = job.get("attempts")
    _log(inputs["effects"], f"start {os.getpid()} {attempt}")
    steps = inputs.get("steps", 1)
    for i in tqdm(range(steps), disable=True):  # a bar, as the evaluator's and explainer's
        time.sleep(inputs.get("step_s", 0.0))
        ctx.progress((i + 1) / steps, f"step {i + 1}/{steps}")
    ctx.fence()
    _log(inputs["effects"], f"fenced {job['job_id']} {attempt}")
    time.sleep(inputs.get("publish_s", 0.0))
    _log(inputs["effects"], f"publish {job['job_id']} {attempt}")
    return {"pid": os.getpid(), "attempt": attempt}


def effects(path) -> list[list[str]]:
    """The lines of an effects file, split into words."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []
