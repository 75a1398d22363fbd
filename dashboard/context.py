"""What every tab receives, and the wrapper that turns any failure into a clear message."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st
from mlflow.exceptions import MlflowException

from common import InvalidInput, NotFound, PipelineError, ServiceUnavailable, Settings

log = logging.getLogger("dashboard")


@dataclass
class Context:
    """The sidebar's choices."""

    settings: Settings
    uri: str
    experiment_id: str
    experiment_name: str
    run: dict  # dashboard.reads.run_to_dict summary of the selected run
    compare_ids: list[str] = field(default_factory=list)
    page_rows: list[dict] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run["run_id"]


def render_safely(name: str, render: Callable[..., None], *args) -> None:
    """Call ``render(*args)``; show any failure as one message instead of a traceback."""
    try:
        render(*args)
    except (InvalidInput, NotFound) as exc:
        st.warning(str(exc))
    except ServiceUnavailable as exc:
        st.error(str(exc))
    except PipelineError as exc:
        st.error(str(exc))
    except MlflowException as exc:
        st.error(f"{name}: MLflow reported {exc.error_code}: {exc.message}")
    except Exception as exc:  # the page must never show a traceback
        log.exception("the %s tab failed", name)
        st.error(
            f"{name} could not be shown for this run ({type(exc).__name__}: {exc}). "
            "The details are in the dashboard's log; other tabs still work."
        )


def missing(what: str, how: str) -> None:
    """Say what this run lacks and how to get it."""
    st.info(f"This run has no {what} yet — {how}")
