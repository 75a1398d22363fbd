import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from common import InvalidInput
from mlpipeline_model import DECODING_VERSION
from trainer import checkpoint, train

pytestmark = pytest.mark.slow


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key)]


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, trainer_argv, mlflow_server):
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    # Shifts on top of the default flips and CutMix: every random draw must resume where it was.
    straight = train([*trainer_argv("--checkpoint-dir", str(straight_dir), "--shift", "1")])
    first = train(
        [*trainer_argv("--checkpoint-dir", str(resumed_dir), "--shift", "1"),
         "--max-epochs-this-session", "1"]
    )  # fmt: skip
    assert MlflowClient(mlflow_server).get_run(first).info.status == "KILLED"
    assert torch.load(resumed_dir / "last.pt", weights_only=False)["epoch"] == 1
    resumed = train([*trainer_argv("--checkpoint-dir", str(resumed_dir)), "--resume", "auto"])

    assert resumed == first, "resuming must continue the same MLflow run"
    run = MlflowClient(mlflow_server).get_run(resumed)
    assert run.info.status == "FINISHED"
    assert run.data.tags["pipeline.resumed"] == "true"  # the record says it was cut in two
    starts = [s["start_epoch"] for s in json.loads(run.data.tags["pipeline.sessions"])]
    assert starts == [1, 2]
    assert "pipeline.resumed" not in MlflowClient(mlflow_server).get_run(straight).data.tags
    for key in ("train_loss", "val_loss", "val_auc", "lr"):
        assert _history(mlflow_server, resumed, key) == _history(mlflow_server, straight, key)
    a = torch.load(straight_dir / "last.pt", weights_only=False)["model"]
    b = torch.load(resumed_dir / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_an_epoch_logged_but_not_checkpointed_is_not_logged_twice_on_resume(
    tmp_path, trainer_argv, mlflow_server
):
    from mlflow.entities import Metric

    first = train([*trainer_argv(), "--max-epochs-this-session", "1"])
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc", "lr",
            "epoch_time")  # fmt: skip
    # Epoch 2 logged, then the trainer killed before its checkpoint: resumed, it trains epoch 2
    MlflowClient(mlflow_server).log_batch(first, [Metric(k, 0.5, 0, 2) for k in keys])
    assert train(trainer_argv("--resume", "auto")) == first
    for key in keys:
        assert sorted(step for step, _ in _history(mlflow_server, first, key)) == [1, 2], key


def test_same_seed_gives_the_same_model(tmp_path, trainer_argv):
    states = []
    for name in ("a", "b"):
        folder = tmp_path / name
        train([*trainer_argv("--checkpoint-dir", str(folder), "--epochs", "1")])
        states.append(torch.load(folder / "last.pt", weights_only=False)["model"])
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_resume_auto_after_a_finished_run_starts_a_new_run(tmp_path, trainer_argv):
    argv = trainer_argv("--epochs", "1")
    first = train(argv)
    assert train([*argv, "--resume", "auto"]) != first


def test_resuming_a_finished_checkpoint_is_a_clear_error(tmp_path, trainer_argv):
    first = train(trainer_argv("--epochs", "1"))
    with pytest.raises(InvalidInput, match=f"{first}, which already finished"):
        train(trainer_argv("--resume", str(tmp_path / "checkpoints")))


def test_missing_checkpoint_is_a_clear_error(tmp_path, trainer_argv):
    with pytest.raises(InvalidInput, match="does not exist"):
        train(trainer_argv("--resume", str(tmp_path / "nowhere.pt")))


def test_damaged_checkpoint_is_a_clear_error(tmp_path, trainer_argv):
    damaged = tmp_path / "last.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidInput, match="cannot be read"):
        train(trainer_argv("--resume", str(damaged)))


def test_checkpoint_of_a_run_the_server_lacks_is_a_clear_error(tmp_path, trainer_argv):
    train([*trainer_argv(), "--max-epochs-this-session", "1"])
    path = tmp_path / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=False)
    state["run_id"] = "0" * 32
    torch.save(state, path)
    with pytest.raises(InvalidInput, match="not on the tracking server"):
        train(trainer_argv("--resume", str(path)))
    assert train(trainer_argv("--resume", "auto")) != "0" * 32  # auto: a new run, saying why


