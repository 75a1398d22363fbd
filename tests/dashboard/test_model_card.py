import json

from common import NotFound
from dashboard import build_model_card, evaluation_table, readable, serving_instructions
from dashboard.card_tables import (
    class_counts,
    describe_operating_point,
    faithfulness_scope,
    faithfulness_table,
    fmt_value,
    operating_point_table,
    score_text,
)
from dashboard.markup import plain
from dashboard.model_card import nested
from dashboard.provenance import made_at
from dashboard.reads import load_run, read_artifact
from runs import contract, schemas


def _card(uri, run_id):
    run = load_run(uri, run_id)
    paths = {
        "stats": "dataset_stats.json",
        "metrics": f"{contract.evaluation_dir(run['tags'])}/metrics.json",
        "faith": f"{contract.explanation_dir(run['tags'])}/faithfulness.json",
    }
    found = {}
    for key, path in paths.items():
        try:
            found[key] = json.loads(read_artifact(uri, run_id, path))
        except NotFound:  # absent artifacts are part of the test
            found[key] = None
    report = found["metrics"] and schemas.EvaluationReport.model_validate(found["metrics"])
    stats = found["stats"] and schemas.DatasetStats.model_validate(found["stats"])
    faith = found["faith"] and schemas.Faithfulness.model_validate(found["faith"])
    table = evaluation_table(run["metrics"], report)
    return build_model_card(run, stats, table, faith, report=report or None)


def test_card_of_an_evaluated_run_has_intervals_and_faithfulness(mlflow_server, dashboard_runs):
    card = _card(mlflow_server, dashboard_runs["pipeline"])
    for heading in (
        "## Data",
        "## Training setup",
        "## Evaluation",
        "## Explanations",
        "## Known limitations",
    ):
        assert heading in card
    assert "Classes (3): 'keratosis', 'melanoma', 'nevus'" in card
    assert "test 12" in card
    accuracy = next(line for line in card.splitlines() if line.startswith("| test accuracy |"))
    value, low, high = (float(x) for x in accuracy.strip("|").split("|")[1:4])
    assert low <= value <= high
    assert "| gradcam |" in card
    assert "| test recall (nevus) |" not in card  # per-class metrics stay in the Evaluation tab


def test_card_of_an_old_evaluation_of_another_folder_says_so(
    mlflow_server, fresh_run, tiny_demo_data
):
    from tests.dashboard.conftest import old_evaluation

    old_evaluation(mlflow_server, fresh_run, f"{tiny_demo_data}-other")  # before own_data
    card = _card(mlflow_server, fresh_run)
    assert f"the evaluation used the test split of {tiny_demo_data}-other" in card
    assert "(another folder than the run's data)" in card


def test_card_of_a_bare_run_says_how_to_evaluate(mlflow_server, dashboard_runs):
    card = _card(mlflow_server, dashboard_runs["bare"])
    assert f"python -m evaluator --run-id {dashboard_runs['bare']}" in card
    assert f"python -m explainer --run-id {dashboard_runs['bare']}" in card


def test_card_of_a_foreign_run_does_not_fail(mlflow_server, dashboard_runs):
    card = _card(mlflow_server, dashboard_runs["sklearn"])
    assert "No dataset information" in card
    assert "Not evaluated yet" in card


def test_evaluation_table_pairs_values_with_interval_bounds():
    table = evaluation_table(
        {"eval_auc": 0.9, "eval_auc_ci_low": 0.8, "eval_auc_ci_high": 0.95, "val_auc": 0.5}
    )
    assert table.to_dict("records") == [
        {"metric": "auc", "value": 0.9, "ci_low": 0.8, "ci_high": 0.95, "overall": True}
    ]


def test_per_class_metrics_are_told_apart_from_overall_ones():
    report = schemas.EvaluationReport(
        n_samples=10,
        class_names=["nevus", "other"],
        overall={"accuracy": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}},
    )
    table = evaluation_table({"eval_accuracy": 0.5, "eval_recall_nevus": 0.7}, report)
    assert dict(zip(table["metric"], table["overall"], strict=True)) == {
        "accuracy": True,
        "recall_nevus": False,
    }


