"""Artifacts tab: every artifact with name, size and type, folders expandable, one file viewed."""

from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from dashboard import artifacts, data
from dashboard.context import Context


def tree_table(entries: list[dict], folder: str) -> pd.DataFrame:
    """Entries directly inside ``folder`` ("" = root): name, size, type."""
    rows = []
    for e in entries:
        parent = str(PurePosixPath(e["path"]).parent)
        if (parent if parent != "." else "") != folder:
            continue
        rows.append(
            {
                "name": PurePosixPath(e["path"]).name + ("/" if e["is_dir"] else ""),
                "size": "" if e["is_dir"] else artifacts.human_size(e["size"]),
                "type": "folder" if e["is_dir"] else artifacts.kind(e["path"]),
            }
        )
    return pd.DataFrame(rows, columns=["name", "size", "type"])


def render_artifacts(ctx: Context) -> None:
    entries = data.artifacts(ctx.uri, ctx.run_id)
    st.caption(
        "The model itself is an MLflow LoggedModel and is not listed here: `runs:/"
        f"{ctx.run_id}/model` loads it, and the Choose model tab downloads it."
    )
    if not entries:
        st.info("This run has no artifacts.")
        return
    files = [e for e in entries if not e["is_dir"]]
    total = sum(e["size"] or 0 for e in files)
    st.write(f"{len(files)} files, {artifacts.human_size(total)} in all.")
    st.dataframe(tree_table(entries, ""), hide_index=True, width="stretch")
    for folder in (e["path"] for e in entries if e["is_dir"]):
        with st.expander(f"{folder}/", icon=":material/folder:"):
            st.dataframe(tree_table(entries, folder), hide_index=True, width="stretch")
    sizes = {e["path"]: e["size"] for e in files}
    path = st.selectbox(
        "View a file",
        list(sizes),
        format_func=lambda p: f"{p} ({artifacts.human_size(sizes[p])})",
        key="artifact_path",
    )
    if path:
        artifacts.download(ctx.uri, ctx.run_id, path, sizes[path])
        artifacts.show(ctx.uri, ctx.run_id, path, sizes[path])