def test_resume_auto_starts_a_new_run_where_the_checkpoints_run_was_deleted(
    tmp_path, trainer_argv, mlflow_server, capsys
):
    """A KILLED run deleted in MLflow's UI must not stop every start of a Job with --resume auto."""
    earlier = train([*trainer_argv(), "--max-epochs-this-session", "1"])
    MlflowClient(mlflow_server).delete_run(earlier)
    later = train(trainer_argv("--resume", "auto"))
    assert later != earlier
    assert f"mlflow runs restore --run-id {earlier}" in capsys.readouterr().err


def test_default_folder_follows_the_checkpoint_dir_setting(monkeypatch, tmp_path):
    """Containers set CHECKPOINT_DIR: their working folder /app is read-only."""
    from common import get_settings
    from trainer import checkpoint

    monkeypatch.delenv("CHECKPOINT_DIR", raising=False)
    get_settings.cache_clear()
    try:
        assert checkpoint.default_dir("my exp") == Path(".state/checkpoints/my_exp")
        monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path))
        get_settings.cache_clear()
        assert checkpoint.default_dir("my exp") == tmp_path / "my_exp"
    finally:
        get_settings.cache_clear()


def test_resuming_with_other_settings_is_refused_naming_them(tmp_path, trainer_argv):
    folder = tmp_path / "ck"
    train([*trainer_argv("--checkpoint-dir", str(folder)), "--max-epochs-this-session", "1"])
    other = trainer_argv("--checkpoint-dir", str(folder), "--epochs", "5", "--lr", "0.5")
    with pytest.raises(InvalidInput, match=r"sets --epochs 5 \(the run has 2\); --lr 0.5 \("):
        train([*other, "--resume", str(folder / "last.pt")])
    # the same command resumes
    assert train([*trainer_argv("--checkpoint-dir", str(folder)), "--resume", "auto"])


def test_resuming_after_the_image_decoding_changed_is_refused(tmp_path, trainer_argv):
    argv = trainer_argv("--checkpoint-dir", str(tmp_path / "ck"))
    train([*argv, "--max-epochs-this-session", "1"])
    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)
    assert state["decoding_version"] == DECODING_VERSION
    state["decoding_version"] = DECODING_VERSION - 1  # as written by an older copy of the code
    named = tmp_path / "ck" / "copy.pt"
    torch.save(state, named)
    older = rf"\(version {DECODING_VERSION - 1}, now {DECODING_VERSION}\)"
    changed = rf"the image decoding changed since checkpoint {named} .* {older}"  # the file given
    with pytest.raises(InvalidInput, match=changed):
        train([*argv, "--resume", str(named)])


def test_resume_auto_starts_a_new_run_where_the_command_has_other_settings(
    tmp_path, trainer_argv, mlflow_server, capsys
):
    """`make demo -- other flags` after a demo stopped while training, a Job edited since."""
    folder = tmp_path / "ck"
    argv = trainer_argv("--checkpoint-dir", str(folder))
    earlier = train([*argv, "--max-epochs-this-session", "1"])
    client = MlflowClient(mlflow_server)
    client.update_run(earlier, status="RUNNING")  # as left by a trainer killed with -9
    other = trainer_argv("--checkpoint-dir", str(folder), "--epochs", "1")
    later = train([*other, "--resume", "auto"])
    assert later != earlier
    err = capsys.readouterr().err
    assert f"--resume auto starts a new run: run {earlier} (epoch 1) cannot go on here" in err
    assert f"kept as {checkpoint.kept_path(folder, earlier)}" in err
    assert "sets --epochs 1 (the run has 2)" in err
    assert client.get_run(later).data.params["epochs"] == "1"  # the command's, not the run's
    assert client.get_run(earlier).info.status == "KILLED"  # not resumed after all: closed
    kept = checkpoint.kept_path(folder, earlier)  # kept, and resumable by its path
    assert train([*argv, "--resume", str(kept)]) == earlier


def test_resume_auto_starts_a_new_run_where_the_command_gives_a_default_the_run_lacks(
    tmp_path, trainer_argv, mlflow_server
):
    """`make demo -- --batch-size 64` after a demo of 16 stopped: 64, the default, was asked for."""
    earlier = train([*trainer_argv(), "--max-epochs-this-session", "1"])  # --batch-size 16
    later = train([*trainer_argv("--batch-size", "64"), "--resume", "auto"])
    assert later != earlier
    assert MlflowClient(mlflow_server).get_run(later).data.params["batch_size"] == "64"