def test_class_counts_skip_totals():
    stats = schemas.DatasetStats(counts={"train": {"a": 2, "b": 3, "total": 5}})
    assert class_counts(stats) == {"train": {"a": 2, "b": 3}}


def test_faithfulness_falls_back_to_run_metrics():
    metrics = {"explain_deletion_auc_gradcam": 0.3, "explain_deletion_auc_random": 0.4}
    table = faithfulness_table(None, metrics)
    assert table["method"].tolist() == ["gradcam"]  # the random order is no method
    assert table.loc[0, "auc"] == 0.3
    assert table.loc[0, "random_auc"] == 0.4


def test_serving_instructions_name_the_alias_the_predictor_and_the_input():
    pp = {"image_size": [28, 28], "channels": 1, "class_names": ["benign", "malignant"]}
    text = serving_instructions("clf", "champion", "http://predictor:5007", pp)
    assert "mlflow models serve -m models:/clf@champion -p 5001 --env-manager local" in text
    assert "PATH=<virtualenv>/bin:$PATH" in text  # it starts uvicorn by name
    assert "more than 4× smaller a side" in text and "over 40 megapixels is refused" in text
    assert "curl -X POST http://predictor:5007/predict" in text
    assert "resized to 28×28, 1 channel(s)" in text and "('benign', 'malignant')" in text
    assert "the `decision` by the threshold chosen on validation" in " ".join(text.split())


def test_serving_instructions_name_every_field_of_an_images_answer():
    """What a client reads of each image: a field the predictor added is named here too."""
    from predictor.app import ImagePrediction

    text = serving_instructions("clf", "champion", "http://predictor:5007", {})
    said = set(ImagePrediction.model_fields) - {"file", "probabilities"}  # "probability of each"
    assert {field for field in said if f"`{field}`" not in text} == set()


def test_card_states_the_decision_rule_and_its_test_figures(mlflow_server, threshold_run):
    run_id = threshold_run["run_id"]
    run = load_run(mlflow_server, run_id)
    path = f"{contract.evaluation_dir(run['tags'])}/metrics.json"
    raw = read_artifact(mlflow_server, run_id, path)
    report = schemas.EvaluationReport.model_validate_json(raw)
    point = report.operating_points.threshold
    card = build_model_card(
        run, evaluation=evaluation_table(run["metrics"], report), operating_point=point
    )
    rule = card.split("## Decision rule")[1].split("##")[0]
    assert f"≥ {readable.figure(point.threshold)}, " in rule and "'melanoma'" in rule
    assert rule.count("| sensitivity |") == 2 and rule.count("| specificity |") == 2


def test_card_of_an_unevaluated_threshold_run_names_the_threshold(mlflow_server, threshold_run):
    run = load_run(mlflow_server, threshold_run["run_id"])
    rule = build_model_card(run).split("## Decision rule")[1].split("##")[0]
    assert run["params"]["decision_threshold"] in rule
    assert "come with the evaluation" in rule


def test_card_of_a_multiclass_run_decides_by_argmax(mlflow_server, dashboard_runs):
    card = _card(mlflow_server, dashboard_runs["pipeline"])
    rule = card.split("## Decision rule")[1].split("##")[0]
    assert "most probable class (argmax)" in rule and "--target-sensitivity" not in rule


def test_a_bound_computed_a_hair_above_zero_reads_as_zero():
    point = schemas.ThresholdPoint.model_validate({
        "positive_class": "melanoma", "threshold": 0.5,
        "per_class": {"nevus": {"sensitivity": {"value": 0.0, "ci_low": 2e-17, "ci_high": 0.26}}},
    })  # fmt: skip
    card = build_model_card(_run(), operating_point=point)
    assert "| nevus | sensitivity | 0 | 0 | 0.26 |" in _section(card, "Decision rule")


