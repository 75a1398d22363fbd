"""What the predictor does, without HTTP: follow the alias and hold the served model.

``ModelHolder`` resolves ``models:/<MODEL_NAME>@<MODEL_ALIAS>`` to a version, loads that version
(never the alias itself, which may move meanwhile) and its run's operating point off the request
path, and swaps it in with one assignment: a request takes ``holder.current`` once and finishes
on that model, so a swap never fails a request in flight and every answer names the version that
computed it.

When the alias stops naming the served version (removed, or moved to a version that does not
load), the last good version keeps serving (availability), but marked ``stale`` with the
``problem`` that says why: ``/ready`` and every ``/predict`` answer carry both. So it does when
the alias moves to a version whose classes, channels, input size or decision rule differ, or
that refuses DICOM inputs served or lacks the served out-of-distribution check
(``runs.compare_interfaces``) and whose chooser did not confirm that as a change from the served
interface (``runs.confirmed_for``: tags set by ``dashboard.choose --yes-interface-change``):
clients must not receive other classes unasked. A restart keeps that guard: what is served is
recorded on the registered model (``runs.served_tag``), and a predictor that starts compares the
version the alias names with the recorded one; refused, it serves the recorded version, stale.
A predictor that starts serves the recorded version, stale, too when the alias names no version
or one that does not load: a restart or a new replica keeps serving what the running ones serve.
A version whose weights are not those recorded when it was chosen (``predictor.weights``) is
refused as one that does not load.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, PipelineError, ServiceUnavailable, Settings, redact_uri
from predictor.loading import checked, load_version
from predictor.served import Served
from predictor.tracing import Repeats
from predictor.weights import RETRY_S
from runs import (
    DIGEST_KEY,
    ED25519_TAG,
    FILES_KEY,
    SIGNATURE_TAG,
    Interface,
    check_tracking,
    compare_interfaces,
    confirmed_for,
    last_served,
    served_record,
    served_tag,
)

log = logging.getLogger("predictor")
LOOKING_UP = "still looking up"  # the problem until the first load ends, served or failed
__all__ = ["ModelHolder", "Served"]


def _choice_of(tags: dict[str, str] | None) -> str:
    """What makes a version's load worth trying again at once when it changes: the choice that
    tags it (its time and both signatures change with every choice; a poll between the tags'
    writes sees some of them new) and the digests it records."""
    keys = (SIGNATURE_TAG, ED25519_TAG, "selected_at", DIGEST_KEY, FILES_KEY)
    return "\0".join((tags or {}).get(key) or "" for key in keys)


class ModelHolder:
    """The version that the alias names, loaded; refreshed by ``refresh`` (see ``poll``)."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[str, str | None], object] | None = None,
        record: bool = True,
    ) -> None:
        """``loader(model_uri, files)`` loads a version whose files must have the digest
        ``files`` when it is not None (default: ``runs.load_classifier`` from the settings'
        tracking server); ``record``: record what is served on the registered model
        (``runs.served_tag``; the service does, a one-off command does not)."""
        self.settings = settings
        self.loader = loader
        self.record = record
        self._recorded: str | None = None  # the version recorded as served by this process
        self.current: Served | None = None
        self.problem = f"{LOOKING_UP} {self.alias_uri}"
        # whether the last look found a version under the alias (None: MLflow did not answer)
        self.chosen: bool | None = None
        # (version, served version, why): a refused switch, not loaded again at every poll
        self._refused: tuple[str, str, str] | None = None
        # (version, its choice's tags, when, why): failed to load for a lasting reason, its
        # weights or files refused included: not loaded again for ``weights.RETRY_S`` (chosen
        # again, or its digests retagged: at once)
        self._unloadable: tuple[str, str, float, str] | None = None
        # (version, when, error): the version served before failed to load (``_fall_back``)
        self._short: tuple[str, float, str] | None = None
        self._warnings = Repeats(log)  # the problem of each poll, not logged at each
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.settings.model_name}@{self.settings.model_alias}"

    def _target(self) -> tuple[str, str | None, dict[str, str]]:
        """``(version, run_id, tags)`` of the version the alias names now."""
        s = self.settings
        check_tracking(s.mlflow_tracking_uri, timeout=5)
        try:
            mv = MlflowClient(s.mlflow_tracking_uri).get_model_version_by_alias(
                s.model_name, s.model_alias
            )
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise InvalidInput(self._no_alias(self.current is not None)) from exc
            raise ServiceUnavailable(f"MLflow failed to resolve {self.alias_uri}: {exc}") from exc
        return str(mv.version), mv.run_id, dict(mv.tags or {})

    def _no_alias(self, served_before: bool) -> str:
        """Why nothing the alias names can be served when no version has it."""
        s, when = self.settings, "any more" if served_before else "yet"
        return (
            f"no version of {s.model_name} has the alias {s.model_alias!r} {when}; choose a run: "
            "python -m dashboard.choose RUN_ID --reason TEXT (or the dashboard)"
        )

    def _before(self) -> tuple[str, Interface] | None:
        """The version served before and its interface: the one held, or, in a predictor that
        holds none yet, the one recorded as served under the alias (``runs.served_tag``)."""
        if (current := self.current) is not None:
            return current.version, current.interface
        s = self.settings
        record = last_served(s.mlflow_tracking_uri, s.model_name, s.model_alias)
        return None if record is None else (record.version, record.interface)

    def _record(self, served: Served) -> None:
        """Record ``served`` as what the alias's predictors serve (``_before`` of a restart);
        a failure is logged, not raised (the model is served either way), and the next poll
        tries again. It needs permission to edit the registered model's tags."""
        s = self.settings
        if not self.record:
            return
        value = served_record(served.version, served.run_id, served.interface)
        key = served_tag(s.model_alias)
        try:
            client = MlflowClient(s.mlflow_tracking_uri)
            if client.get_registered_model(s.model_name).tags.get(key) != value:
                client.set_registered_model_tag(s.model_name, key, value)
        except (MlflowException, OSError) as exc:
            self._warnings.warning("could not record version %s as served (%s): a restart would "
                                   "compare the alias with an older record", served.version,
                                   exc)  # fmt: skip
            return
        self._recorded = served.version

    def _fall_back(self, before: str, why: str) -> str:
        """In a predictor that holds nothing, serve ``before`` (the version recorded as served)
        when the alias's version is not served for ``why`` (refused, does not load, or no version
        has the alias), as a running predictor keeps it; ``why``, with the reason when it cannot
        be served (then nothing is)."""
        s, last = self.settings, self._short
        # Tried again once per PREDICTOR_POLL_S, not at every 2 s look of a predictor holding
        # nothing: each try downloads the model.
        if last and last[0] == before and time.monotonic() - last[1] < s.predictor_poll_s:
            error = last[2]
        else:
            try:
                mv = MlflowClient(s.mlflow_tracking_uri).get_model_version(s.model_name, before)
                self._serve(load_version(s, self.loader, before, mv.run_id, mv.tags))
                self._short = None
                return why
            except Exception as exc:  # deleted, or no longer loads: nothing is served
                error = str(exc)
                self._short = (before, time.monotonic(), error)
        return f"{why}; version {before}, served before, cannot be served either ({error})"

    def _fall_back_if_new(self, why: str, before: str | None, failed: str | None = None) -> str:
        """``_fall_back`` to ``before`` in a predictor that holds nothing yet, unless nothing was
        recorded as served or it is ``failed`` (the version that just failed to load); else
        ``why`` as it is."""
        if self.current is not None or before is None or before == failed:
            return why
        return self._fall_back(before, why)

    def refresh(self) -> bool:
        """Load the version the alias names if it is not the one served; True when it swapped.

        Failures keep the current model serving; they are kept in ``problem`` and, with a model
        served, marked on it (``Served.stale``, ``Served.problem``).
        """
        with self._refresh_lock:
            self._warnings.next_look()
            try:
                version, run_id, tags = self._target()
                self.chosen = True
                current = self.current
                if current is not None and current.version == version:
                    # Its run is checked at each poll that finds the alias on it: one small
                    # request, as the alias lookup, so a deleted or restored run shows within
                    # PREDICTOR_POLL_S, as an alias move does.
                    if (
                        now := checked(self.settings, current, warn=self._warnings.warning)
                    ) is not current:
                        self.current = current = now
                    if current.problem is not None:
                        self.current = replace(current, stale=False, problem=None)
                        self._warnings.clear()
                        log.info("%s names the served version %s", self.alias_uri, version)
                    if self._recorded != version:  # the record failed before: again
                        self._record(current)
                    return False
                before = self._before()
            except InvalidInput as exc:  # the alias names no version (any more)
                self.chosen = False
                self._failed(self._without_alias(str(exc)), known=True)
                return False
            except PipelineError as exc:  # MLflow down: nothing to fall back to without it
                self.chosen = None
                self._failed(str(exc), known=False)
                return False
            named = f"{self.alias_uri} names version {version}"
            refused = self._refused
            if (
                refused is not None
                and before is not None
                and refused[:2] == (version, before[0])
                and not confirmed_for(tags, before[1])
            ):
                # the version served before failed to load in a predictor started since: again
                self._failed(self._fall_back_if_new(refused[2], before[0]), known=True)
                return False
            last = None if before is None else before[0]
            bad, tag = self._unloadable, _choice_of(tags)
            if bad and bad[:2] == (version, tag) and time.monotonic() - bad[2] < RETRY_S:
                self._failed(self._fall_back_if_new(bad[3], last, version), known=True)
                return False
            try:
                served = load_version(self.settings, self.loader, version, run_id, tags)
            except Exception as exc:  # a broken model must not stop the poller
                if isinstance(exc, PipelineError):
                    why = f"{named}, which cannot be served: {exc}"
                else:  # a bug: its traceback, once
                    self._warnings.log(logging.ERROR, "loading %s version %s failed",
                                       self.alias_uri, version, exc_info=True)  # fmt: skip
                    why = f"{named}, which failed to load ({type(exc).__name__}: {exc})"
                # a lasting failure (weights refused, a model that does not load) is not fetched
                # again at every look (every 2 s while nothing is served); an outage is
                if not isinstance(exc, ServiceUnavailable | OSError):
                    self._unloadable = (version, tag, time.monotonic(), why)
                # started since: serve what was served, as if it had run on (not the version
                # that just failed, when it is the one recorded)
                self._failed(self._fall_back_if_new(why, last, version), known=True)
                return False
            # (the recorded version itself is no change, whatever its interface reads now)
            confirmed = before is None or before[0] == version or confirmed_for(tags, before[1])
            changed = [] if confirmed else compare_interfaces(before[1], served.interface)
            if changed:
                why = (
                    f"{named}, which changes what clients of version {before[0]} receive "
                    f"({'; '.join(changed)}) and was not chosen as such: choose its run with "
                    f"python -m dashboard.choose {run_id} --reason TEXT --yes-interface-change "
                    "once clients are ready (the dashboard confirms it when PREDICTOR_URL reaches "
                    "this predictor), or point the alias back"
                )
                self._refused = (version, before[0], why)
                # started since: serve what was served, as if it had run on
                self._failed(self._fall_back_if_new(why, before[0]), known=True)
                return False
            self._serve(served)
            self.problem = ""
            self._warnings.clear()
            self._record(served)
            return True

    def _serve(self, served: Served) -> None:
        """Answer with ``served`` from now on, and log it: the only "serving" line of a switch."""
        self.current = served
        point = served.operating_point
        log.info(
            "serving %s version %s (run %s, %s)", served.model_name, served.version, served.run_id,
            f"threshold {point.threshold:.4g} for {point.positive_class!r}" if point else "argmax",
        )  # fmt: skip

    def _without_alias(self, why: str) -> str:
        """``why`` no version has the alias, after a predictor that holds nothing yet served the
        version recorded as served (``_fall_back``) if there is one; MLflow failing to tell
        that record leaves ``why`` as it is (the next look asks again)."""
        if self.current is not None:
            return why
        try:
            before = self._before()
        except PipelineError as exc:
            self._warnings.warning("could not read the version served before: %s", exc)
            return why
        if before is None:  # nothing was ever served under the alias: nothing to fall back to
            return why
        return self._fall_back(before[0], self._no_alias(served_before=True))

    def _failed(self, why: str, known: bool) -> None:
        """Record ``why`` the alias's version is not served; ``known``: the alias no longer
        names the served version (else the check itself failed, and the last answer stands)."""
        why = redact_uri(why)  # shown by /ready and every answer: MLflow's errors name its URL
        self.problem = why
        current = self.current
        if current is None:
            self._warnings.warning("serving %s: %s", self.alias_uri, why)
            return
        if known:
            why = f"the alias no longer names the served version {current.version}: {why}"
            self.current = replace(current, stale=True, problem=why)
        elif not current.stale:
            why = f"could not check that the alias still names version {current.version}: {why}"
            self.current = replace(current, problem=why)
        name = current.model_name
        self._warnings.warning("serving %s version %s: %s", name, current.version, why)

    def poll(self) -> None:
        """Refresh now, then every ``PREDICTOR_POLL_S`` seconds until ``stop``.

        Until a model is loaded it looks every 2 s at most, so that a first choice is served soon.
        """
        while not self._stop.is_set():
            self.refresh()
            interval = self.settings.predictor_poll_s
            self._stop.wait(interval if self.current is not None else min(interval, 2.0))

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.poll, name="alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def serving(self) -> Served:
        """The model to answer with; ``ServiceUnavailable`` naming why when there is none."""
        served = self.current
        if served is None:
            raise ServiceUnavailable(f"no model is loaded: {self.problem}")
        return served
