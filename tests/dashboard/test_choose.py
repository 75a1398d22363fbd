"""Choosing a run: a registered version, the alias, run_id.txt and the record agree."""

import json
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput, Settings
from dashboard.choose import choose_run
from mlpipeline_model import DECODING_VERSION
from runs import DIGEST_KEY, contract
from tests.conftest import log_untrained_run
from tests.dashboard.conftest import leak, old_evaluation


def test_choice_registers_a_version_moves_the_alias_writes_run_id_and_records_it(
    dashboard_runs, settings, store
):
    run_id = dashboard_runs["pipeline"]
    choice = choose_run(run_id, "best AUC on the test set", settings, store, selected_by="ana")
    client = MlflowClient(settings.mlflow_tracking_uri)
    version = client.get_model_version_by_alias(settings.model_name, "champion")
    assert (version.version, version.run_id) == ("1", run_id) and choice.version == "1"
    assert version.tags["reason"] == "best AUC on the test set"
    assert version.tags["evaluation"].startswith("accuracy ")
    assert version.tags["evaluated"] == "true" and "eval_accuracy" in version.tags
    assert settings.run_id_file.read_text() == run_id + "\n"
    [record] = store.recent()
    assert record["action"] == "choose" and record["run_id"] == run_id
    assert (record["registered_model"], record["version"], record["alias"]) == (
        settings.model_name,
        "1",
        "champion",
    )
    assert record["reason"] == "best AUC on the test set" and record["selected_by"] == "ana"
    assert record["model_uri"] == f"models:/{settings.model_name}/1"


def test_choosing_another_run_adds_a_version_and_moves_the_alias(dashboard_runs, settings):
    choose_run(dashboard_runs["pipeline"], "first", settings)
    second = choose_run(dashboard_runs["bare"], "second", settings, allow_unevaluated=True)
    alias = MlflowClient(settings.mlflow_tracking_uri).get_model_version_by_alias(
        settings.model_name, "champion"
    )
    assert second.version == alias.version == "2"
    assert settings.run_id_file.read_text().strip() == dashboard_runs["bare"]


def test_the_record_identifies_the_model_its_data_and_code_without_the_run(
    dashboard_runs, settings, store
):
    run_id = dashboard_runs["pipeline"]
    choose_run(run_id, "first", settings, store)
    client = MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(run_id)
    version = client.get_model_version_by_alias(settings.model_name, "champion")
    [record] = store.recent()
    assert record["lineage"]["weights_digest"] == version.tags[DIGEST_KEY]
    assert record["lineage"]["dataset_hash"] == run.data.params["dataset_hash"]
    assert record["lineage"]["test_data_hash"] == run.data.tags[contract.TEST_DATA_TAG]
    assert record["replaced"] is None  # the alias named no version before


def test_the_record_names_the_version_the_choice_replaced(dashboard_runs, settings, store):
    choose_run(dashboard_runs["pipeline"], "first", settings, store)
    choose_run(dashboard_runs["bare"], "second", settings, store, allow_unevaluated=True)
    assert [r["replaced"] for r in store.recent()] == ["1", None]


def test_unevaluated_run_needs_an_explicit_confirmation(dashboard_runs, settings, store):
    with pytest.raises(InvalidInput, match=r"has not been evaluated.*--yes-unevaluated"):
        choose_run(dashboard_runs["bare"], "looks fine", settings, store)
    assert not settings.run_id_file.exists() and store.recent() == []
    choice = choose_run(dashboard_runs["bare"], "looks fine", settings, store, True)
    version = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        settings.model_name, choice.version
    )
    assert version.tags["evaluated"] == "false"
    assert version.tags["evaluation"] == "not evaluated"
    assert store.recent()[0]["evaluated"] is False


def test_foreign_sklearn_run_cannot_be_chosen_and_changes_nothing(dashboard_runs, settings, store):
    settings.run_id_file.parent.mkdir(parents=True)
    settings.run_id_file.write_text("before\n")
    with pytest.raises(InvalidInput, match="not an image classifier of this pipeline"):
        choose_run(dashboard_runs["sklearn"], "try", settings, store, True)
    assert settings.run_id_file.read_text() == "before\n" and store.recent() == []
    assert not MlflowClient(settings.mlflow_tracking_uri).search_registered_models(
        f"name = '{settings.model_name}'"
    )


