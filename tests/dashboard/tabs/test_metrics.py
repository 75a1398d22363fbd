import math

import pandas as pd
import pytest

from common import CATEGORICAL
from dashboard.markup import plain
from dashboard.tabs.metrics import MAX_POINTS, history_chart, key_stats
from tests.dashboard.charts import chart_of, charts
from tests.dashboard.conftest import LONG_VALUE, leak, open_page


def _open(runs, role, **state):
    return open_page(runs[role], "Metrics", experiment_id=runs["experiment"], **state)


def _table(at, column):
    """The first dataframe that has ``column``."""
    return next(f.value for f in at.dataframe if column in f.value.columns)


def test_params_metrics_and_run_info(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert not at.exception
    info = _table(at, "field").set_index("field")["value"]
    assert info["run id"] == dashboard_runs["pipeline"]
    assert info["status"] == "FINISHED"
    params = _table(at, "param").set_index("param")["value"]
    assert params["model"] == "smallcnn"
    summary = _table(at, "latest")
    assert summary.loc["val_auc", "metric"] == "validation AUC"  # its MLflow key: the index
    assert summary.loc["val_auc", "min"] == "0.6"  # readable.figure, as the leaderboard writes it
    assert summary.loc["val_auc", "max"] == "0.8"
    assert summary.loc["val_auc", "values"] == 3


def _panel(spec: dict) -> dict:
    """The encoding of the chart drawn in every panel of a faceted history chart."""
    return spec["spec"]["layer"][0]["encoding"]


def test_history_chart_is_drawn_for_the_default_metrics(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    assert at.multiselect(key=f"chart_metrics_{dashboard_runs['pipeline']}").value == [
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_auc",
    ]
    assert charts(at)


def test_two_thousand_steps_are_summarised_and_charted(page_env, dashboard_runs):
    at = _open(dashboard_runs, "steps", chart_smooth=0.9, chart_log=True, chart_x="time")
    assert not at.exception
    summary = _table(at, "latest")
    assert summary.loc["train_loss", "values"] == 2000
    assert summary.loc["train_loss", "min"] == "0.0005"  # 1 / 2000
    [spec] = charts(at)
    assert _panel(spec)["y"]["scale"]["type"] == "log"
    assert _panel(spec)["x"]["field"] == "seconds"


def test_dataset_statistics_show_counts_per_split(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    counts = _table(at, "test")
    assert counts.loc["samples", "test"] == 12


def test_run_without_dataset_says_how_to_get_it(page_env, dashboard_runs):
    at = _open(dashboard_runs, "sklearn")
    assert any("no dataset statistics" in i.value for i in at.info)


def test_long_param_values_are_kept_whole(page_env, dashboard_runs):
    at = _open(dashboard_runs, "unicode")
    params = _table(at, "param").set_index("param")["value"]
    assert params["notes"] == LONG_VALUE


def test_compared_runs_are_overlaid_in_each_panel(page_env, dashboard_runs):
    pipeline, bare = dashboard_runs["pipeline"], dashboard_runs["bare"]
    at = _open(dashboard_runs, "pipeline", compare_ids=[bare])
    assert at.checkbox(key=f"chart_overlay_{pipeline}_{bare}").value
    spec, frame = chart_of(at, "run")
    assert _panel(spec)["color"]["field"] == "run"
    assert set(frame["run"]) == {"smallcnn-evaluated", "smallcnn-bare"}


def test_one_panel_per_metric_with_its_own_y_axis_and_whole_epochs(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    spec, _ = chart_of(at, "key")
    assert spec["facet"]["field"] == "key"
    assert spec["resolve"]["scale"]["y"] == "independent"
    x_axis = _panel(spec)["x"]["axis"]
    assert x_axis["tickMinStep"] == 1 and x_axis["format"] == "d"


def test_metrics_with_one_value_are_shown_as_values(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    tiles = {m.label: m.value for m in at.metric}
    assert tiles[plain("best validation AUC")] == "0.8"  # a label is Markdown
    assert (
        "best_val_auc"
        not in at.multiselect(key=f"chart_metrics_{dashboard_runs['pipeline']}").options
    )


def test_metric_picker_follows_the_open_run(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    at.multiselect(key=f"chart_metrics_{dashboard_runs['pipeline']}").set_value(["val_loss"]).run()
    at.session_state["run_id"] = dashboard_runs["steps"]
    at.run()
    assert at.title[0].value == "long-history"
    assert at.multiselect(key=f"chart_metrics_{dashboard_runs['steps']}").value == ["train_loss"]
    assert charts(at)


def _history(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "timestamp", "value"])


def test_key_stats_leave_out_nan_as_pandas_does():
    hist = _history(
        [("r", "a", 0, 0, 3.0), ("r", "a", 1, 1, math.nan), ("r", "a", 2, 2, 1.0),
         ("r", "b", 0, 0, math.nan)]
    )  # fmt: skip
    stats = key_stats(hist)
    assert stats["a"] == (1.0, 3.0, 2)
    assert math.isnan(stats["b"][0]) and stats["b"][2] == 0
    grouped = hist.groupby("key")["value"].agg(["min", "max", "count"])
    assert stats["a"] == tuple(grouped.loc["a"])


def test_chart_rows_follow_steps_per_run_and_metric():
    # Logged out of order, two runs, one metric left out of the chart.
    hist = _history(
        [("r1", "loss", 2, 30, 0.2), ("r1", "loss", 0, 10, 0.9), ("r2", "loss", 0, 5, 0.8),
         ("r1", "loss", 1, 20, 0.5), ("r1", "lr", 0, 10, 0.1)]
    )  # fmt: skip
    frame, spec = history_chart(hist, {"r1": "first"}, keys={"loss"})
    one = frame[frame["run"] == "first"]
    assert one["step"].tolist() == [0, 1, 2]
    assert one["value"].tolist() == [0.9, 0.5, 0.2]
    assert one["seconds"].tolist() == [0.0, 0.01, 0.02]
    assert set(frame["run"]) == {"first", "r2"}  # unnamed runs by their id's start
    assert set(frame["key"]) == {"loss"}
    assert spec["spec"]["layer"][0]["encoding"]["color"]["legend"] is not None


def test_chart_smooths_before_thinning():
    n = 3 * MAX_POINTS
    hist = _history([("r", "loss", i, i, float(i % 2)) for i in range(n)])
    frame, _ = history_chart(hist, {}, weight=0.5)
    assert len(frame) == MAX_POINTS
    assert frame["step"].tolist()[:3] == [0, 3, 6]
    # Each kept point is the moving average over every value up to it, not over kept ones.
    assert frame["value"].iloc[-1] == pytest.approx(
        pd.Series([float(i % 2) for i in range(n)]).ewm(alpha=0.5, adjust=False).mean().iloc[n - 3]
    )


def test_a_run_never_evaluated_is_not_said_to_have_optimistic_test_figures(
    page_env, dashboard_runs, fresh_run, mlflow_server
):
    leak(mlflow_server, fresh_run)  # its test split shares images with train: not evaluated
    at = open_page(fresh_run, "Metrics", experiment_id=dashboard_runs["experiment"])
    assert not at.exception
    [warning] = [w.value for w in at.warning if w.value.startswith("Possible leakage")]
    assert "test figures may be optimistic" not in warning
    assert warning.endswith("once evaluated, its test figures would be optimistic.")


def test_history_and_class_distribution_charts_have_text_alternatives(page_env, dashboard_runs):
    at = _open(dashboard_runs, "pipeline")
    alts = [c.proto.alt for c in at.get("vega_lite_chart")]
    assert any(a.startswith("Metric history") and "validation AUC of " in a for a in alts)
    assert any(a.startswith("Class distribution per split: ") for a in alts)


def test_overlaid_runs_differ_by_dash_as_well_as_colour():
    hist = _history([("r1", "loss", 0, 10, 0.9), ("r2", "loss", 0, 5, 0.8)])
    _, spec = history_chart(hist, {"r1": "first", "r2": "second"})
    encoding = spec["spec"]["layer"][0]["encoding"]
    assert encoding["strokeDash"]["field"] == encoding["color"]["field"] == "run"


def test_class_bars_and_history_lines_are_in_colours_that_contrast_with_white(
    page_env, dashboard_runs
):
    at = _open(dashboard_runs, "pipeline")
    bars, _ = chart_of(at, "split")
    assert bars["encoding"]["color"]["scale"]["range"] == list(CATEGORICAL)
    history, _ = chart_of(at, "key")
    assert _panel(history)["color"]["scale"]["range"] == list(CATEGORICAL)


def test_panels_are_titled_with_units_and_the_tooltip_writes_a_figure_as_the_tables_do():
    hist = _history([("r", "epoch_time", 0, 0, 30.5), ("r", "val_auc", 0, 0, 0.9),
                     ("r", "val_auc", 1, 1, 0.99125), ("r", "mine", 0, 0, 1.0)])  # fmt: skip
    frame, spec = history_chart(hist, {})
    title = spec["facet"]["header"]["labelExpr"]
    assert 'datum.value === "epoch_time" ? "epoch time (s)"' in title
    assert 'datum.value === "val_auc" ? "validation AUC"' in title
    assert '"mine"' not in title and title.endswith(": datum.value")  # its own key
    [shown] = [t for t in _panel(spec)["tooltip"] if t.get("title") == "value"]
    assert shown["field"] == "figure"
    assert frame.loc[frame["value"] == 0.99125, "figure"].tolist() == ["0.9913"]
