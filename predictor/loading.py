"""Loading one registered version to serve: its model, the check of its weights
(``predictor.weights``), its operating point, and whether its run still stands
(``predictor.lifecycle``). ``predictor.core`` decides which version to load and when."""

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable, Settings
from predictor.lifecycle import run_problem
from predictor.served import Served
from predictor.weights import check_weights
from runs import (
    FILES_KEY,
    checked_point,
    foreign_signer,
    load_classifier,
    read_operating_point,
    unsigned_problem,
    unverified_problem,
)

log = logging.getLogger("predictor")


def _default_loader(tracking_uri: str, model_uri: str, files: str | None):
    # models:/ resolves against MLflow's global tracking URI, not the holder's client: without
    # this, a predictor configured by Settings alone (no MLFLOW_TRACKING_URI in the environment)
    # resolved the alias on its server but loaded from MLflow's default (./mlflow.db).
    mlflow.set_tracking_uri(tracking_uri)
    return load_classifier(model_uri, files)


def load_version(
    settings: Settings,
    loader: Callable[[str, str | None], object] | None,
    version: str,
    run_id: str | None,
    tags: dict[str, str] | None,
) -> Served:
    """``version`` with its run's operating point (read once, here, not per request) and
    whether its run stands (``checked``), loaded by ``loader(model_uri, files)`` (default:
    ``runs.load_classifier`` from the settings' tracking server, which refuses files whose
    digest is not ``files``, the version's signed tag ``files_digest``, before it unpickles
    them); ``InvalidInput`` when it was not chosen with the key (``refuse_unchosen``:
    ``tags`` are the version's), its files are not those chosen (``runs.FilesRefused``) or its
    weights are not those recorded (``predictor.weights``)."""
    s = settings
    refuse_unchosen(s, version, run_id, tags)  # before its pickle is unpickled
    started = time.monotonic()
    uri = f"models:/{s.model_name}/{version}"
    run = version_run(s, run_id)  # once: its params (the digest), then whether it stands
    files = (tags or {}).get(FILES_KEY)  # recorded: checked, as the weights (even unsigned)
    classifier = (loader or partial(_default_loader, s.mlflow_tracking_uri))(uri, files)
    check_weights(classifier, version, run_id, tags, run.data.params if run else None)
    names = list(classifier.class_names)
    carried = getattr(classifier, "operating_point", None)  # None in models logged before it
    # The point the model carries is the one its pyfunc decides by (`mlflow models serve`);
    # the run's file serves models logged before they carried one.
    point = (
        checked_point(carried, names, f"the operating point of version {version}")
        if carried
        else read_operating_point(MlflowClient(s.mlflow_tracking_uri), run_id, names)
        if run_id
        else None
    )
    # not "serving": the interface check may still refuse it (``_serve`` says so)
    log.info("loaded %s version %s in %.1fs", s.model_name, version, time.monotonic() - started)
    if note := getattr(classifier, "decoding_note", None):
        log.warning("version %s: %s", version, note)
    return checked(
        s,
        Served(s.model_name, s.model_alias, version, run_id, classifier, datetime.now(UTC), point),
        run,
    )