def test_a_trainer_run_stopped_before_its_model_says_to_resume_it(mlflow_server, settings):
    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment(f"stopped-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment_id, tags={"pipeline.stage": "training"}).info.run_id
    client.set_terminated(run_id, status="KILLED")  # as the trainer's stop before its model
    with pytest.raises(InvalidInput, match=r"stopped \(KILLED\) before its model") as err:
        choose_run(run_id, "try", settings)
    assert "--resume auto" in str(err.value) and "only runs of" not in str(err.value)


def test_failed_run_without_model_cannot_be_chosen(dashboard_runs, settings):
    with pytest.raises(InvalidInput, match="no model logged as 'model'"):
        choose_run(dashboard_runs["failed"], "try", settings, None, True)


def test_a_reason_is_required(dashboard_runs, settings):
    with pytest.raises(InvalidInput, match="give a reason"):
        choose_run(dashboard_runs["pipeline"], "  ", settings)


def test_a_reason_longer_than_a_choice_keeps_is_refused_not_cut(dashboard_runs, settings):
    with pytest.raises(InvalidInput, match=r"2001 characters, more than the 2000"):
        choose_run(dashboard_runs["pipeline"], "x" * 2001, settings, None, True)
    with pytest.raises(InvalidInput, match=r"who chooses .* at most 300 characters"):
        choose_run(dashboard_runs["pipeline"], "why", settings, None, True, "n" * 301)


def test_a_threshold_runs_version_carries_the_figures_of_its_decision(threshold_run, settings):
    choice = choose_run(threshold_run["run_id"], "decides by threshold", settings)
    tags = (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version(settings.model_name, choice.version)
        .tags
    )
    metrics = MlflowClient(settings.mlflow_tracking_uri).get_run(threshold_run["run_id"]).data
    for key in ("eval_threshold", "eval_thr_sensitivity_melanoma",
                "eval_thr_specificity_melanoma_ci_low"):  # fmt: skip
        assert float(tags[key]) == pytest.approx(metrics.metrics[key], rel=1e-5)
    assert "eval_accuracy" in tags  # and the argmax figures beside them


def test_a_threshold_runs_summary_names_the_served_decision(threshold_run, settings):
    choice = choose_run(threshold_run["run_id"], "decides by threshold", settings)
    summary = (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version(settings.model_name, choice.version)
        .tags["evaluation"]
    )
    metrics = MlflowClient(settings.mlflow_tracking_uri).get_run(threshold_run["run_id"]).data
    threshold = metrics.metrics["eval_threshold"]
    sensitivity = metrics.metrics["eval_thr_sensitivity_melanoma"]
    assert " (argmax); the served decision (threshold " in summary
    assert f"(threshold {threshold:.4g}): sensitivity melanoma {sensitivity:.3f} [" in summary


def test_a_choice_changing_the_served_classes_needs_a_confirmation(
    dashboard_runs, threshold_run, settings, store
):
    choose_run(dashboard_runs["pipeline"], "three classes", settings, store)
    with pytest.raises(InvalidInput) as refused:
        choose_run(threshold_run["run_id"], "two classes", settings, store)
    message = str(refused.value)
    assert "classes keratosis, melanoma, nevus → melanoma, nevus" in message
    assert "no threshold (no `decision`) → threshold for 'melanoma'" in message
    assert "--yes-interface-change" in message
    assert settings.run_id_file.read_text().strip() == dashboard_runs["pipeline"]
    assert len(store.recent()) == 1
    choice = choose_run(
        threshold_run["run_id"], "two classes", settings, store, allow_interface_change=True
    )
    version = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        settings.model_name, choice.version
    )
    assert "melanoma, nevus" in version.tags["interface_change"]
    assert "melanoma, nevus" in store.recent()[0]["interface_change"]


def test_a_choice_keeping_the_served_interface_asks_nothing(dashboard_runs, settings):
    choose_run(dashboard_runs["pipeline"], "first", settings)
    choice = choose_run(dashboard_runs["bare"], "same classes", settings, allow_unevaluated=True)
    version = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        settings.model_name, choice.version
    )
    assert "interface_change" not in version.tags


def test_figures_of_a_tta_evaluation_are_marked_on_the_version(fresh_run, settings, store):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, settings.mlflow_tracking_uri, batch_size=32, tta="both")
    choice = choose_run(fresh_run, "flipped figures", settings, store)
    assert any("tta 'both'" in c for c in choice.caveats)
    tags = (
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version(settings.model_name, choice.version)
        .tags
    )
    assert tags["evaluation_tta"] == "both" and "tta 'both'" in tags["evaluation"]
    assert tags["evaluation_path"].startswith("evaluation")
    record = store.recent()[0]
    assert "which the served model does not do" in record["evaluation_caveats"][0]
    # which test images the figures are of, on the version and in the audit record alike
    report = json.loads(
        Path(
            MlflowClient(settings.mlflow_tracking_uri).download_artifacts(
                fresh_run, f"{tags['evaluation_path']}/metrics.json"
            )
        ).read_text()
    )
    assert tags["evaluation_dataset_hash"] == report["dataset_hash"] is not None
    assert tags["evaluation_n_samples"] == str(report["n_samples"])
    assert record["evaluation"]["evaluation_dataset_hash"] == report["dataset_hash"]
    assert record["evaluation"]["evaluation_path"] == tags["evaluation_path"]