def test_the_threshold_table_adds_the_decisions_accuracy_ppv_and_npv():
    estimate = {"value": 0.8, "ci_low": 0.49, "ci_high": 0.94, "method": "wilson"}
    point = schemas.ThresholdPoint.model_validate({
        "positive_class": "malignant", "threshold": 0.15, "accuracy": estimate,
        "ppv": {**estimate, "value": 2 / 3}, "npv": {**estimate, "value": 6 / 7},
        "caveat": "the threshold was chosen on single-pass validation probabilities",
    })  # fmt: skip
    rows = operating_point_table(point).to_dict("records")
    assert [(r["class"], r["measure"].split(" ")[0], fmt_value(r["value"])) for r in rows] == [
        ("all images", "accuracy", "0.8"),
        ("malignant", "PPV", "0.6667"),
        ("malignant", "NPV", "0.8571"),
    ]
    assert describe_operating_point(point).endswith(
        "Caveat: the threshold was chosen on single-pass validation probabilities."
    )


def test_the_rule_says_how_the_positive_class_was_taken():
    """Label 1 taken because the names (a MedMNIST .npz's 0 and 1) do not say the finding: a
    reader must see that the threshold may protect the wrong class."""
    point = schemas.ThresholdPoint.model_validate({
        "positive_class": "1", "threshold": 0.31, "positive_chosen":
        "the second class (label 1): the class names do not say which one is the finding",
    })  # fmt: skip
    assert describe_operating_point(point).startswith(
        "'1' is decided when its probability is ≥ 0.31, the threshold chosen on validation "
        "data; the positive class is the second class (label 1): the class names do not say"
    )


def test_a_multiclass_runs_card_leaves_out_the_two_class_settings(trained_run):
    run = load_run(trained_run.tracking_uri, trained_run.run_id)  # the real trainer, 3 classes
    assert run["params"]["target_sensitivity"]  # logged, as every run logs its settings
    setup = build_model_card(run).split("## Training setup")[1].split("##")[0]
    assert "| target_sensitivity |" not in setup and "| epochs |" in setup


def _run(**tags) -> dict:
    """A ``run_to_dict`` summary of an evaluated run with ``tags``."""
    return {"run_id": "r1", "run_name": "r", "status": "FINISHED", "params": {},
            "metrics": {"eval_accuracy": 0.9}, "tags": tags}  # fmt: skip


def _report(**fields) -> schemas.EvaluationReport:
    return schemas.EvaluationReport(n_samples=75, class_names=["a", "b"], overall={}, **fields)


def _section(card: str, heading: str) -> str:
    return card.split(f"## {heading}")[1].split("\n## ")[0]


def test_the_card_warns_of_the_datasets_label_conflicts_and_duplicates_across_splits():
    run = _run()
    conflict = {"files": ["train/a/1.png", "test/b/1.png"], "classes": ["a", "b"]}
    stats = schemas.DatasetStats(leakage={
        "exact": {"train/test": {"count": 3, "examples": []}}, "near": {},
        "label_conflicts": {"count": 1, "examples": [conflict]},
    })  # fmt: skip
    data = build_model_card(run, stats).split("## Data")[1].split("##")[0]
    assert "- **Warning**: Possible leakage: 3 images have an exact or near duplicate" in data
    assert "- **Warning**: Labels in conflict: 1 image(s) appear under two" in data


def test_card_names_the_evaluation_its_figures_come_from(mlflow_server, dashboard_runs,
                                                         tiny_demo_data):  # fmt: skip
    evaluation = _section(_card(mlflow_server, dashboard_runs["pipeline"]), "Evaluation")
    assert f"- Evaluation: `{dashboard_runs['evaluation']}` (the run's current" in evaluation
    assert "- Made: 20" in evaluation
    assert f"- Data: 12 test images of `{tiny_demo_data}` (the run's own data)" in evaluation
    assert "- Test-time augmentation: none" in evaluation
    # no caveat of its data or provenance (the tiny model may name one class for every image)
    caveats = [line for line in evaluation.splitlines() if "Caveat" in line]
    assert [line for line in caveats if plain("argmax (`predicted_class`)") not in line] == []


