"""The leaderboard on the page: filter and sort (in MLflow), columns, the table, pages.

Clicking a row opens that run. Sorting, filtering and paging are MLflow's ``search_runs``
``order_by``, ``filter_string`` and page tokens, so an experiment of 10,000 runs costs one page.
Metric columns and pickers name a metric by ``readable.label`` (``test AUC (macro)``), its MLflow
key in the column's help and beside the name in the pickers.
"""

import functools
import hashlib
from collections import Counter

import streamlit as st

from dashboard import data, leaderboard, ranking, readable
from dashboard.basis import flat_note
from dashboard.chosen_on import chosen_mark, since_chosen
from dashboard.context import session_settings
from dashboard.markup import code, name_list, plain
from dashboard.notes import notes
from dashboard.reads import RUN_STATUSES, RunPage, RunQuery
from runs import contract

PAGE_SIZES = (10, 25, 50, 100, 200)
TABLE_KEY = "leaderboard"
ROW_PX = 35
# Below this many test images, one image is worth over 0.01 of an accuracy, and a proportion's
# 95 % interval is wider than ±0.1 around 0.5 (Wilson, n = 100: 0.40–0.60): said under the table.
FEW_TEST_IMAGES = 100


def _open_clicked(key: str, ids: list[str]) -> None:
    """Callback of the table ``key`` showing runs ``ids``: open the clicked run (runs before the
    page is drawn again)."""
    rows = st.session_state[key].selection.rows
    if rows and rows[0] < len(ids):
        st.session_state.run_id = ids[rows[0]]


def table_key(ids: list[str]) -> str:
    """The widget key of a table showing runs ``ids`` in this order.

    Streamlit keeps a table's selection by row position: were the key fixed, re-sorting would
    leave the checkbox on the row's new run, and a click on that run would clear it instead of
    opening it. Other rows or another order make a new table, with nothing ticked.
    """
    return f"{TABLE_KEY}-{hashlib.sha1(' '.join(ids).encode()).hexdigest()[:16]}"


def query(experiment_id: str, first: RunPage) -> tuple[RunQuery, list[str]]:
    """The filter, sort and column controls: the query of the page, and the metric columns."""
    metrics = leaderboard.metric_columns(first.rows)
    sorts = leaderboard.sort_options(metrics)
    top = st.columns([3, 2, 2, 1, 2])
    name = top[0].text_input("Name contains", key="run_name_filter")
    statuses = top[1].multiselect("Status", RUN_STATUSES, key="run_status_filter")
    sort = top[2].selectbox("Sort by", list(sorts), key="run_sort", format_func=readable.option)
    descending = top[3].toggle("Desc.", value=True, key="run_desc")
    deployable = top[4].toggle(
        "Only servable",
        key="run_deployable",
        help="Finished runs with a model of this pipeline (that it can serve: not a judgement of "
        "the model's quality).",
    )
    with st.expander("More: MLflow filter, columns, runs per page"):
        expr = st.text_input(
            "Filter (MLflow syntax)",
            key="run_filter",
            placeholder="metrics.val_auc > 0.8 and params.model = 'smallcnn'",
        )
        chosen = st.session_state.get("leaderboard_columns")
        moved = st.session_state.get("leaderboard_experiment", experiment_id) != experiment_id
        if chosen is None or moved:  # new experiment: its own default columns
            chosen = leaderboard.default_columns(first.rows)
        st.session_state.leaderboard_columns = [c for c in chosen if c in metrics]
        st.session_state.leaderboard_experiment = experiment_id
        columns = st.multiselect(
            "Metric columns", metrics, key="leaderboard_columns", format_func=readable.option
        )
        page_size = st.selectbox("Runs per page", PAGE_SIZES, index=1, key="run_page_size")
    if deployable:
        stage = f"tags.`{contract.STAGE_TAG}` = 'trained' and attributes.status = 'FINISHED'"
        expr = f"{stage} and ({expr})" if expr.strip() else stage
    order = f"{sorts.get(sort, 'attributes.start_time')} {'DESC' if descending else 'ASC'}"
    return RunQuery(experiment_id, name, tuple(statuses), expr, order, page_size), columns


