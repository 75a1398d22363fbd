"""Artifacts tab: the run's files as one tree, the model it logged, and one file viewed."""

from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from common import InvalidInput
from dashboard import artifacts, data
from dashboard.context import Context
from dashboard.markup import code, plain
from runs import MODEL_RECORD_KEY, contract, recorded_model

INDENT = "\u2003\u2003"  # em spaces: kept by the table, unlike plain spaces
# The file opened first: the most telling one a run usually has (never an HTML report).
FIRST = (
    "MLmodel",
    contract.METRICS_JSON,
    contract.INDEX_JSON,
    contract.PREPROCESSING_JSON,
    contract.DATASET_STATS_JSON,
)


def tree_table(entries: list[dict]) -> pd.DataFrame:
    """Every entry once, in tree order: indented name (folders end with ``/``), size, type."""
    rows = []
    for e in sorted(entries, key=lambda e: PurePosixPath(e["path"]).parts):
        path = PurePosixPath(e["path"])
        depth = len(path.parts) - 1
        icon = "▾ " if e["is_dir"] else ""  # a glyph every font has (not an emoji)
        rows.append(
            {
                "name": INDENT * depth + icon + path.name + ("/" if e["is_dir"] else ""),
                "size": "" if e["is_dir"] else artifacts.human_size(e["size"]),
                "type": "folder" if e["is_dir"] else artifacts.kind(e["path"]),
                "path": e["path"],
            }
        )
    return pd.DataFrame(rows, columns=["name", "size", "type", "path"])


def first_file(paths: list[str]) -> int:
    """Index of the file to open first in ``paths``."""
    for name in FIRST:
        for i, p in enumerate(paths):
            if PurePosixPath(p).name == name:
                return i
    for i, p in enumerate(paths):
        if artifacts.kind(p) not in ("html", "binary"):
            return i
    return 0


def model_caption(run_id: str, params: dict[str, str], models: list[dict]) -> str:
    """What the run's MLflow LoggedModels ``models`` (``data.logged_models``) are, and which
    one its training logged: ``models:/<id>`` of its param ``logged_model``, not ``runs:/``,
    which loads the latest logged into the run (the one runs trained before that record use)."""
    if not models:
        return "This run logged no MLflow model."
    listed = ", ".join(f"{code(m['name'])} ({code(m['model_uri'])})" for m in models)
    head = f"Models of this run (MLflow LoggedModels, stored apart from the files below): {listed}."
    latest = f"{code(f'runs:/{run_id}/' + models[0]['name'])} loads the latest logged by that name"
    try:
        recorded = recorded_model(run_id, params)
    except InvalidInput as exc:
        return f"{head} Which one its training logged is unknown: {plain(str(exc))}."
    if recorded is None:  # trained before the record
        return f"{head} {latest}."
    return (
        f"{head} Its training logged {code(f'models:/{recorded[0]}')} (param "
        f"{code(MODEL_RECORD_KEY)}), the one the pipeline uses; {latest}."
    )


def render_artifacts(ctx: Context) -> None:
    models = data.logged_models(ctx.uri, ctx.experiment_id, ctx.run_id)
    st.caption(model_caption(ctx.run_id, ctx.run["params"], models))
    entries = data.artifacts(ctx.uri, ctx.run_id)
    if not entries:
        st.info("This run has no artifacts.")
        return
    files = [e for e in entries if not e["is_dir"]]
    total = sum(e["size"] or 0 for e in files)
    st.write(f"{len(files)} files, {artifacts.human_size(total)} in all.")
    tree = tree_table(entries)
    st.dataframe(
        tree.drop(columns="path"),
        hide_index=True,
        width="stretch",
        height=min(len(tree), 14) * 35 + 38,
    )
    sizes = {e["path"]: e["size"] for e in files}
    paths = list(sizes)
    if st.session_state.get("artifact_path") not in sizes:
        st.session_state.artifact_path = paths[first_file(paths)]
    path = st.selectbox(
        "View a file",
        paths,
        format_func=lambda p: f"{p} ({artifacts.human_size(sizes[p])})",
        key="artifact_path",
    )
    if path:
        artifacts.download(ctx.uri, ctx.run_id, path, sizes[path])
        artifacts.show(ctx.uri, ctx.run_id, path, sizes[path])
