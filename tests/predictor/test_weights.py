"""A version whose weights are not those chosen is not served (``predictor.weights``)."""

import pytest
from mlflow.tracking import MlflowClient

from common import InvalidInput
from dashboard.choose import choose_run
from predictor.answers import readiness
from predictor.core import ModelHolder
from predictor.errors import NoModelLoaded, served_or_503
from predictor.weights import check_weights
from runs import FILES_KEY, load_classifier, weights_digest
from tests.conftest import log_untrained_run
from tests.tampering import other_module, replace_weights

REFUSED = "version 2 does not hold the weights chosen: its weights' digest is"


def _serving_1_with_2_replaced(settings, served_runs, demo_data, seed: int) -> ModelHolder:
    """A holder serving version 1, once version 2 was chosen and its weights file replaced in
    the artifact store."""
    uri = settings.mlflow_tracking_uri
    choose_run(served_runs[0], "first", settings, allow_unevaluated=True)
    holder = ModelHolder(settings, record=False)
    assert holder.refresh() and holder.current.version == "1"
    run_id = log_untrained_run(uri, demo_data, seed=seed)
    choose_run(run_id, "second", settings, allow_unevaluated=True)
    replace_weights(uri, settings.model_name, "2", other_module(uri, run_id, seed=seed + 1))
    return holder


def test_a_version_whose_weights_file_was_replaced_is_not_served(settings, served_runs, demo_data):
    uri = settings.mlflow_tracking_uri
    holder = _serving_1_with_2_replaced(settings, served_runs, demo_data, seed=51)
    # as chosen by an earlier release (served unsigned, as the settings allow): no files' digest
    # refuses the files before they load, so the weights are checked once loaded
    MlflowClient(uri).delete_model_version_tag(settings.model_name, "2", FILES_KEY)
    chosen = MlflowClient(uri).get_model_version(settings.model_name, "2").tags["weights_digest"]
    assert weights_digest(load_classifier(f"models:/{settings.model_name}/2")) != chosen

    assert not holder.refresh()  # version 1 goes on serving, stale, saying why (/ready)
    ready = readiness(holder.current)
    assert ready.version == "1" and ready.stale
    assert REFUSED in ready.problem and "(its tag weights_digest)" in ready.problem
    loads = []
    holder.loader = lambda uri, files: loads.append(uri)  # the next polls do not fetch it
    assert not holder.refresh() and loads == [] and REFUSED in holder.current.problem

    started = ModelHolder(settings, record=False)  # a predictor started since serves nothing
    started.refresh()
    with pytest.raises(NoModelLoaded, match=REFUSED):
        served_or_503(started)


def test_a_chosen_version_whose_weights_file_was_replaced_is_refused_before_loading(
    settings, served_runs, demo_data
):
    """Its files are checked against the digest signed with the choice before they are read."""
    holder = _serving_1_with_2_replaced(settings, served_runs, demo_data, seed=54)
    assert not holder.refresh()
    assert (holder.current.version, holder.current.stale) == ("1", True)
    assert f"models:/{settings.model_name}/2 was not loaded: its files' digest is" in (
        holder.current.problem
    )


def test_the_runs_digest_is_checked_beside_the_version_tag_and_without_either_nothing(
    settings, served_runs
):
    uri, run_id = settings.mlflow_tracking_uri, served_runs[0]
    other = other_module(uri, run_id, seed=53)
    params = MlflowClient(uri).get_run(run_id).data.params
    with pytest.raises(InvalidInput, match=rf"\(param weights_digest of run {run_id}\)"):
        check_weights(other, "7", run_id, {}, params)  # a version registered before the tag
    check_weights(other, "7", None, {}, None)  # nothing recorded: served as before
    # a tag edited to match replaced files: the run's param, which cannot be edited, still counts
    with pytest.raises(InvalidInput, match=rf"\(param weights_digest of run {run_id}\)"):
        check_weights(other, "7", run_id, {"weights_digest": weights_digest(other)}, params)
