"""``--ensemble K``: K members trained alike from their own seeds, logged as one model."""

import mlflow
import pytest
import torch

from runs import Ensemble, load_model
from trainer import train

pytestmark = pytest.mark.slow


def _checkpoint(folder) -> dict:
    return torch.load(folder / "last.pt", weights_only=False)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_logs_one_model_that_averages_every_members_best_epoch(
    trainer_argv, tmp_path, mlflow_server
):
    run_id = train(trainer_argv("--ensemble", "3", "--epochs", "1"))
    model = load_model(run_id, mlflow_server)
    state = _checkpoint(tmp_path / "checkpoints")
    bests = [*state["members_done"], state["best"]]
    assert isinstance(model, Ensemble) and len(model.members) == 3
    for member, best in zip(model.members, bests, strict=True):
        assert _same(member.state_dict(), best["state"])
    assert not _same(model.members[0].state_dict(), model.members[1].state_dict())


def test_records_each_member_and_the_ensembles_validation_figures(trainer_argv, mlflow_server):
    run_id = train(trainer_argv("--ensemble", "2", "--epochs", "2"))
    run = mlflow.MlflowClient(mlflow_server).get_run(run_id)
    assert run.data.params["ensemble"] == "2"
    metrics = run.data.metrics
    member2 = {k for k in metrics if k.startswith("member2_")}
    assert member2 == {"member2_train_loss", "member2_val_loss", "member2_val_auc"}
    history = mlflow.MlflowClient(mlflow_server).get_metric_history(run_id, "member2_val_loss")
    assert [m.step for m in history] == [1, 2]
    summary = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/ensemble.json")
    assert [m["seed"] for m in summary["members"]] == [0, 1]
    assert summary["members"][0]["best_epoch"] == metrics["best_epoch"]
    assert summary["ensemble"]["val_auc"] == pytest.approx(metrics["best_val_auc"])


def test_first_member_is_the_one_model_run_of_the_same_seed(trainer_argv, tmp_path):
    train(trainer_argv("--checkpoint-dir", str(tmp_path / "one"), "--epochs", "1"))
    train(trainer_argv("--checkpoint-dir", str(tmp_path / "two"), "--ensemble", "2", "--epochs",
                       "1"))  # fmt: skip
    one, two = _checkpoint(tmp_path / "one"), _checkpoint(tmp_path / "two")
    assert _same(two["members_done"][0]["state"], one["best"]["state"])


def test_members_of_different_seeds_never_coincide(trainer_argv, tmp_path):
    """Seed s trains members s·K … s·K+K-1, so seed 1's first member is not seed 0's second."""
    states = []
    for seed in ("0", "1"):
        folder = tmp_path / seed
        argv = trainer_argv("--checkpoint-dir", str(folder), "--ensemble", "2", "--epochs", "1")
        train([*argv, "--seed", seed])
        state = _checkpoint(folder)
        states.append([state["members_done"][0]["state"], state["best"]["state"]])
    assert not _same(states[1][0], states[0][1])


@pytest.mark.parametrize("cut", [2, 3])
def test_interrupted_ensemble_resumes_to_the_uninterrupted_result(
    cut, tmp_path, trainer_argv, mlflow_server
):
    """Cut between the members (2) and inside the second (3); a cut inside the first is the
    one-model case of ``test_checkpoint``."""
    argv = trainer_argv("--ensemble", "2", "--epochs", "2")
    straight = train([*argv, "--checkpoint-dir", str(tmp_path / "straight")])
    resumed_dir = str(tmp_path / "resumed")
    first = train([*argv, "--checkpoint-dir", resumed_dir, "--max-epochs-this-session", str(cut)])
    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_run(first).info.status == "KILLED"
    assert train([*argv, "--checkpoint-dir", resumed_dir, "--resume", "auto"]) == first
    assert client.get_run(first).info.status == "FINISHED"
    for key in ("val_auc", "member2_val_auc", "member2_train_loss", "best_val_auc"):
        a = [(m.step, m.value) for m in client.get_metric_history(straight, key)]
        assert a == [(m.step, m.value) for m in client.get_metric_history(first, key)], key
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "resumed")
    assert _same(a["members_done"][0]["state"], b["members_done"][0]["state"])
    assert _same(a["best"]["state"], b["best"]["state"])
