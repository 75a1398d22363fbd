"""Checks of an evaluation request, made at once so that the API answers 404/422/503 before
queueing a job: the run, its model and preprocessing, and the data folder."""

from pathlib import Path

from common import InvalidInput, Preprocessing, check_run, run_data_dir


def check_classes(path: Path, pp: Preprocessing) -> None:
    """Raise ``InvalidInput`` when a folder dataset's ``test/`` has a class the model lacks.

    Only folder names are compared (cheap, at submission time); a class of the model missing
    from the test set is allowed (its AUC is reported as undefined). ``.npz`` files are checked
    when the job loads them.
    """
    test = path / "test"
    if not test.is_dir():
        return
    found = sorted(p.name for p in test.iterdir() if p.is_dir() and not p.name.startswith("."))
    foreign = [name for name in found if name not in pp.class_names]
    if foreign:
        raise InvalidInput(
            f"the classes in {test} ({', '.join(found)}) differ from the model's "
            f"({', '.join(pp.class_names)}): {', '.join(foreign)} is not one of them; evaluate "
            "with data of the classes the run was trained on."
        )


def prepare_inputs(
    run_id: str,
    tracking_uri: str,
    data_root: Path,
    data_dir: str | None = None,
    batch_size: int = 256,
    tta: str = "none",
) -> dict:
    """Validate an API request at once and return the job's inputs (``data_dir`` resolved).

    Raises:
        NotFound, InvalidInput, ServiceUnavailable: As ``check_run``; InvalidInput also for a
            missing data folder, one outside ``data_root`` or with other classes.
    """
    pp, param = check_run(tracking_uri, run_id)
    path = run_data_dir(run_id, data_dir, param, data_root, confine=True)
    check_classes(path, pp)
    return {"data_dir": str(path), "batch_size": batch_size, "tta": tta}
