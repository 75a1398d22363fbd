"""The Choose model tab: choose with a reason, guard rails, downloads that choose nothing."""

import json
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from common import Settings
from dashboard.markup import plain
from dashboard.predictor_lines import ready_line, switch_warning
from dashboard.selection import Download
from dashboard.tabs.deploy import unrecorded_move
from dashboard.tabs.downloads import top_k_rows
from jobs import SelectionStore, get_database
from runs.schemas import SelectionRecord
from tests.dashboard.conftest import open_page, page_text


@pytest.fixture
def model_name(page_env, monkeypatch) -> str:
    name = f"tab-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODEL_NAME", name)
    return name


def test_choose_button_registers_writes_run_id_and_lists_the_choice(
    page_env, model_name, dashboard_runs
):
    run_id = dashboard_runs["pipeline"]
    at = open_page(run_id, "Choose model", experiment_id=dashboard_runs["experiment"])
    assert f"`{model_name}@champion` names no version" in page_text(at)
    at.text_input(key="choose_by").input("Ana").run()
    at.text_area(key=f"choose_reason_{run_id}").input("best AUC").run()
    at.button(key="choose_model").click().run()
    assert not at.exception
    assert (page_env / "run_id.txt").read_text().strip() == run_id
    assert f"is {model_name} version 1 (alias champion)" in at.success[0].value
    trail = next(f.value for f in at.dataframe if "action" in f.value.columns)
    assert list(trail["action"]) == ["choose"] and list(trail["reason"]) == ["best AUC"]
    [record] = SelectionStore(get_database(Settings())).recent()
    assert record["version"] == "1"
    tags = MlflowClient().get_model_version(model_name, "1").tags
    assert "interface_change" not in tags  # nothing was shown, so nothing was confirmed
    # The page reran: its status line names the choice just made, and the run by its name too.
    name = MlflowClient().get_run(run_id).info.run_name
    assert f"`{model_name}@champion` is version **1**, run {plain(name)} `{run_id}` (this run)" in (
        page_text(at)
    )
    other = open_page(dashboard_runs["bare"], "Choose model",
                      experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert f"is version **1**, run {plain(name)} `{run_id}`." in page_text(other)


def test_a_run_changing_the_served_classes_is_chosen_only_once_confirmed(
    page_env, model_name, dashboard_runs, threshold_run
):
    from dashboard.choose import choose_run

    choose_run(dashboard_runs["pipeline"], "three classes", Settings())
    at = open_page(threshold_run["run_id"], "Choose model",
                   experiment_id=threshold_run["experiment"])  # fmt: skip
    assert "changes what its clients receive" in page_text(at)
    at.text_input(key="choose_by").input("Ana").run()
    at.text_area(key=f"choose_reason_{threshold_run['run_id']}").input("two classes now").run()
    at.button(key="choose_model").click().run()
    assert "Tick the confirmation to choose a run that changes" in at.warning[-1].value
    assert (page_env / "run_id.txt").read_text().strip() == dashboard_runs["pipeline"]
    at.checkbox(key=f"choose_interface_{threshold_run['run_id']}").check().run()
    at.button(key="choose_model").click().run()
    assert not at.exception
    assert (page_env / "run_id.txt").read_text().strip() == threshold_run["run_id"]
    trail = next(f.value for f in at.dataframe if "action" in f.value.columns)
    confirmed = trail["confirmed"].iloc[0]  # the audit trail says what the person confirmed
    # (the choice before it, made without a store here, is recorded beside it from its tags)
    assert confirmed.startswith("interface change: ") and "melanoma, nevus" in confirmed


def test_unevaluated_run_is_not_chosen_without_the_confirmation(
    page_env, model_name, dashboard_runs
):
    at = open_page(
        dashboard_runs["bare"], "Choose model", experiment_id=dashboard_runs["experiment"]
    )
    assert "This run has not been evaluated" in page_text(at)
    assert "**Not evaluated**" in page_text(at)  # the model card says so too
    at.text_input(key="choose_by").input("Ana").run()
    at.text_area(key=f"choose_reason_{dashboard_runs['bare']}").input("fast").run()
    at.button(key="choose_model").click().run()
    assert "Tick the confirmation" in at.warning[-1].value
    assert not (page_env / "run_id.txt").exists()


def test_failed_run_shows_why_and_offers_nothing_to_deploy(page_env, dashboard_runs):
    at = open_page(
        dashboard_runs["failed"], "Choose model", experiment_id=dashboard_runs["experiment"]
    )
    assert not at.exception
    keys = {b.key for b in at.button}
    assert "choose_model" not in keys and "download_model" not in keys
    assert "cannot be chosen for deployment: it has no model logged as 'model'" in page_text(at)
    assert not at.get("download_button")  # no model card
    assert "Dockerfile" not in page_text(at) and "/predict" not in page_text(at)


def test_foreign_sklearn_run_gets_no_image_serving_text(page_env, dashboard_runs):
    at = open_page(
        dashboard_runs["sklearn"], "Choose model", experiment_id=dashboard_runs["experiment"]
    )
    text = page_text(at)
    assert "not an image classifier of this pipeline" in text
    assert "choose_model" not in {b.key for b in at.button}
    assert "PNG, JPEG or DICOM" not in text and "×" not in text


def test_top_k_download_records_downloads_and_leaves_run_id_file_alone(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc", topk_k=2,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    assert "Among the runs trained on this run's classes" in page_text(at)
    at.button(key="download_topk").click().run()
    assert not at.exception
    assert "Downloaded 2 runs; nothing was chosen." in at.success[0].value
    assert len(list((page_env / "artifacts").iterdir())) == 2
    assert not (page_env / "run_id.txt").exists()
    actions = [r["action"] for r in SelectionStore(get_database(Settings())).recent()]
    assert actions == ["download", "download"]


def test_the_top_k_direction_follows_the_metric(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip

    def higher() -> bool:
        return next(t.value for t in at.toggle if t.label == "Higher is better")

    assert higher() is True
    at.selectbox(key="topk_metric").set_value("eval_ece").run()
    assert not at.exception
    assert higher() is False  # the best calibrated first, not the worst


def test_the_top_k_table_names_each_run_with_its_interval_and_caveat(tmp_path):
    metrics = {"eval_accuracy": 0.9, "eval_accuracy_ci_low": 0.8, "eval_accuracy_ci_high": 0.95}
    got = [Download("a" * 32, "runs:/a/model", tmp_path / "a", metrics)]
    tags = {"pipeline.evaluation.path": "evaluation/j-1", "pipeline.evaluation.tta": "both",
            "pipeline.evaluation.basis_of": "evaluation/j-1"}  # fmt: skip
    run = {"run_name": "smallcnn-tta", "tags": tags}
    rows = top_k_rows(got, [run], "eval_accuracy")
    assert rows[0]["run"] == "smallcnn-tta"
    assert rows[0]["eval_accuracy"] == "0.9 (0.8–0.95)"
    assert rows[0]["caveat"] == "† tta 'both'"


def test_the_top_k_table_marks_a_run_whose_test_split_shares_images(tmp_path, leakage_tags):
    """Runs of one data set with the same copies across splits (BreastMNIST) rank among
    themselves: each row of the download says its figures are optimistic."""
    got = [Download("a" * 32, "runs:/a/model", tmp_path / "a", {"eval_accuracy": 0.9})]
    tags = {**leakage_tags["test"], "pipeline.evaluation.path": "evaluation/j-1",
            "pipeline.evaluation.basis_of": "evaluation/j-1"}  # fmt: skip
    rows = top_k_rows(got, [{"run_name": "leaky", "tags": tags}], "eval_accuracy")
    assert rows[0]["caveat"] == "⚠ test split overlaps train/val: 3 exact duplicate images"
    assert (
        top_k_rows(got, [{"run_name": "leaky", "tags": tags}], "best_val_auc")[0]["caveat"] == ""
    )  # a validation figure is not flattered by test copies


def test_model_card_and_how_to_call_the_predictor(page_env, model_name, dashboard_runs):
    at = open_page(
        dashboard_runs["pipeline"], "Choose model", experiment_id=dashboard_runs["experiment"]
    )
    text = "\n".join(m.value for m in at.markdown)
    assert "#### Model card: smallcnn-evaluated" in text  # nested under the h3 "Model card"
    assert "##### Evaluation (test set, 95% confidence intervals)" in text
    assert f"mlflow models serve -m models:/{model_name}@champion" in text
    assert "curl -X POST http://127.0.0.1:5007/predict" in text
    assert "resized to 32×32, 3 channel(s)" in text
    assert at.get("download_button")


def test_model_card_on_the_page_holds_the_decision_rule(page_env, model_name, threshold_run):
    at = open_page(threshold_run["run_id"], "Choose model",
                   experiment_id=threshold_run["experiment"])  # fmt: skip
    text = "\n".join(m.value for m in at.markdown)
    rule = text.split("## Decision rule")[1].split("##")[0]
    assert "'melanoma' is decided when its probability is ≥" in rule
    assert "| melanoma | sensitivity |" in rule


def test_the_predictor_line_says_when_the_alias_no_longer_names_the_served_version():
    body = {
        "model_name": "m", "version": "3", "run_id": "r3", "stale": True,
        "problem": "the alias no longer names the served version 3: no version has it",
        "operating_point": {"positive_class": "malignant", "threshold": 0.2346,
                            "val_sensitivity": 0.9, "val_specificity": 0.0},
    }  # fmt: skip
    line = ready_line("http://p:5007", 200, body)
    assert line.startswith("the predictor at http://p:5007 serves m version 3 (run r3)")
    assert ("deciding 'malignant' at probability ≥ 0.235 (validation sensitivity 0.90, "
            "specificity 0.00)") in line  # fmt: skip
    assert line.endswith("; STALE: " + body["problem"])


def test_a_predictor_behind_the_alias_is_a_warning_naming_both_versions():
    assert switch_warning("3", "3", 30) is None and switch_warning(None, "2", 30) is None
    warning = switch_warning("3", "2", 30)
    assert warning.startswith("The predictor still serves version 2, not version 3")
    assert "PREDICTOR_POLL_S (30 s)" in warning


def test_a_predictor_decoding_otherwise_than_the_training_says_so_in_its_line():
    body = {"model_name": "m", "version": "2", "run_id": "r2", "decoding_note": "the model was "
            "trained on images decoded by version 5 of the image decoding; these ..."}  # fmt: skip
    assert ready_line("http://p:5007", 200, body).endswith("; " + body["decoding_note"])


def test_a_predictor_serving_nothing_yet_after_a_choice_says_it_will_load_it():
    warning = switch_warning("1", None, 30)  # the line above: "has not picked up version 1 yet"
    assert warning.startswith("The predictor serves no version yet: it loads version 1")
    assert "within PREDICTOR_POLL_S (30 s)" in warning


def test_a_stale_predictor_is_not_said_to_switch_by_waiting():
    warning = switch_warning("3", "2", 30, stale=True)
    assert warning.startswith("The predictor serves version 2 and does not switch to version 3")
    assert "PREDICTOR_POLL_S" not in warning


def test_an_alias_moved_outside_the_dashboard_is_named_against_the_audit_trail():
    chosen = {"action": "choose", "registered_model": "m", "alias": "champion"}
    recent = [{**chosen, "alias": "challenger", "run_id": "r7", "version": "7"},
              {"action": "download", "run_id": "r9", "version": None},
              {**chosen, "run_id": "r1", "version": "1",
               "selected_at": "2026-12-05T10:00:00Z"}]  # fmt: skip
    warning = unrecorded_move(recent, ("2", "r2"), "m", "champion")
    assert warning.startswith("The alias 'champion' names version 2 (run r2), but the last "
                              "choice recorded here is version 1 (run r1")  # fmt: skip
    assert "moved outside the dashboard" in warning
    assert unrecorded_move(recent, ("1", "r1"), "m", "champion") is None
    assert unrecorded_move(recent, ("7", "r7"), "m", "challenger") is None  # its own alias
    assert unrecorded_move(recent, ("2", "r2"), "other", "champion") is None  # another model
    assert unrecorded_move(recent[1:2], ("2", "r2"), "m", "champion") is None  # none chosen
    assert unrecorded_move(recent, None, "m", "champion") is None  # the alias names nothing


def test_the_datasets_warnings_are_shown_before_choosing(page_env, dashboard_runs, fresh_run,
                                                         mlflow_server):  # fmt: skip
    client = MlflowClient(mlflow_server)
    stats = json.loads(Path(client.download_artifacts(fresh_run, "dataset_stats.json")).read_text())
    conflict = {"files": ["train/a/1.png", "test/b/1.png"], "classes": ["a", "b"]}
    stats["leakage"]["near_label_conflicts"] = {"count": 2, "examples": [conflict]}
    client.log_dict(fresh_run, stats, "dataset_stats.json")
    at = open_page(fresh_run, "Choose model", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    assert any(w.value.startswith("About its data: Labels in conflict: 2 group(s) of "
                                  "near-identical images") for w in at.warning)  # fmt: skip


def test_tta_figures_are_flagged_before_choosing(page_env, model_name, dashboard_runs, fresh_run,
                                                 mlflow_server):  # fmt: skip
    from evaluator import evaluate_run

    evaluate_run(fresh_run, mlflow_server, batch_size=32, tta="both")
    at = open_page(fresh_run, "Choose model", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    assert any("About its test figures" in w.value and "tta 'both'" in w.value for w in at.warning)
    # and where the figures are read
    at = open_page(fresh_run, "Evaluation", experiment_id=dashboard_runs["experiment"])
    assert any("About these figures" in w.value and "tta 'both'" in w.value for w in at.warning)


def test_the_tab_shows_the_change_of_classes_before_choosing(
    page_env, model_name, dashboard_runs, threshold_run
):
    from dashboard.choose import choose_run

    choose_run(dashboard_runs["pipeline"], "three classes", Settings())
    at = open_page(threshold_run["run_id"], "Choose model",
                   experiment_id=threshold_run["experiment"])  # fmt: skip
    assert not at.exception
    [change] = [w.value for w in at.warning if "Clients that read the class names" in w.value]
    assert "classes keratosis, melanoma, nevus → melanoma, nevus" in change
    interface = f"choose_interface_{threshold_run['run_id']}"
    assert any(c.key == interface for c in at.checkbox)  # it must be confirmed


def test_the_predictor_line_says_which_dicom_modality_the_served_model_takes():
    body = {"model_name": "m", "version": "2", "run_id": "r", "modalities": ["US"]}
    assert ready_line("http://p:5007", 200, body).endswith(
        "; of DICOM files it takes Modality US only (PNG and JPEG files as they are)"
    )
    note = "the model records no modality (...): DICOM images of every modality are classified"
    body = {"model_name": "m", "version": "2", "run_id": "r", "modalities": None,
            "modality_note": note}  # fmt: skip
    assert ready_line("http://p:5007", 200, body).endswith("; " + note)


def test_a_download_is_recorded_by_the_name_typed_as_a_choice_is(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.text_input(key="choose_by").input("Ana").run()
    at.button(key="download_model").click().run()
    assert not at.exception
    [record] = SelectionStore(get_database(Settings())).recent()
    assert (record["action"], record["selected_by"]) == ("download", "Ana (typed)")


def test_a_top_k_download_is_recorded_by_the_name_typed(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc", topk_k=1,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    at.text_input(key="choose_by").input("Ana").run()
    at.button(key="download_topk").click().run()
    assert not at.exception
    assert [r["selected_by"] for r in SelectionStore(get_database(Settings())).recent()] == [
        "Ana (typed)"
    ]


def test_the_runs_top_k_would_download_are_listed_before_the_press(page_env, dashboard_runs):
    at = open_page(dashboard_runs["pipeline"], "Choose model", topk_metric="val_auc", topk_k=2,
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [before] = [f.value for f in at.dataframe if "val_auc" in f.value.columns]
    assert list(before.columns) == ["run", "run_id", "val_auc"]
    at.button(key="download_topk").click().run()
    assert not at.exception
    got = [r["run_id"] for r in SelectionStore(get_database(Settings())).recent()]
    assert list(before["run_id"]) == got[::-1]  # the newest record first: the best last


def test_an_alias_moved_back_by_hand_is_not_blamed_on_the_versions_first_chooser(
    page_env, model_name, dashboard_runs
):
    """Ana chose version 1, Bo version 2 (both recorded); the alias moved back to 1 in MLflow's
    UI is a move outside the dashboard, not Ana's choice ended unrecorded."""
    from dashboard.choose import choose_run

    store = SelectionStore(get_database(Settings()))
    choose_run(dashboard_runs["pipeline"], "first", Settings(), store, selected_by="ana")
    choose_run(dashboard_runs["bare"], "second", Settings(), store, selected_by="bo",
               allow_unevaluated=True)  # fmt: skip
    MlflowClient().set_registered_model_alias(model_name, "champion", "1")
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [warning] = [w.value for w in at.warning if "names version 1" in w.value]
    assert "moved outside the dashboard" in warning and "interrupted" not in warning


def test_a_reason_edited_in_mlflow_after_the_choice_is_warned_of(
    page_env, model_name, dashboard_runs
):
    from dashboard.choose import choose_run

    store = SelectionStore(get_database(Settings()))
    choose_run(dashboard_runs["pipeline"], "first", Settings(), store, selected_by="ana")
    MlflowClient().set_model_version_tag(model_name, "1", "reason", "approved by the board")
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [warning] = [w.value for w in at.warning if "were changed in MLflow" in w.value]
    assert warning.startswith("The tags of version 1") and "(reason no longer" in warning


def test_the_audit_trail_shows_older_records_and_one_action_on_request(
    page_env, model_name, dashboard_runs
):
    store = SelectionStore(get_database(Settings()))
    for i in range(25):  # every fifth a choice, the oldest first
        action = "choose" if i % 5 == 0 else "download"
        store.record(SelectionRecord(run_id=f"run{i}", action=action, model_uri="models:/m/1",
                                     experiment_id="1", reason=f"record {i}"))  # fmt: skip
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip

    def trail():
        return next(f.value for f in at.dataframe if "action" in f.value.columns)

    assert list(trail()["reason"]) == [f"record {i}" for i in range(24, 4, -1)]
    assert any("The latest 20 records" in c.value for c in at.caption)
    at.selectbox(key="trail_limit").set_value(100).run()
    assert len(trail()) == 25
    at.selectbox(key="trail_action").set_value("choices").run()
    assert list(trail()["run_id"]) == ["run20", "run15", "run10", "run5", "run0"]


def test_a_record_edited_in_the_store_is_flagged_above_the_trail(page_env, dashboard_runs):
    store = SelectionStore(get_database(Settings()))
    _, edited = (store.record(SelectionRecord(run_id=run, action="download", reason=run,
                                              model_uri="runs:/x/model", experiment_id="1"))
                 for run in ("kept", "edited"))  # fmt: skip
    get_database(Settings())["selections"].update_many(
        {"_id": edited["selection_id"]}, {"$set": {"selected_by": "someone else"}}
    )
    at = open_page(dashboard_runs["pipeline"], "Choose model",
                   experiment_id=dashboard_runs["experiment"])  # fmt: skip
    [error] = [e.value for e in at.error if "fail their seal's check" in e.value]
    assert "download of run edited: changed in the store" in error and "run kept" not in error
    trail = next(f.value for f in at.dataframe if "action" in f.value.columns)
    assert list(zip(trail["run_id"], trail["sealed"], strict=True)) == [
        ("edited", "✗ failed check"),
        ("kept", "✓ intact"),
    ]