def page_token(q: RunQuery) -> str | None:
    """The token of the page shown; back to the first page when the query changes."""
    signature = repr(q)
    if st.session_state.get("run_query") != signature:
        st.session_state.run_query = signature
        st.session_state.page_tokens = [None]
    return st.session_state.page_tokens[-1]


def _pager(next_token: str | None, shown: int) -> None:
    tokens = st.session_state.page_tokens
    left, mid, right, _ = st.columns([1, 2, 1, 6])
    if left.button("◀ Prev", disabled=len(tokens) == 1, key="page_prev"):
        tokens.pop()
        st.rerun()
    mid.caption(f"page {len(tokens)} · {shown} runs")
    if right.button("Next ▶", disabled=next_token is None, key="page_next"):
        tokens.append(next_token)
        st.rerun()


def class_filters(rows: list[dict]) -> list[str]:
    """For each set of classes the runs predict, the MLflow filter that keeps its runs, as a
    code span to paste (``params.class_names = '["malignant","benign"]'``, the param's JSON as
    logged), with how many runs here have it; a set whose JSON holds a ``'`` is named only."""
    counts = Counter(r["params"]["class_names"] for r in rows if r["params"].get("class_names"))
    found = []
    for names, n in sorted(counts.items()):
        shown = code(f"params.class_names = '{names}'") if "'" not in names else name_list(names)
        found.append(f"{shown} ({n} run{'s' if n != 1 else ''})")
    return found


def few_images(rows: list[dict], bases: list[leaderboard.Basis]) -> str | None:
    """Markdown under the table naming the runs whose evaluation rests on fewer than
    ``FEW_TEST_IMAGES`` test images (``Basis.n_test``: their intervals are wide); None when
    there are none."""
    few = [(r["run_name"], b.n_test) for r, b in zip(rows, bases, strict=True)
           if b.n_test is not None and b.n_test < FEW_TEST_IMAGES]  # fmt: skip
    if not few:
        return None
    named = ", ".join(f"{plain(name)} ({n})" for name, n in few)
    return (
        f"**Few test images** (under {FEW_TEST_IMAGES}, column {leaderboard.TEST_N}): {named}. "
        "Each image is worth more than 0.01 of their accuracy, and their 95 % intervals are "
        "wide: compare the intervals, not the last digits."
    )


def _metric_column(metric: str) -> st.column_config.TextColumn:
    """The column of ``metric``: its readable name, and in its help the MLflow key."""
    help_text = f"{leaderboard.column_help(metric)}. In MLflow: {metric}"
    return st.column_config.TextColumn(readable.label(metric), help=help_text)


