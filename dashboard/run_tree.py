"""Runs and their child runs in the order a table lists them (the leaderboard, the sidebar)."""


def nest(rows: list[dict]) -> list[tuple[dict, int]]:
    """Rows with their depth, each child right under its parent when both are on the page."""
    ids = {r["run_id"] for r in rows}
    children: dict[str, list[dict]] = {}
    top = []
    for r in rows:
        parent = r["parent_run_id"]
        if parent and parent in ids and parent != r["run_id"]:
            children.setdefault(parent, []).append(r)
        else:
            top.append(r)
    out: list[tuple[dict, int]] = []

    def add(row: dict, depth: int) -> None:
        out.append((row, depth))
        for child in children.get(row["run_id"], []):
            if depth < 10:
                add(child, depth + 1)

    for row in top:
        add(row, 1 if row["parent_run_id"] else 0)
    return out