def test_figures_of_the_runs_own_data_have_no_caveat(fresh_run, settings, tiny_demo_data):
    from evaluator import evaluate_run

    # Named explicitly, the run's own folder is still its own data.
    evaluate_run(fresh_run, settings.mlflow_tracking_uri, data_dir=tiny_demo_data, batch_size=32)
    choice = choose_run(fresh_run, "own data", settings)
    # (the tiny model may name one class for every image: a caveat of its figures, not its data)
    assert [c for c in choice.caveats if "argmax (`predicted_class`)" not in c] == []


def test_an_old_evaluation_of_another_folder_is_a_caveat_of_the_choice(
    fresh_run, settings, tiny_demo_data
):
    # written before metrics.json said own_data: its data_dir is not the run's
    old_evaluation(settings.mlflow_tracking_uri, fresh_run, f"{tiny_demo_data}-other")
    choice = choose_run(fresh_run, "old evaluation", settings)
    caveat = (
        f"the evaluation used the test split of {tiny_demo_data}-other, not the run's own data "
        "(nothing checked its images against the run's training data)"
    )
    assert caveat in choice.caveats
    version = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        settings.model_name, choice.version
    )
    assert caveat in version.tags["evaluation"] and caveat in version.tags["evaluation_caveat"]


def test_an_old_evaluation_of_the_runs_own_folder_has_no_caveat(
    fresh_run, settings, tiny_demo_data
):
    old_evaluation(settings.mlflow_tracking_uri, fresh_run, str(tiny_demo_data))
    choice = choose_run(fresh_run, "old evaluation", settings)
    assert not [c for c in choice.caveats if "not the run's own data" in c]


def test_an_outage_reading_the_served_run_is_not_taken_for_no_change(
    dashboard_runs, threshold_run, settings, monkeypatch
):
    from common import ServiceUnavailable

    choose_run(dashboard_runs["pipeline"], "three classes", settings)

    def down(*args):
        raise ServiceUnavailable("MLflow at test did not answer")

    monkeypatch.setattr("dashboard.handoff.model_info", down)
    with pytest.raises(ServiceUnavailable, match="did not answer"):
        choose_run(threshold_run["run_id"], "two classes", settings)
    assert settings.run_id_file.read_text().strip() == dashboard_runs["pipeline"]


def test_who_chooses_is_one_line(dashboard_runs, settings, store):
    with pytest.raises(InvalidInput, match="one line of printable text"):
        choose_run(dashboard_runs["pipeline"], "x", settings, store, selected_by="ana\nroot")
    assert store.recent() == []


def test_a_served_version_that_cannot_be_read_needs_the_confirmation(
    dashboard_runs, settings, monkeypatch
):
    import dashboard.handoff

    choose_run(dashboard_runs["pipeline"], "first", settings)
    real = dashboard.handoff.model_info

    def unreadable_versions(uri):
        if uri.startswith("models:/"):
            raise InvalidInput("its MLmodel is gone")
        return real(uri)

    monkeypatch.setattr(dashboard.handoff, "model_info", unreadable_versions)
    with pytest.raises(InvalidInput, match=r"cannot be read .*its MLmodel is gone.* is unknown"):
        choose_run(dashboard_runs["bare"], "second", settings, allow_unevaluated=True)
    choose_run(dashboard_runs["bare"], "second", settings, allow_unevaluated=True,
               allow_interface_change=True)  # fmt: skip


def test_a_larger_input_that_refuses_small_images_needs_the_confirmation(
    dashboard_runs, settings, tiny_demo_data
):
    from tests.dashboard.conftest import _pipeline_run

    choose_run(dashboard_runs["pipeline"], "32 px", settings)  # accepts 8 px and up
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    larger = _pipeline_run(settings.mlflow_tracking_uri, tiny_demo_data, "128px", size=128)
    with pytest.raises(InvalidInput, match=r"input 32×32 → 128×128 px: images under 32×32 px"):
        choose_run(larger, "128 px", settings, allow_unevaluated=True)


