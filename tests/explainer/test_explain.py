"""The core: request checks, the sample, and a whole explanation logged into a real MLflow run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, NotFound, ServiceUnavailable
from explainer import MAX_N_SAMPLES, METHODS, check_request, explain_run
from explainer.explain import prepare_inputs, run_job, select_samples
from runs import contract
from tests.leftovers import ended_pid, left_by


@pytest.fixture(scope="module")
def explained(trained_run) -> dict:
    """The result of explaining 4 images of the trained run with every method."""
    return explain_run(trained_run.run_id, trained_run.tracking_uri, n_samples=4, seed=1)


def _artifact_files(client: MlflowClient, run_id: str, path: str) -> set[str]:
    files = set()
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            files |= _artifact_files(client, run_id, info.path)
        else:
            files.add(info.path)
    return files


@pytest.mark.parametrize("n", [0, MAX_N_SAMPLES + 1])
def test_n_samples_out_of_range_is_rejected_with_the_range(n):
    with pytest.raises(InvalidInput, match=f"between 1 and {MAX_N_SAMPLES}"):
        check_request(n, None)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_cannot_take_is_rejected_with_the_range(seed):
    with pytest.raises(InvalidInput, match=f"seed must be between 0 and {2**31 - 1}, got {seed}"):
        check_request(4, None, seed)


def test_unknown_method_is_rejected_with_the_known_ones():
    with pytest.raises(InvalidInput, match=r"'lime'.*shap, integrated_gradients, gradcam"):
        check_request(4, ["gradcam", "lime"])


def test_methods_default_to_all_in_canonical_order():
    assert check_request(4, None) == list(METHODS)
    assert check_request(4, ["gradcam", "shap"]) == ["shap", "gradcam"]


def test_sample_is_half_the_most_confidently_wrong_then_seeded_random():
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    probs = np.tile([[0.9, 0.1]], (10, 1))  # predicts 0 everywhere: every 1 is wrong
    probs[3] = [0.99, 0.01]  # the most confident mistake
    probs[5] = [0.6, 0.4]  # the least confident mistake
    chosen = select_samples(probs, labels, 4, seed=0)
    assert list(chosen[:2]) == [3, 2]  # wrong ones by confidence, ties in index order
    assert len(set(chosen)) == 4
    assert np.array_equal(chosen, select_samples(probs, labels, 4, seed=0))
    assert sorted(select_samples(probs, labels, 50, seed=0)) == list(range(10))


def test_mistakes_of_a_threshold_rank_by_the_probability_of_the_decided_class():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3]])
    decided = np.array([1, 1, 0, 1])  # a low threshold for class 1: only image 2 is a 0
    assert list(select_samples(probs, labels, 4, seed=0, predicted=decided)[:2]) == [2, 1]


def test_explain_run_logs_every_file_the_index_describes(trained_run, explained, tmp_path):
    client = MlflowClient(trained_run.tracking_uri)
    folder = explained["artifact_path"]
    logged = _artifact_files(client, trained_run.run_id, folder)
    path = client.download_artifacts(trained_run.run_id, f"{folder}/index.json", tmp_path)
    index = json.loads(Path(path).read_text())
    assert {f"{folder}/{name}" for name in index["files"]} == logged
    assert all(index["files"].values())
    assert index["settings"]["n_samples"] == 4
    assert index["settings"]["methods"] == list(METHODS)
    assert index["sample_index"] == explained["sample_index"]
    assert len(index["sample_labels"]) == 4


def test_explain_run_logs_deletion_metrics_and_the_tag(trained_run, explained):
    run = MlflowClient(trained_run.tracking_uri).get_run(trained_run.run_id)
    for method in METHODS:
        assert run.data.metrics[f"explain_deletion_auc_{method}"] == pytest.approx(
            explained["deletion"][method]["auc"]
        )
    assert run.data.tags["pipeline.explained"] == "true"


def test_raw_values_have_the_input_shape(trained_run, explained, tmp_path):
    client = MlflowClient(trained_run.tracking_uri)
    folder = explained["artifact_path"]
    path = client.download_artifacts(trained_run.run_id, f"{folder}/shap.npz", tmp_path)
    with np.load(path) as npz:
        assert npz["values"].shape == (4, 3, 32, 32)
        assert list(npz["sample_index"]) == explained["sample_index"]


def test_unknown_run_is_not_found(trained_run):
    with pytest.raises(NotFound, match="does not exist"):
        explain_run("0" * 32, trained_run.tracking_uri, n_samples=1)


def test_run_without_model_is_rejected_at_submission(trained_run, bare_run):
    with pytest.raises(InvalidInput, match="no logged model"):
        prepare_inputs(bare_run, trained_run.tracking_uri)


def test_missing_data_set_is_rejected_with_a_hint(trained_run, tmp_path):
    with pytest.raises(InvalidInput, match="--data-dir"):
        explain_run(
            trained_run.run_id, trained_run.tracking_uri, n_samples=1, data_dir=tmp_path / "gone"
        )


def test_unreachable_mlflow_is_unavailable(unreachable_uri):
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        explain_run("0" * 32, unreachable_uri, n_samples=1)


def test_a_new_explanation_is_current_and_holds_only_its_own_files(trained_run, explained):
    uri = trained_run.tracking_uri
    second = explain_run(trained_run.run_id, uri, n_samples=1, methods=["gradcam"], seed=2)
    client = MlflowClient(uri)
    current = contract.explanation_dir(client.get_run(trained_run.run_id).data.tags)
    assert current == second["artifact_path"] != explained["artifact_path"]
    logged = _artifact_files(client, trained_run.run_id, current)
    assert logged == {f"{current}/{name}" for name in second["files"]}
    assert f"{current}/shap.npz" not in logged


def test_gradcam_of_the_trained_run_peaks_inside_lesion_boxes(trained_run, tmp_path):
    """The trainer's model on the demo data: peaks inside ``lesions.json`` boxes beat chance."""
    uri = trained_run.tracking_uri
    folder = explain_run(trained_run.run_id, uri, n_samples=24, methods=["gradcam"], seed=4)[
        "artifact_path"
    ]
    client = MlflowClient(uri)
    index = json.loads(
        Path(
            client.download_artifacts(trained_run.run_id, f"{folder}/index.json", tmp_path)
        ).read_text()
    )
    npz = client.download_artifacts(trained_run.run_id, f"{folder}/gradcam.npz", tmp_path)
    boxes = json.loads((trained_run.data_dir / "lesions.json").read_text())
    with np.load(npz) as data:
        maps = data["values"][:, 0]
    hits, areas = [], []
    for cam, name in zip(maps, index["sample_files"], strict=True):
        x0, y0, x1, y1 = boxes[name]
        y, x = np.unravel_index(cam.argmax(), cam.shape)
        hits.append(x0 <= x < x1 and y0 <= y < y1)
        areas.append((x1 - x0) * (y1 - y0) / cam.size)
    print(f"Grad-CAM peak in lesion box: {np.mean(hits):.2f} (chance {np.mean(areas):.2f})")
    assert np.mean(hits) > np.mean(areas)