def test_card_of_a_run_evaluated_on_another_folder_does_not_claim_its_own_test_split(
    mlflow_server, fresh_run, tiny_demo_data, tmp_path
):
    import shutil

    from evaluator import evaluate_run

    other = shutil.copytree(tiny_demo_data, tmp_path / "elsewhere")
    for image in list((other / "test").rglob("*.png")):  # 24 test images, not the run's 12
        shutil.copy(image, image.with_name(f"again-{image.name}"))
    evaluate_run(fresh_run, mlflow_server, data_dir=other, batch_size=32)
    card = _card(mlflow_server, fresh_run)
    assert "the evaluation used 24 images of" in _section(card, "Data")
    evaluation = _section(card, "Evaluation")
    assert f"- Data: 24 test images of `{other}` (another folder than" in evaluation
    caveat = plain(f"the evaluation used the test split of {other}, not")  # as Markdown shows it
    assert f"- **Caveat**: {caveat}" in evaluation
    limitations = _section(card, "Known limitations")
    assert "evaluated on one dataset" not in limitations and str(other) in limitations


def test_card_of_an_evaluation_whose_test_split_changed_since_training_says_so():
    changed = "the test split of /data/derm changed since the run was trained (content hash ..."
    report = _report(own_data=False, data_dir="/data/derm", data_changed=changed)
    run = _run(**{contract.EVALUATION_PATH_TAG: "evaluation/x"})
    card = build_model_card(run, evaluation=evaluation_table(run["metrics"]), report=report)
    assert f"not from this test split: {changed}." in _section(card, "Data")
    evaluation = _section(card, "Evaluation")
    assert "`/data/derm` (the run's own folder, whose test split changed since training)" in (
        evaluation
    )
    assert f"- **Caveat**: {changed}." in evaluation
    assert "used the test split of /data/derm, not" not in evaluation  # said once, with why
    assert "as it was after training (not the split" in _section(card, "Known limitations")


def test_card_of_a_tta_evaluation_says_so_with_its_caveat():
    card = build_model_card(_run(), evaluation=evaluation_table(_run()["metrics"]),
                            report=_report(tta="both"))  # fmt: skip
    evaluation = _section(card, "Evaluation")
    assert "- Test-time augmentation: both" in evaluation
    assert "- **Caveat**: the evaluation averaged flipped copies (tta 'both')" in evaluation


def test_card_without_the_evaluations_report_names_its_folder_and_claims_no_data():
    run = _run(**{contract.EVALUATION_PATH_TAG: "evaluation/20260101-x"})
    card = build_model_card(run, evaluation=evaluation_table(run["metrics"]))
    assert "- Evaluation: `evaluation/20260101-x`" in _section(card, "Evaluation")
    assert "evaluated on one dataset" not in _section(card, "Known limitations")


def test_the_evaluation_date_reads_in_utc():
    assert made_at(_report(created_at="2026-12-05T12:30:00+02:00")) == "2026-12-05 10:30 UTC"
    assert made_at(_report()) == "not recorded" and made_at(None) == "not recorded"


def test_a_faithfulness_score_is_shown_with_its_interval():
    faithfulness = schemas.Faithfulness.model_validate(
        {"n_samples": 8, "methods": {"shap": {"auc": 0.2, "random_auc": 0.3, "score": 0.1,
                                              "score_ci_low": -0.02, "score_ci_high": 0.21}}}
    )  # fmt: skip
    row = faithfulness_table(faithfulness, {}).to_dict("records")[0]
    assert score_text(row) == "0.1 (95 % CI -0.02 to 0.21)"  # bounds to 3 digits, as all
    assert faithfulness_scope(faithfulness) == "8 explained images"


def test_a_score_written_before_intervals_is_shown_alone_with_its_image_count():
    faithfulness = schemas.Faithfulness.model_validate(
        {"random": {"auc_per_sample": [0.3, 0.2, 0.4]},
         "methods": {"shap": {"auc": 0.2, "random_auc": 0.3, "score": 0.1}}}
    )  # fmt: skip
    assert score_text(faithfulness_table(faithfulness, {}).to_dict("records")[0]) == "0.1"
    assert faithfulness_scope(faithfulness) == (
        "3 explained images (too few for an interval: explain 5 or more)"
    )