def test_choosing_the_chosen_run_again_registers_no_second_version(dashboard_runs, settings, store):
    first = choose_run(dashboard_runs["pipeline"], "first", settings, store)
    again = choose_run(dashboard_runs["pipeline"], "pressed twice", settings, store)
    assert (first.already, again.already) == (False, True)
    assert again.version == first.version == "1"
    versions = MlflowClient(settings.mlflow_tracking_uri).search_model_versions(
        f"name = '{settings.model_name}'"
    )
    assert len(versions) == 1
    assert [r["reason"] for r in store.recent()] == ["pressed twice", "first"]


def _version_tags(settings: Settings, choice) -> dict[str, str]:
    client = MlflowClient(settings.mlflow_tracking_uri)
    return client.get_model_version(settings.model_name, choice.version).tags


def test_choosing_the_chosen_run_again_gives_its_version_the_new_reason_who_and_when(
    dashboard_runs, settings, store
):
    choose_run(dashboard_runs["pipeline"], "first", settings, store, selected_by="ana")
    again = choose_run(dashboard_runs["pipeline"], "second look", settings, store, selected_by="bo")
    version = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        settings.model_name, again.version
    )
    assert (version.tags["reason"], version.description) == ("second look", "second look")
    assert version.tags["selected_by"] == "bo"
    assert version.tags["selected_at"] == store.recent()[0]["selected_at"].isoformat(
        timespec="milliseconds"
    )


def test_choosing_the_chosen_run_again_tags_its_version_with_the_new_evaluation(
    fresh_run, settings, store
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, settings.mlflow_tracking_uri, batch_size=32)
    choose_run(fresh_run, "audit 2-class", settings, store)
    flipped = evaluate_run(fresh_run, settings.mlflow_tracking_uri, batch_size=32, tta="horizontal")
    again = choose_run(fresh_run, "re-chosen after TTA eval", settings, store)
    tags = _version_tags(settings, again)
    assert again.already and tags["evaluation_path"] == flipped["artifact_path"]
    assert tags["evaluation_tta"] == "horizontal" and "tta 'horizontal'" in tags["evaluation"]


def test_choosing_the_chosen_run_again_drops_the_caveat_of_the_evaluation_replaced(
    fresh_run, settings
):
    from evaluator import evaluate_run

    evaluate_run(fresh_run, settings.mlflow_tracking_uri, batch_size=32, tta="horizontal")
    first = choose_run(fresh_run, "flipped figures", settings)
    assert "evaluation_caveat" in _version_tags(settings, first)
    evaluate_run(fresh_run, settings.mlflow_tracking_uri, batch_size=32)
    again = choose_run(fresh_run, "served figures", settings)
    # (the tiny model may name one class for every image: that caveat may stay, TTA's may not)
    assert not any("flipped copies" in caveat for caveat in again.caveats)
    assert "flipped copies" not in _version_tags(settings, again).get("evaluation_caveat", "")


def test_figures_decoded_otherwise_than_the_training_are_a_caveat(settings, tiny_demo_data):
    from evaluator import evaluate_run

    uri, older = settings.mlflow_tracking_uri, DECODING_VERSION - 1
    run_id = log_untrained_run(uri, tiny_demo_data, seed=5, decoding_version=older)
    report = evaluate_run(run_id, uri, data_dir=tiny_demo_data, batch_size=32)
    assert f"decoded by version {older} " in report["decoding_note"]
    assert f"were decoded by version {DECODING_VERSION}," in report["decoding_note"]
    choice = choose_run(run_id, "older code", settings)
    assert report["decoding_note"] in choice.caveats


def test_a_leaked_run_needs_an_explicit_confirmation(fresh_run, settings, store):
    leak(settings.mlflow_tracking_uri, fresh_run)
    with pytest.raises(InvalidInput, match=r"possible leakage: 2 images .*--yes-leakage"):
        choose_run(fresh_run, "looks fine", settings, store, allow_unevaluated=True)
    assert not settings.run_id_file.exists() and store.recent() == []


def test_the_leakage_of_a_run_chosen_anyway_is_kept_with_the_choice(fresh_run, settings, store):
    leak(settings.mlflow_tracking_uri, fresh_run)
    choice = choose_run(fresh_run, "no other model", settings, store, allow_unevaluated=True,
                        allow_leakage=True)  # fmt: skip
    [caveat] = store.recent()[0]["evaluation_caveats"]
    assert caveat.startswith("possible leakage: 2 images") and choice.caveats == [caveat]
    assert _version_tags(settings, choice)["evaluation_caveat"] == caveat