def refuse_unchosen(
    settings: Settings, version: str, run_id: str | None, tags: dict[str, str] | None
) -> None:
    """``InvalidInput`` when ``version`` was not chosen with the deployment's key and the
    settings do not ask to serve such versions (``PREDICTOR_SERVE_UNSIGNED``). With
    ``PIPELINE_CHOICE_PUBLIC_KEY`` its tags must carry a valid ``choice_signature_ed25519`` of
    its own run by the private key of that key or of a former one
    (``runs.unverified_problem``), and no signing secret is needed; without it, a valid
    ``choice_signature`` under ``Settings.signing_keys`` (``runs.unsigned_problem``). Loading a
    model unpickles it, which runs code: whoever can write to MLflow without the key must not be
    able to have the predictor load a model, nor serve one to clients that nobody chose. A
    ``choice_signature`` made with a key this service lacks (``runs.foreign_signer``) is not
    helped by choosing again (the dashboard signs with that key again): the advice is then to
    give the predictor that key."""
    if settings.predictor_serve_unsigned:
        return
    public = settings.choice_public_keys()  # former keys too: a rotation must not stop serving
    signer = None  # of a choice_signature made with a key this service lacks
    if public:
        why = unverified_problem(tags or {}, run_id, public)
        how = (
            "with PIPELINE_CHOICE_PRIVATE_KEY set to the private key of PIPELINE_CHOICE_PUBLIC_KEY "
            "(python -m runs.keys makes a pair; list a former public key in "
            "PIPELINE_CHOICE_PREVIOUS_PUBLIC_KEYS), which signs the choice"
        )
    elif keys := settings.signing_keys():
        why = unsigned_problem(tags or {}, run_id, keys)
        how = "which signs the choice"
        signer = foreign_signer(tags or {}, keys)
    else:  # no key at all: nothing can be checked
        return
    if not why:
        return
    advice = (
        f"Choose its run with the dashboard or python -m dashboard.choose "
        f"{run_id or 'RUN_ID'} --reason TEXT, {how} (it asks for the confirmations the run "
        "needs, such as --yes-interface-change)"
    )
    if signer:
        advice = (
            f"Give this predictor the key of fingerprint {signer} that signed it: set its "
            "PIPELINE_SIGNING_KEY to that key (the dashboard's PIPELINE_SIGNING_KEY, else its "
            "PIPELINE_API_TOKEN), or list that key whole in PIPELINE_PREVIOUS_TOKENS, and "
            "restart it; if the dashboard no longer holds that key (rotated since), "
            + advice[0].lower()
            + advice[1:]
        )
    raise InvalidInput(
        f"version {version} was not loaded: {why}. {advice}; or, to follow versions aliased "
        "in MLflow's own UI or client, set PREDICTOR_SERVE_UNSIGNED=true (an interface "
        "change still needs the confirmation)"
    )


def warn_of_signing_secrets(settings: Settings) -> None:
    """Log a warning when the predictor checks choices with ``PIPELINE_CHOICE_PUBLIC_KEY`` yet
    holds secrets that sign them, which it does not need and whoever takes it over would get."""
    held = [
        name
        for name, value in (
            ("PIPELINE_SIGNING_KEY", settings.pipeline_signing_key),
            ("PIPELINE_PREVIOUS_TOKENS", settings.pipeline_previous_tokens),
        )
        if value is not None
    ]
    if settings.choice_public_keys() and held:
        log.warning(
            "%s set though PIPELINE_CHOICE_PUBLIC_KEY checks the choices: the predictor does not "
            "need it, and whoever takes it over could sign choices with it; take it from the "
            "predictor (docker-compose.choice-keys.yml, k8s/choice-keys/predictor.yaml: "
            'docs/deployment.md, "The choices\' key pair")',
            " and ".join(held),
        )


def version_run(settings: Settings, run_id: str | None):
    """The run of a version being loaded; None without one, or when it is gone (``checked``
    says so).

    Raises:
        ServiceUnavailable: MLflow failed to answer.
    """
    if not run_id:
        return None
    try:
        return MlflowClient(settings.mlflow_tracking_uri).get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return None
        raise ServiceUnavailable(f"MLflow failed to return run {run_id}: {exc}") from exc


def checked(
    settings: Settings, served: Served, run=None, warn: Callable[..., None] = log.warning
) -> Served:
    """``served`` with ``run_problem`` as its run stands now (``predictor.lifecycle``: one
    ``get_run``, none when given the ``run`` just fetched); ``served`` itself when that is
    unchanged, or MLflow fails to say (the next poll asks again; ``warn``: how that is logged,
    the holder's ``Repeats`` at each poll)."""
    try:
        client = MlflowClient(settings.mlflow_tracking_uri)
        problem = run_problem(client, served.version, served.run_id, run)
    except (MlflowException, OSError) as exc:
        warn("could not check the run of version %s: %s", served.version, exc)
        return served
    if problem == served.run_problem:
        return served
    if problem:
        log.warning("serving %s version %s: %s", served.model_name, served.version, problem)
    else:
        log.info("the run %s of version %s stands again", served.run_id, served.version)
    return replace(served, run_problem=problem)