def test_a_small_sample_leaves_room_for_every_class_before_mistakes():
    labels = np.repeat([0, 1, 2], 10)
    probs = np.tile([[0.1, 0.8, 0.1]], (30, 1))  # predicts 1 everywhere: 20 mistakes
    chosen = select_samples(probs, labels, 4, seed=0)  # the dashboard audit's n = 4
    assert set(labels[chosen]) == {0, 1, 2}  # one of each class (the 0 and the 2 are mistakes)
    assert sum(labels[chosen] != 1) == 3


def test_the_rest_of_the_sample_covers_every_class():
    labels = np.repeat([0, 1, 2], 10)  # sorted by class, as test folders are
    probs = np.eye(3)[labels] * 0.8 + 0.1  # every prediction right: no wrong ones to take
    chosen = select_samples(probs, labels, 6, seed=0)
    assert sorted(np.bincount(labels[chosen], minlength=3)) == [2, 2, 2]


@pytest.fixture(scope="module")
def threshold_run(mlflow_server, demo_data, tmp_path_factory) -> str:
    """A two-class run (melanoma, nevus) whose threshold decides every image as nevus while its
    model finds melanoma the more probable class for every image: argmax and decision disagree
    on each."""
    import mlflow
    import torch

    from dataloader import load_dataset
    from runs import Preprocessing, build_model, log_classifier

    data = tmp_path_factory.mktemp("two-classes") / "data"
    for split in ("train", "test"):
        for name in ("melanoma", "nevus"):
            shutil.copytree(demo_data / split / name, data / split / name)
    ds = load_dataset(data, image_size=32, channels=3)
    torch.manual_seed(0)
    model = build_model("smallcnn", 3, 2, ds.stats["mean"], ds.stats["std"]).eval()
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([20.0, -20.0]))  # melanoma by far the more probable
    point = {"positive_class": "nevus", "positive_index": 1, "target_sensitivity": 1.0,
             "threshold": 0.0, "chosen_on": "validation", "n_val": 10,
             "val_sensitivity": 1.0, "val_specificity": 0.0}  # fmt: skip
    preprocessing = {"image_size": [32, 32], "channels": 3, "class_names": ds.class_names,
                     "mean": ds.stats["mean"], "std": ds.stats["std"]}  # fmt: skip
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("explain-threshold")
    with mlflow.start_run() as run:
        mlflow.log_params({"model": "smallcnn", "data_dir": str(data), "image_size": 32,
                           "channels": 3, "class_names": json.dumps(ds.class_names)})  # fmt: skip
        mlflow.log_dict(preprocessing, contract.PREPROCESSING_JSON)
        mlflow.log_dict(point, contract.OPERATING_POINT_JSON)
        log_classifier(model, Preprocessing.model_validate(preprocessing), "model", point)
        mlflow.set_tag(contract.STAGE_TAG, "trained")
    return run.info.run_id


