"""What every tab receives, and the wrapper that turns any failure into a clear message."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st
from mlflow.exceptions import MlflowException

from common import (
    InvalidInput,
    NotFound,
    PipelineError,
    ServiceUnavailable,
    Settings,
    get_settings,
)
from dashboard.markup import plain

log = logging.getLogger("dashboard")


def session_settings(uri: str) -> Settings:
    """The process settings with this session's tracking URI: the one source of both.

    Every tab, every MLflow read and every model download of a page view takes the URI from
    here, so a URI typed in the sidebar reaches all of them.
    """
    base = get_settings()
    if uri == base.mlflow_tracking_uri:
        return base
    return base.model_copy(update={"mlflow_tracking_uri": uri})


@dataclass
class Context:
    """The sidebar's choices; ``settings.mlflow_tracking_uri`` is the session's tracking URI."""

    settings: Settings
    experiment_id: str
    experiment_name: str
    run: dict  # dashboard.reads.run_to_dict summary of the selected run
    compare_ids: list[str] = field(default_factory=list)
    page_rows: list[dict] = field(default_factory=list)
    children: list[dict] | None = None  # the run's child runs when already known, else None

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def uri(self) -> str:
        """The session's tracking URI."""
        return self.settings.mlflow_tracking_uri

    @property
    def services_see_this_server(self) -> bool:
        """The evaluator and explainer read the server they were started with (the default)."""
        return self.uri == get_settings().mlflow_tracking_uri


def render_safely(name: str, render: Callable[..., None], *args) -> None:
    """Call ``render(*args)``; show any failure as one message instead of a traceback."""
    try:
        render(*args)
    except (InvalidInput, NotFound) as exc:  # messages quote names and paths: never markup
        st.warning(plain(exc))
    except ServiceUnavailable as exc:
        st.error(plain(exc))
    except PipelineError as exc:
        st.error(plain(exc))
    except MlflowException as exc:
        st.error(f"{name}: MLflow reported {exc.error_code}: {plain(exc.message)}")
    except Exception as exc:  # the page must never show a traceback
        log.exception("the %s tab failed", name)
        st.error(
            f"{name} could not be shown for this run ({type(exc).__name__}: {plain(exc)}). "
            "The details are in the dashboard's log; other tabs still work."
        )


def missing(what: str, how: str) -> None:
    """Say what this run lacks and how to get it."""
    st.info(f"This run has no {what} yet — {how}")
