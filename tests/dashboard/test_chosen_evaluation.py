"""A version chosen on one evaluation of its run, shown after a later one: every view of it
says its figures are not those it was chosen on, and which those were (``dashboard.chosen_on``);
and the predictor's line while it has not picked up a first choice yet."""

import time
import uuid

import mlflow
import pytest
import requests

from common import Settings
from dashboard import build_model_card, evaluation_table, leaderboard
from dashboard.choose import choose_run
from dashboard.chosen_on import read_chosen_on, since_chosen
from dashboard.markup import plain
from dashboard.reads import load_run
from dashboard.reports import evaluation_report
from tests.dashboard.conftest import (
    _pipeline_run,
    open_page,
    other_test_data,
    page_text,
)

TOKEN = "chosen-on-test-token-0123456789abcdef"
# Its runs in an experiment of their own: added to the shared one, they pushed its older runs
# off the first page that other tests open.
OWN_EXPERIMENT = "chosen-on-tests"


@pytest.fixture
def run_id(mlflow_server, tiny_demo_data) -> str:
    """A pipeline run of the tiny data, evaluated on its own test split."""
    from evaluator import evaluate_run

    mlflow.set_tracking_uri(mlflow_server)
    experiment = mlflow.set_experiment(OWN_EXPERIMENT).experiment_id
    run_id = _pipeline_run(mlflow_server, tiny_demo_data, "smallcnn-chosen-on")
    evaluate_run(run_id, mlflow_server, batch_size=32)
    assert load_run(mlflow_server, run_id)["experiment_id"] == experiment
    return run_id


def _evaluate_elsewhere(uri: str, run_id: str, tiny_demo_data, folder) -> str:
    """Evaluate ``run_id`` again on another folder's test split; its path."""
    from evaluator import evaluate_run

    other = other_test_data(tiny_demo_data, folder)
    return evaluate_run(run_id, uri, data_dir=other, batch_size=32)["artifact_path"]


def _card(uri: str, run_id: str, settings: Settings) -> str:
    run = load_run(uri, run_id)
    chosen = read_chosen_on(uri, settings.model_name, "1", settings.model_alias)
    report = evaluation_report(uri, run)
    return build_model_card(run, evaluation=evaluation_table(run["metrics"], report),
                            report=report, chosen=chosen)  # fmt: skip


def test_a_later_evaluation_is_said_to_be_not_the_one_the_version_was_chosen_on(
    mlflow_server, run_id, settings, tiny_demo_data, tmp_path
):
    choice = choose_run(run_id, "best AUC", settings)
    first = load_run(mlflow_server, run_id)
    chosen_path = first["tags"]["pipeline.evaluation.path"]
    chosen = read_chosen_on(mlflow_server, settings.model_name, choice.version, "champion")
    assert since_chosen(chosen, first["tags"]) is None
    assert f"{settings.model_name} version 1 (alias champion) was chosen on this evaluation." in (
        _card(mlflow_server, run_id, settings)
    )

    later = _evaluate_elsewhere(mlflow_server, run_id, tiny_demo_data, tmp_path / "external")
    run = load_run(mlflow_server, run_id)
    said = since_chosen(chosen, run["tags"])
    assert said.startswith(
        f"{settings.model_name} version 1 (alias champion) was chosen on another evaluation "
        f"than the one shown: on `{chosen_path}` (12 test images of `{tiny_demo_data}`, made "
    )
    assert plain(f"{chosen.headline})") in said  # roc_auc_macro and accuracy, as chosen
    assert chosen.headline.startswith("roc_auc_macro ") and "; accuracy " in chosen.headline
    assert f"the test figures shown are of the evaluation `{later}`, made since" in said

    card = _card(mlflow_server, run_id, settings)
    evaluation = card.split("## Evaluation")[1].split("\n## ")[0]
    assert f"- Evaluation: `{later}` (the run's current evaluation)" in evaluation
    assert f"- **Not the evaluation it was chosen on**: {said}" in evaluation

    frame = leaderboard.table([run], [], chosen=("1", run_id), chosen_on=chosen)
    assert frame.loc[run_id, "deployable"] == "✓ chosen (version 1) on other figures"
    assert leaderboard.table([run], [], chosen=("1", run_id)).loc[run_id, "deployable"] == (
        "✓ chosen (version 1)"
    )

    # Chosen again: the version's tags now record the evaluation shown
    choose_run(run_id, "still the best, on the external data", settings)
    again = read_chosen_on(mlflow_server, settings.model_name, "1", "champion")
    assert since_chosen(again, run["tags"]) is None
    frame = leaderboard.table([run], [], chosen=("1", run_id), chosen_on=again)
    assert frame.loc[run_id, "deployable"] == "✓ chosen (version 1)"