def test_a_threshold_run_is_explained_for_the_class_its_threshold_decides(
    threshold_run, mlflow_server, tmp_path
):
    result = explain_run(threshold_run, mlflow_server, n_samples=4, methods=["shap", "gradcam"])
    client = MlflowClient(mlflow_server)
    folder = client.download_artifacts(threshold_run, result["artifact_path"], str(tmp_path))
    index = json.loads((Path(folder) / contract.INDEX_JSON).read_text())
    assert index["settings"]["explained_class"] == "decided by the threshold"
    assert index["operating_point"]["positive_class"] == "nevus"
    assert {s["predicted_label"] for s in index["samples"]} == {"nevus"}
    assert all(s["misclassified"] == (s["true_label"] != "nevus") for s in index["samples"])
    # Said on every panel: nevus decided at a probability the argmax would call melanoma.
    assert all(s["decided"].startswith("decided: nevus (P(nevus) 0.00 ≥ threshold 0)")
               for s in index["samples"])  # fmt: skip
    for method in ("shap", "gradcam"):
        assert set(np.load(Path(folder) / f"{method}.npz")["target"].tolist()) == {1}
    embedding = json.loads((Path(folder) / contract.EMBEDDING_JSON).read_text())
    assert {p["predicted_label"] for p in embedding["points"]} == {"nevus"}


# Last: it publishes explanations of the shared run, which the tests above read as current.
@pytest.mark.parametrize("own", [True, False])
def test_an_explanation_says_whether_it_used_the_runs_own_data(trained_run, tmp_path, own):
    folder = trained_run.data_dir  # named as a job names it: resolved, never None
    if not own:
        folder = tmp_path / "copy"
        shutil.copytree(trained_run.data_dir, folder)
    done = explain_run(trained_run.run_id, trained_run.tracking_uri, n_samples=1,
                       methods=["gradcam"], data_dir=str(folder))  # fmt: skip
    client = MlflowClient(trained_run.tracking_uri)
    path = client.download_artifacts(
        trained_run.run_id, f"{done['artifact_path']}/index.json", tmp_path / "got"
    )
    assert json.loads(Path(path).read_text())["data"]["own_data"] is own


def test_the_runs_own_folder_whose_test_split_changed_is_not_its_own_data(trained_run, tmp_path):
    client = MlflowClient(trained_run.tracking_uri)
    recorded = client.get_run(trained_run.run_id).data.tags[contract.TEST_DATA_TAG]
    client.set_tag(trained_run.run_id, contract.TEST_DATA_TAG, "0" * 64)  # as if trained on other
    try:
        done = explain_run(trained_run.run_id, trained_run.tracking_uri, n_samples=1,
                           methods=["gradcam"])  # fmt: skip
    finally:
        client.set_tag(trained_run.run_id, contract.TEST_DATA_TAG, recorded)
    path = client.download_artifacts(
        trained_run.run_id, f"{done['artifact_path']}/index.json", tmp_path
    )
    data = json.loads(Path(path).read_text())["data"]
    assert data["own_data"] is False
    assert "changed since the run was trained (hash 000000000000 then" in data["data_changed"]


def test_a_job_retried_after_it_published_answers_with_the_published_result(trained_run):
    """The service died between publishing and recording the job: the requeued try (a new
    ``tries``) must not publish the same explanation a second time."""
    uri, run_id = trained_run.tracking_uri, trained_run.run_id
    inputs = {"n_samples": 1, "methods": ["gradcam"], "seed": 3, "data_dir": None}
    job = {"job_id": "5f0c0ffee5f0c0ffee5f0c10", "run_id": run_id, "tries": 1, "inputs": inputs}
    first = run_job(job, tracking_uri=uri, data_root=trained_run.data_dir)
    client = MlflowClient(uri)
    history = client.get_metric_history(run_id, "explain_deletion_auc_gradcam")
    again = run_job({**job, "tries": 2}, tracking_uri=uri, data_root=trained_run.data_dir)
    assert again == json.loads(json.dumps(first))
    assert contract.explanation_dir(client.get_run(run_id).data.tags) == first["artifact_path"]
    assert client.get_metric_history(run_id, "explain_deletion_auc_gradcam") == history
    folders = {a.path for a in client.list_artifacts(run_id, contract.EXPLANATIONS_DIR)}
    assert f"{contract.EXPLANATIONS_DIR}/{job['job_id']}-2" not in folders


def test_an_explanation_removes_the_folders_killed_explanations_left_not_live_ones(
    trained_run, tmp_path, monkeypatch
):
    """They hold panels of test images: patient data outside the stores."""
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = left_by(tmp_path, "explain-", ended_pid())
    live = left_by(tmp_path, "explain-", os.getpid())
    explain_run(trained_run.run_id, trained_run.tracking_uri, n_samples=1, methods=["gradcam"])
    assert not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