def render(
    uri: str,
    page: RunPage,
    columns: list[str],
    selected: str | None,
    chosen: tuple[str, str] | None,
) -> None:
    """The table of one page of runs (click a row to open it) and the pager; ``chosen``: the
    version and run the alias names."""
    basis = functools.partial(ranking.row_basis, uri)  # tags; an older evaluation's file once
    if not page.rows:
        st.info("No runs match: change the filter, or train one with "
                "`python -m trainer --data-dir DIR --experiment NAME`.")  # fmt: skip
        _pager(None, 0)
        return
    shown_chosen = next((r for r in page.rows if chosen and r["run_id"] == chosen[1]), None)
    chosen_on = None
    if shown_chosen is not None:  # what its version was chosen on: read only when it is shown
        s = session_settings(uri)
        chosen_on = data.chosen_on(uri, s.model_name, chosen[0], s.model_alias)
    frame = leaderboard.table(page.rows, columns, selected, chosen, basis, chosen_on)
    ids = list(frame.index)
    key = table_key(ids)
    shown = frame.reset_index(drop=True)
    config = {
        "run": st.column_config.TextColumn(
            "run",
            width="medium",  # not pinned: Streamlit draws a pinned column's text faded
            help=f"{leaderboard.LEAK}: the run's test split shares images or patients with its "
            "training data (the trainer's leakage check): its test figures are optimistic",
        ),
        "duration": st.column_config.TextColumn(
            "duration",
            help="≥: a run marked KILLED after its trainer died (by the next trainer): how long "
            "it trained up to its last progress report; unknown: it died before its first",
        ),
        "deployable": st.column_config.TextColumn(
            "servable",
            help="✓: a finished run with a model of this pipeline, which the predictor can serve "
            "(not a judgement of its quality: evaluate and compare before choosing); chosen: the "
            "one the alias names (the Choose model tab says what the predictor serves)",
        ),
        leaderboard.TEST_N: st.column_config.TextColumn(
            leaderboard.TEST_N,
            help="How many test images the evaluation's figures rest on (the fewer, the wider "
            "their intervals); –: not evaluated, or its count could not be read (neither the tag "
            f"nor the evaluation's metrics.json). In MLflow: the tag {contract.EVALUATION_N_TAG}",
        ),
        **{m: _metric_column(m) for m in columns},
    }
    st.dataframe(  # no pandas Styler: it costs more than the rest of the leaderboard
        shown,
        hide_index=True,
        width="stretch",
        height=min(len(shown), 12) * ROW_PX + ROW_PX + 3,
        column_config=config,
        key=key,
        on_select=functools.partial(_open_clicked, key, ids),
        selection_mode="single-row",
    )
    st.markdown(
        "Click a row to open the run (▶ marks the open one). Metric cells: value (95 % "
        "interval) when logged; "
        f"{leaderboard.BEST} best on this page; {leaderboard.LEAK} after a run: its test split "
        "overlaps its training data. Sorting and filters run in MLflow over all runs (a "
        f"column's help names its metric there). Test figures ({code('eval_*')}) are of the most "
        "probable class (argmax, `predicted_class`); a two-class run with a threshold is served "
        "by its `decision`, whose test figures are the “at threshold” columns "
        f"({code('eval_thr_*')}: add them) and its Evaluation tab's; their sensitivity and "
        f"specificity get no {leaderboard.BEST}: each run is decided at its own threshold, and "
        "the one that calls more images positive gains sensitivity and loses specificity (a "
        "trade-off). test n: how many test images a run's test figures rest on. test OOD rate "
        f"({code('eval_ood_rate')}): the share of test images the model's out-of-distribution "
        "check calls unlike its training images (read against the expected OOD rate, about 1 %; "
        "shown, not ranked). servable ✓: a finished run the predictor can serve (not a judgement "
        "of its quality). duration ≥: the run ended unfinished (its trainer was killed); it "
        "trained at least that long."
    )
    if not leaderboard.comparable(page.rows):
        st.warning(
            f"The runs on this page predict {len(leaderboard.class_sets(page.rows))} different "
            f"sets of classes, whose metrics do not rank against each other: no "
            f"{leaderboard.BEST} is given. Filter on one (paste into the filter box): "
            + "; ".join(class_filters(page.rows))
            + "."
        )
    bases = [basis(r) for r in page.rows]
    for note in notes(bases):  # what a mark means: not secondary
        st.markdown(note)
    if flat := flat_note(bases):
        st.markdown(flat)
    if few := few_images(page.rows, bases):
        st.markdown(few)
    if shown_chosen and (since := since_chosen(chosen_on, shown_chosen["tags"])):
        st.warning(f"{chosen_mark(chosen[0], True)}: {since}")  # the table's mark, explained
    _pager(page.next_token, len(page.rows))


def first_page(uri: str, experiment_id: str) -> RunPage:
    """The default page (newest first), which also names the metrics for sorting and columns."""
    return data.runs_page(uri, RunQuery(experiment_id, page_size=PAGE_SIZES[1]))
