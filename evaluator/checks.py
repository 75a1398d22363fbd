"""Checks of an evaluation request, made at once so that the API answers 404/422/503 before
queueing a job: the run, its model and preprocessing, and the data folder and its fit."""

from pathlib import Path

from runs import check_run, data_inputs, inference, run_data_dir


def prepare_inputs(
    run_id: str,
    tracking_uri: str,
    data_root: Path,
    data_dir: str | None = None,
    batch_size: int = inference.BATCH_SIZE,
    tta: str = "none",
) -> dict:
    """Validate an API request at once and return the job's inputs (``data_dir`` resolved).

    Raises:
        NotFound, InvalidInput, ServiceUnavailable: As ``check_run``; InvalidInput also for a
            missing data folder, one outside ``data_root``, or data that does not fit the
            model (channels, classes, image size: ``runs.check_compatible``).
    """
    pp, param = check_run(tracking_uri, run_id)
    path = run_data_dir(run_id, data_dir, param, data_root, confine=True)
    return {**data_inputs(path, pp), "batch_size": batch_size, "tta": tta}