def test_a_version_chosen_unevaluated_is_said_to_be_chosen_without_the_figures_shown(
    mlflow_server, tiny_demo_data, settings
):
    from evaluator import evaluate_run

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(OWN_EXPERIMENT)
    bare = _pipeline_run(mlflow_server, tiny_demo_data, "smallcnn-chosen-bare")
    choose_run(bare, "needed now", settings, allow_unevaluated=True)
    chosen = read_chosen_on(mlflow_server, settings.model_name, "1", "champion")
    before = load_run(mlflow_server, bare)
    assert since_chosen(chosen, before["tags"]) is None
    path = evaluate_run(bare, mlflow_server, batch_size=32)["artifact_path"]
    run = load_run(mlflow_server, bare)
    assert since_chosen(chosen, run["tags"]) == (
        f"{settings.model_name} version 1 (alias champion) was chosen without an evaluation: "
        f"the test figures shown are of the evaluation `{path}`, made since, which nobody "
        "weighed when choosing it."
    )
    frame = leaderboard.table([run], [], chosen=("1", bare), chosen_on=chosen)
    assert frame.loc[bare, "deployable"] == "✓ chosen (version 1) on other figures"


@pytest.fixture
def page_model(page_env, monkeypatch) -> Settings:
    """The page's settings with a registered model name of its own."""
    monkeypatch.setenv("MODEL_NAME", f"chosen-{uuid.uuid4().hex[:8]}")
    return Settings()


def test_the_tab_the_card_and_the_leaderboard_say_the_version_was_chosen_on_other_figures(
    page_model, mlflow_server, run_id, tiny_demo_data, tmp_path
):
    choose_run(run_id, "best AUC", page_model)
    chosen_path = load_run(mlflow_server, run_id)["tags"]["pipeline.evaluation.path"]
    _evaluate_elsewhere(mlflow_server, run_id, tiny_demo_data, tmp_path / "external")
    experiment = load_run(mlflow_server, run_id)["experiment_id"]
    at = open_page(run_id, "Choose model", experiment_id=experiment)
    assert not at.exception
    label = f"{page_model.model_name} version 1 (alias champion)"
    [tab] = [w.value for w in at.warning if w.value.startswith(label)]
    assert f"was chosen on another evaluation than the one shown: on `{chosen_path}`" in tab
    [board] = [w.value for w in at.warning if w.value.startswith("✓ chosen (version 1)")]
    assert board == f"✓ chosen (version 1) on other figures: {tab}"
    table = next(f.value for f in at.dataframe if "deployable" in f.value.columns)
    assert "✓ chosen (version 1) on other figures" in list(table["deployable"])
    card = "\n".join(m.value for m in at.markdown)
    assert f"- **Not the evaluation it was chosen on**: {tab}" in card


def test_a_predictor_that_has_not_looked_since_the_choice_is_not_said_to_serve_nothing_chosen(
    page_model, monkeypatch, mlflow_server, run_id
):
    from predictor.app import create_app
    from tests.conftest import LiveServer

    served = Settings(_env_file=None, mlflow_tracking_uri=mlflow_server,
                      model_name=page_model.model_name, pipeline_api_token=TOKEN,
                      store_dir=page_model.store_dir, mongo_uri=None)  # fmt: skip
    app = create_app(served)
    with LiveServer(app) as predictor:
        deadline = time.monotonic() + 30
        while (
            "no model is chosen"
            not in requests.get(
                f"{predictor.url}/ready", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            ).text
        ):
            assert time.monotonic() < deadline, "the predictor never looked at the alias"
            time.sleep(0.2)
        app.state.holder.stop()  # between two looks at the alias, as for PREDICTOR_POLL_S
        monkeypatch.setenv("PREDICTOR_URL", predictor.url)
        monkeypatch.setenv("PIPELINE_API_TOKEN", TOKEN)
        choose_run(run_id, "best AUC", Settings())
        at = open_page(run_id, "Choose model", experiment_id=load_run(mlflow_server, run_id)[
            "experiment_id"])  # fmt: skip
    assert not at.exception
    text = page_text(at)
    assert "no model is chosen" not in text and "serves nothing yet" not in text
    assert (
        plain(
            f"The predictor at {predictor.url} has not picked up version 1 yet: when it last "
            f"looked, no version of {page_model.model_name} had the alias 'champion'"
        )
        in text
    )  # (the page's line is literal text: escaped)
    assert "The predictor serves no version yet: it loads version 1" in text


def test_the_same_test_images_evaluated_again_are_not_another_evaluation(
    mlflow_server, run_id, settings
):
    """A repeat of the chosen-on request after one of other data makes a new folder of the very
    images (runs.result_current): the figures are the same, nothing to warn of."""
    from evaluator import evaluate_run

    choose_run(run_id, "best AUC", settings)
    chosen = read_chosen_on(mlflow_server, settings.model_name, "1", "champion")
    again = evaluate_run(run_id, mlflow_server, batch_size=16)["artifact_path"]
    run = load_run(mlflow_server, run_id)
    assert again != chosen.path and run["tags"]["pipeline.evaluation.path"] == again
    assert since_chosen(chosen, run["tags"]) is None
    assert (
        f"was chosen on an evaluation of the same test images (`{chosen.path}`), made again "
        "since as this one."
    ) in _card(mlflow_server, run_id, settings)
    frame = leaderboard.table([run], [], chosen=("1", run_id), chosen_on=chosen)
    assert frame.loc[run_id, "deployable"] == "✓ chosen (version 1)"
