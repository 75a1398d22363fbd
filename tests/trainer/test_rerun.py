"""``--from-run``: training again with a run's recorded settings, and the verdict on its weights
(``trainer.rerun``), against the test MLflow server."""

import mlflow
import pytest
from mlflow import MlflowClient

from common import InvalidInput, NotFound
from runs import DIGEST_KEY
from tests.trainer.conftest import grey_folder
from trainer import train
from trainer.rerun import RERUN_OF_TAG, RERUN_RESULT_TAG, SAME

pytestmark = pytest.mark.slow


def _rerun(mlflow_server, tmp_path, run_id, *extra: str) -> str:
    """A rerun of ``run_id`` with nothing but where to find it, and its checkpoint folder."""
    return train(["--from-run", run_id, "--tracking-uri", mlflow_server, "--checkpoint-dir",
                  str(tmp_path / "rerun-checkpoints"), "--no-progress", *extra])  # fmt: skip


def test_a_rerun_reproduces_the_weights_and_says_so(trainer_argv, mlflow_server, tmp_path, capsys):
    # two classes of non-square images: the positive class, threshold and input size come back
    data = grey_folder(tmp_path / "grey", (40, 30))
    original = train(trainer_argv("--seed", "3", "--lr", "0.01", data=data))
    rerun = _rerun(mlflow_server, tmp_path, original)
    client = MlflowClient(mlflow_server)
    new, old = client.get_run(rerun), client.get_run(original)
    assert new.data.params[DIGEST_KEY] == old.data.params[DIGEST_KEY]
    assert new.data.tags[RERUN_OF_TAG] == original
    assert new.data.tags[RERUN_RESULT_TAG] == SAME
    assert new.info.experiment_id == old.info.experiment_id
    assert new.info.run_name == f"rerun of {old.info.run_name}"
    assert f"rerun of run {original}: {SAME}" in capsys.readouterr().err


def test_the_recorded_cpu_threads_are_used_again(trainer_argv, mlflow_server, tmp_path):
    # the suite's processes default to one thread (OMP_NUM_THREADS=1): the run's 2 must win
    original = train(trainer_argv("--threads", "2"))
    rerun = _rerun(mlflow_server, tmp_path, original)
    params = MlflowClient(mlflow_server).get_run(rerun).data.params
    assert params["torch_threads"] == "2"


def test_an_option_given_wins_and_the_verdict_names_the_difference(
    trainer_argv, mlflow_server, tmp_path, capsys
):
    original = train(trainer_argv())
    capsys.readouterr()
    rerun = _rerun(mlflow_server, tmp_path, original, "--seed", "5")
    err = capsys.readouterr().err
    assert f"this command changes --seed 5 (run {original}: 0)" in err
    result = MlflowClient(mlflow_server).get_run(rerun).data.tags[RERUN_RESULT_TAG]
    assert result.startswith(f"other weights than run {original}'s")
    assert "seed: 5 (was 0)" in result
    assert "epochs" not in result  # the run's 2 epochs, not the default 80


def test_other_data_is_warned_at_the_start_and_named_in_the_verdict(
    trainer_argv, mlflow_server, tmp_path, capsys
):
    original = train(trainer_argv(data=grey_folder(tmp_path / "one", (32, 32))))
    other = tmp_path / "two"
    grey_folder(other, (32, 32))
    (other / "train" / "a" / "0.png").unlink()
    capsys.readouterr()
    rerun = _rerun(mlflow_server, tmp_path, original, "--data-dir", str(other))
    err = capsys.readouterr().err
    assert "the data differs from that run's (dataset_hash)" in err
    assert "trained by a release before 2026-12-05, its dataset_hash" in err  # an older hash
    result = MlflowClient(mlflow_server).get_run(rerun).data.tags[RERUN_RESULT_TAG]
    assert "dataset_hash: " in result


def test_an_unknown_run_is_refused_naming_it(mlflow_server, tmp_path):
    with pytest.raises(NotFound, match="run 'f00' does not exist"):
        _rerun(mlflow_server, tmp_path, "f00")


def test_a_run_the_trainer_did_not_make_is_refused(mlflow_server, tmp_path):
    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
    with pytest.raises(InvalidInput, match="was not trained by this trainer"):
        _rerun(mlflow_server, tmp_path, run.info.run_id)


def test_a_recorded_setting_this_trainer_refuses_is_named(mlflow_server, tmp_path):
    mlflow.set_tracking_uri(mlflow_server)
    with mlflow.start_run() as run:
        mlflow.log_params({"model": "vgg99", "data_dir": str(tmp_path)})
    with pytest.raises(InvalidInput, match=r"records model 'vgg99'.*give --model yourself"):
        _rerun(mlflow_server, tmp_path, run.info.run_id)
