"""The page's cached MLflow reads."""

import streamlit as st

from dashboard import data


def test_every_cached_read_is_cleared_by_clear_reads():
    cached = [f for f in vars(data).values() if callable(f) and hasattr(f, "clear")]
    assert set(cached) == set(data.CACHED)  # a new cached read must be listed to be refreshed


def test_clearing_the_reads_keeps_other_caches():
    """Refresh dropped the Compare tab's bootstraps (an hour of CPU) for every session."""
    calls = []

    @st.cache_data
    def bootstrap(x: int) -> int:
        calls.append(x)
        return x

    bootstrap(1)
    data.clear_reads()
    bootstrap(1)
    assert calls == [1]