def test_resume_auto_starts_a_new_run_where_the_checkpoint_cannot_go_on(
    tmp_path, trainer_argv, capsys
):
    """A checkpoint of an older version (here: its image decoding) never resumes: a Job with
    --resume auto must not fail at every start because of it."""
    folder = tmp_path / "ck"
    argv = trainer_argv("--checkpoint-dir", str(folder))
    earlier = train([*argv, "--max-epochs-this-session", "1"])
    state = torch.load(folder / "last.pt", weights_only=False)
    state["decoding_version"] = DECODING_VERSION - 1
    torch.save(state, folder / "last.pt")
    later = train([*argv, "--resume", "auto"])
    assert later != earlier
    assert "the image decoding changed" in capsys.readouterr().err
    assert torch.load(folder / "last.pt", weights_only=False)["run_id"] == later
    assert checkpoint.kept_path(folder, earlier).is_file()


def _written_with(folder: Path, digest: str | None) -> None:
    """The checkpoint in ``folder`` as if validated on other images (``None``: written before
    the digest was recorded)."""
    state = torch.load(folder / "last.pt", weights_only=False)
    assert state["val_digest"] is None or len(state["val_digest"]) == 64
    state["val_digest"] = digest
    torch.save(state, folder / "last.pt")


def _grouped(tiny_data: Path, root: Path) -> Path:
    """A copy of ``tiny_data`` with a groups.csv (each image its own patient): carved by group."""
    data = root / "grouped"
    shutil.copytree(tiny_data, data)
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png"))
    (data / "groups.csv").write_text("file,group\n" + "".join(f"{f},{f}\n" for f in files))
    return data


def test_resuming_on_another_validation_carve_is_refused(tmp_path, trainer_argv):
    """A carving rule changed since would go on choosing epochs and the threshold on images
    the checkpoint trained on."""
    argv = trainer_argv("--checkpoint-dir", str(tmp_path / "ck"))
    train([*argv, "--max-epochs-this-session", "1"])
    _written_with(tmp_path / "ck", "another carve")
    with pytest.raises(InvalidInput, match=r"the validation split differs .* start a new run"):
        train([*argv, "--resume", str(tmp_path / "ck" / "last.pt")])


def test_an_older_checkpoint_resumes_where_its_carve_cannot_have_changed(tmp_path, trainer_argv):
    """Every image its own unit: the carve is the one of before the digest."""
    argv = trainer_argv("--checkpoint-dir", str(tmp_path / "ck"))
    train([*argv, "--max-epochs-this-session", "1"])
    _written_with(tmp_path / "ck", None)
    assert train([*argv, "--resume", "auto"])


def test_an_older_checkpoint_carved_by_patient_is_refused(tmp_path, trainer_argv, tiny_data):
    """The carve by patient changed in December 2026 (it took the first fold)."""
    argv = trainer_argv(
        "--checkpoint-dir", str(tmp_path / "ck"), data=_grouped(tiny_data, tmp_path)
    )
    train([*argv, "--max-epochs-this-session", "1"])
    _written_with(tmp_path / "ck", None)
    with pytest.raises(InvalidInput, match=r"the validation split differs"):
        train([*argv, "--resume", str(tmp_path / "ck" / "last.pt")])


def test_a_new_run_keeps_the_unfinished_checkpoint_of_the_run_before(tmp_path, trainer_argv):
    folder = tmp_path / "ck"
    argv = trainer_argv("--checkpoint-dir", str(folder))
    earlier = train([*argv, "--max-epochs-this-session", "1"])
    later = train([*argv, "--epochs", "1"])  # a new run in the same folder: its last.pt is its own
    kept = torch.load(checkpoint.kept_path(folder, earlier), weights_only=False)
    assert (kept["run_id"], kept["epoch"]) == (earlier, 1)
    assert torch.load(folder / "last.pt", weights_only=False)["run_id"] == later
    assert train([*argv, "--resume", str(checkpoint.kept_path(folder, earlier))]) == earlier


def test_resume_auto_does_not_continue_a_run_that_a_newer_run_replaced(
    tmp_path, trainer_argv, caplog
):
    folder = tmp_path / "ck"
    argv = trainer_argv("--checkpoint-dir", str(folder))
    earlier = train([*argv, "--max-epochs-this-session", "1"])  # its checkpoint: epoch 1
    with caplog.at_level("WARNING", logger="trainer.checkpoint"):
        # A newer run claims the folder as train() does, and is killed in its first epoch
        # (hours on real data), before a checkpoint of its own:
        checkpoint.claim(folder, "b" * 32)
        new = train([*argv, "--resume", "auto"])
    assert new not in (earlier, "b" * 32)
    kept = checkpoint.kept_path(folder, earlier)
    assert f"the unfinished run {earlier} (epoch 1) is kept as {kept}" in caplog.text
    assert torch.load(kept, weights_only=False)["epoch"] == 1


