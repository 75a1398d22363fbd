"""The predictor as the Choose model tab says it: what it serves (its ``/ready`` answer in one
line), a choice it has not picked up yet, and a version other than the alias's."""

import requests

from common import Settings
from dashboard import handoff, readable
from dashboard.ood import served_clause
from runs import validation_figures


def predictor_line(url: str, token: str | None, timeout: float = 2.0) -> tuple[str, dict | None]:
    """One line: which version the predictor at ``url`` serves, or why it serves none; and its
    ``/ready`` body (None when it does not answer with JSON), for the rest of the view
    (``handoff.predictor_serves`` reads the version from it)."""
    try:
        r = handoff.predictor_ready(url, token, timeout)
    except requests.RequestException as exc:
        return f"the predictor at {url} does not answer ({type(exc).__name__})", None
    try:
        body = r.json()
    except ValueError:
        return f"the predictor at {url} answered HTTP {r.status_code} without JSON", None
    return ready_line(url, r.status_code, body), body


def ready_line(url: str, status_code: int, body: dict) -> str:
    """The predictor's ``/ready`` answer in one line: the version it serves, how it decides
    (a two-class run's threshold), and whether the alias still names that version."""
    if status_code != 200:
        return f"the predictor at {url} serves nothing yet: {body.get('detail', status_code)}"
    line = (
        f"the predictor at {url} serves {body.get('model_name')} version "
        f"{body.get('version')} (run {body.get('run_id')})"
    )
    point = body.get("operating_point")
    if point:
        line += (
            f", deciding {point.get('positive_class')!r} at probability ≥ "
            f"{readable.figure(float(point.get('threshold', 0)), 3)} ({validation_figures(point)})"
        )
    if body.get("stale"):
        line += f"; STALE: {body.get('problem')}"
    elif body.get("problem"):
        line += f"; {body.get('problem')}"
    if body.get("decoding_note"):
        line += f"; {body['decoding_note']}"
    if body.get("modalities"):  # what it refuses (predictors before 2026-12-06 say nothing)
        line += (  # PNG and JPEG files carry no modality: taken as they are
            f"; of DICOM files it takes Modality {', '.join(body['modalities'])} only (PNG and "
            "JPEG files as they are)"
        )
    elif body.get("modality_note"):
        line += f"; {body['modality_note']}"
    check = served_clause(body)  # whether it flags images unlike its training images
    if check:
        line += f"; {check}"
    return line


NOTHING_CHOSEN = "no model is chosen"
"""How a predictor's 503 begins when its last look found no version with the alias
(``predictor.errors.served_or_503``): after a choice, until its next look, that is stale."""


def pickup_line(url: str, body: dict | None, named: str | None, settings: Settings) -> str | None:
    """The predictor's line while the alias names version ``named`` and the predictor's answer
    (``body``) still says what its last look found, no version with the alias: it has not picked
    up version ``named`` yet (not "no model is chosen", beside the choice). None otherwise."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if named is None or not isinstance(detail, str) or not detail.startswith(NOTHING_CHOSEN):
        return None
    s = settings
    return (
        f"the predictor at {url} has not picked up version {named} yet: when it last looked, no "
        f"version of {s.model_name} had the alias {s.model_alias!r} (one that still says so "
        "after PREDICTOR_POLL_S reads another MLflow server or model name than this dashboard: "
        "compare its MLFLOW_TRACKING_URI, MODEL_NAME and MODEL_ALIAS)"
    )


def switch_warning(
    named: str | None, served: str | None, poll_s: float, stale: bool = False
) -> str | None:
    """What to say when the predictor serves another version than the alias names, or none
    (right after the first choice, before its next poll); ``stale``: it has said why it does
    not switch (a version it refused), so it will not by waiting."""
    if named is None or served == named:
        return None
    if served is None:
        return (
            f"The predictor serves no version yet: it loads version {named}, which the alias "
            f"names, within PREDICTOR_POLL_S ({poll_s:g} s) of a choice (reload this page to "
            "see it); if it does not, its line above says why."
        )
    if stale:
        return (
            f"The predictor serves version {served} and does not switch to version {named} "
            "that the alias names, for the reason above: until that is resolved, clients get "
            f"version {served}."
        )
    return (
        f"The predictor still serves version {served}, not version {named} that the alias "
        f"names: it switches within PREDICTOR_POLL_S ({poll_s:g} s) of a choice; if it does "
        "not, its line above says why."
    )
