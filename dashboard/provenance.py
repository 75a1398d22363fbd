"""What a reader of a run's test figures must know, in the words the model card and the
Metrics and Evaluation tabs share: the dataset's warnings (images under two classes, duplicates
across splits).

Pure functions of the run's typed results: no Streamlit, no MLflow reads.
"""

import pandas as pd

from runs import contract


def leakage_rows(stats: dict | None) -> pd.DataFrame:
    """One row per split pair and kind (exact, near) with duplicates in ``dataset_stats.json``,
    with up to three example pairs; empty when there are none or no leakage check."""
    leakage = (stats or {}).get("leakage") or {}
    rows = [
        (pair, kind, found["count"],
         "; ".join(f"{e['a']} ≈ {e['b']}" for e in found.get("examples", [])[:3]))
        for kind in ("exact", "near")
        for pair, found in (leakage.get(kind) or {}).items()
        if found.get("count")
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["splits", "duplicates", "images", "examples"])


def dataset_warnings(stats: contract.DatasetStats | None) -> list[str]:
    """One sentence per problem of the dataset that weakens its test figures: (near-)identical
    images under two classes, and images with an exact or near duplicate in another split;
    empty without statistics or problems."""
    if stats is None:
        return []
    found = []
    if note := stats.label_conflict_note:
        found.append(f"Labels in conflict: {note}.")
    duplicated = int(leakage_rows({"leakage": stats.leakage})["images"].sum())
    if duplicated:
        found.append(
            f"Possible leakage: {duplicated} images have an exact or near duplicate in another "
            "split; test figures may be optimistic."
        )
    return found