def test_resume_auto_continues_the_run_last_resumed_by_path(tmp_path, trainer_argv):
    folder = tmp_path / "ck"
    argv = trainer_argv("--checkpoint-dir", str(folder), "--epochs", "3")
    earlier = train([*argv, "--max-epochs-this-session", "1"])
    checkpoint.claim(folder, "b" * 32)  # a newer run, killed before its first checkpoint
    kept = checkpoint.kept_path(folder, earlier)
    # As the warning advises: continue the earlier run by its kept path; cut short again.
    assert train([*argv, "--resume", str(kept), "--max-epochs-this-session", "1"]) == earlier
    assert not kept.exists()  # it is the folder's last.pt again
    assert train([*argv, "--resume", "auto"]) == earlier


def _experiment(client: MlflowClient) -> str:
    """The id of the experiment "tests", created when missing."""
    found = client.get_experiment_by_name("tests")
    return found.experiment_id if found else client.create_experiment("tests")


def test_a_run_resumed_by_another_trainer_is_not_marked_killed_by_the_old_folder(mlflow_server):
    from runs import contract
    from trainer.mlflow_run import close_abandoned

    client = MlflowClient(mlflow_server)
    experiment = _experiment(client)
    run = client.create_run(experiment, tags={contract.TRAINER_TAG: "node-2:77"})  # alive there
    old_record = {"run_id": run.info.run_id, "pid": 42, "host": "node-1"}
    close_abandoned(old_record, None, mlflow_server, Path("old-folder"))
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    close_abandoned({**old_record, "pid": 77, "host": "node-2"}, None, mlflow_server, Path("f"))
    assert client.get_run(run.info.run_id).info.status == "KILLED"  # its own trainer is gone


def test_a_run_without_the_trainer_tag_is_marked_killed_when_its_folder_is_free(mlflow_server):
    from trainer.mlflow_run import close_abandoned

    client = MlflowClient(mlflow_server)
    experiment = _experiment(client)
    run = client.create_run(experiment)  # logged before the tag, or killed before it was set
    close_abandoned({"run_id": run.info.run_id, "pid": 42, "host": "node-1"}, None,
                    mlflow_server, Path("folder"))  # fmt: skip
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_a_run_resumes_after_its_files_are_named_otherwise(tmp_path, trainer_argv, monkeypatch):
    """The carved split is known by its images, not by the names results give the files."""
    from common import get_settings

    argv = trainer_argv("--checkpoint-dir", str(tmp_path / "ck"))
    train([*argv, "--max-epochs-this-session", "1"])
    monkeypatch.setenv("FILE_NAMES", "pseudonyms")
    monkeypatch.setenv("PSEUDONYM_KEY", "0123456789abcdef0123")
    get_settings.cache_clear()
    try:
        assert train([*argv, "--resume", "auto"])
    finally:
        get_settings.cache_clear()


def test_a_checkpoint_that_knew_its_carve_by_file_names_resumes(tmp_path, trainer_argv):
    """Checkpoints before 6 December 2026 recorded the digest of the carved files' names."""
    argv = trainer_argv("--checkpoint-dir", str(tmp_path / "ck"))
    run_id = train([*argv, "--max-epochs-this-session", "1"])
    uri = argv[argv.index("--tracking-uri") + 1]
    listed = Path(MlflowClient(uri).download_artifacts(run_id, "splits/val_files.txt"))
    names = "\n".join(sorted(listed.read_text().splitlines()))
    _written_with(tmp_path / "ck", hashlib.sha256(names.encode()).hexdigest())
    assert train([*argv, "--resume", "auto"])


@pytest.mark.parametrize("experiment", ["..", ".", ""])
def test_an_experiment_named_with_dots_only_stays_inside_the_checkpoint_dir(
    monkeypatch, tmp_path, experiment
):
    """MLflow takes an experiment named ``..``: its folder must not be the one above."""
    from common import get_settings
    from trainer import checkpoint

    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    get_settings.cache_clear()
    try:
        folder = checkpoint.default_dir(experiment).resolve()
    finally:
        get_settings.cache_clear()
    assert folder.parent == (tmp_path / "checkpoints").resolve()