def test_the_card_names_the_model_s_dicom_modality_or_that_it_records_none():
    data = _section(build_model_card(_run(), preprocessing={"modalities": ["US"]}), "Data")
    assert "- DICOM modality: US (a DICOM input of another is refused)" in data
    none = _section(build_model_card(_run(), preprocessing={"modalities": None}), "Data")
    assert "- DICOM modality: none recorded (DICOM inputs of every modality are classified)" in none
    assert "DICOM modality" not in _section(build_model_card(_run(), preprocessing={}), "Data")
    pp = {"image_size": [28, 28], "channels": 1, "class_names": ["a", "b"], "modalities": ["US"]}
    text = serving_instructions("clf", "champion", "http://predictor:5007", pp)
    assert "1 channel(s); DICOM files of Modality US only" in text


def test_the_card_says_its_evaluation_figures_are_the_argmax_s_and_where_the_decision_s_are():
    card = build_model_card(_run(), evaluation=evaluation_table(_run()["metrics"]))
    evaluation = _section(card, "Evaluation (test set, 95% confidence intervals)")
    assert "Figures of the most probable class (argmax, `predicted_class`)." in evaluation


def test_the_card_says_how_the_model_was_made_from_the_runs_records():
    sessions = [
        {"session": 1, "at": "2026-12-06T09:00:00+00:00", "start_epoch": 1, "commit": "abc123",
         "dirty": "false", "threads": 2, "device": "cpu", "world_size": 1},
        {"session": 2, "at": "2026-12-06T10:00:00+00:00", "start_epoch": 7, "commit": "def456",
         "dirty": "true", "threads": 1, "device": "cpu", "world_size": 1},
    ]  # fmt: skip
    run = _run(**{"mlflow.source.git.commit": "abc123", "pipeline.git_dirty": "false",
                  "mlflow.user": "ana", "pipeline.sessions": json.dumps(sessions),
                  "pipeline.resumed": "true"})  # fmt: skip
    made = _section(build_model_card(run), "Provenance")
    assert "by ana" in made and "commit `abc123`, no tracked file changed" in made
    assert "Sessions: 2 (resumed)" in made
    assert "session 2 at 2026-12-06T10:00:00+00:00: from epoch 7, cpu, 1 CPU threads" in made
    assert "environment/session-<k>.json" in made


def test_the_card_says_when_the_commit_is_the_one_an_image_was_built_from():
    run = _run(**{"mlflow.source.git.commit": "abc123", "pipeline.git_dirty": "unknown",
                  "pipeline.git_commit_source": "PIPELINE_GIT_COMMIT"})  # fmt: skip
    made = _section(build_model_card(run), "Provenance")
    assert "commit `abc123` (the commit its image was built from: changes in that build" in made


def test_the_card_marks_a_model_trained_from_changed_code():
    run = _run(**{"mlflow.source.git.commit": "abc123", "pipeline.git_dirty": "true",
                  "pipeline.git_diff_sha256": "0f0f0f0f"})  # fmt: skip
    assert "**tracked files changed** (diff sha256 `0f0f0f0f`)" in _section(
        build_model_card(run), "Provenance"
    )


def test_the_card_marks_a_model_trained_in_an_image_built_from_changed_code():
    run = _run(**{"mlflow.source.git.commit": "abc123", "pipeline.git_dirty": "true",
                  "pipeline.git_commit_source": "PIPELINE_GIT_COMMIT"})  # fmt: skip
    made = _section(build_model_card(run), "Provenance")
    assert "**tracked files changed** in the folder its image was built from" in made
    assert "diff sha256" not in made


def test_nested_card_headings_go_deeper_and_code_stays_as_it_is():
    card = "# Card\n\n## Data\n\n```bash\n# a comment\n```\ntext # not a heading"
    assert nested(card, under=3) == (
        "#### Card\n\n##### Data\n\n```bash\n# a comment\n```\ntext # not a heading"
    )
