"""The audit trail of model selections (``SelectionStore``): who chose or downloaded which run,
and why, each record sealed (``jobs.seal``); and the turn one choice of a model holds among
every chooser that shares the store."""

import contextlib
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from pymongo.errors import DuplicateKeyError

from common import ServiceUnavailable, utcnow
from jobs import seal
from jobs.store import STORE_ERRORS, _next_seq, _out, plain

# runs imports torch and MLflow: a job service that needs only its store does without them.
if TYPE_CHECKING:
    from runs import schemas


class SelectionStore:
    """The audit trail of model selections in the collection ``selections``; each record sealed
    under ``key`` (the deployment's ``Settings.sealing_key``) and linked to the one before it
    (``jobs.seal``; ``problems`` checks them, and those sealed before a rotation under the
    ``former`` tokens the operator declared: ``PIPELINE_PREVIOUS_TOKENS``, tokens or their
    fingerprints)."""

    def __init__(self, db, key: str | None = None, former: Iterable[str] = ()) -> None:
        self.col = db["selections"]
        self.key = key or None
        self.former = seal.former_keys(former)

    def _ensure_indexes(self) -> None:
        """The trail's reads, newest first, off an index: without them each read sorted the
        whole trail (60 ms at 20,000 records). Made by a write (a read must work on a store
        that takes no writes), and best effort: the record that follows matters more."""
        with contextlib.suppress(*STORE_ERRORS, ServiceUnavailable):
            self.col.create_index([("seq", -1)])
            self.col.create_index([("action", 1), ("seq", -1)])
            self.col.create_index([("action", 1), ("registered_model", 1), ("seq", -1)])
            self.col.create_index([(seal.SEAL, 1)])

    def record(self, record: "schemas.SelectionRecord") -> dict:
        """Store one choice or download; returns the stored document (``selection_id`` as id)."""
        self._ensure_indexes()
        doc = record.model_dump(mode="python")
        doc["_id"] = doc.pop("selection_id")
        doc["metrics"] = plain(doc["metrics"])
        last = self.col.find_one({}, sort=[("seq", -1)])  # the record this one links to
        doc[seal.PREVIOUS] = last.get(seal.SEAL) if last else None
        doc[seal.SEALED_WITH] = seal.fingerprint(self.key)
        doc["seq"] = _next_seq()  # sealed too: the trail's order, and which choice is the last
        doc[seal.SEAL] = seal.seal(_sealed_fields(doc), self.key)
        self.col.insert_one(doc)
        return _out(doc, "selection_id")

    def problems(self, records: list[dict]) -> dict[str, str]:
        """Which of ``records`` (as ``recent`` returns them) fail their seal's check, by
        ``selection_id``: why (``jobs.seal.problem``; ``seal.CHANGED`` for a record that cannot
        even be read as one). Each is checked as stored, its order (``seq``) included; records
        stored before seals pass; one sealed under a token neither ``key`` nor a declared former
        one fails (``seal.UNDECLARED_TOKEN``), whatever its place."""
        ids = [r["selection_id"] for r in records]
        docs = {str(doc["_id"]): doc for doc in self.col.find({"_id": {"$in": ids}})}
        links = {d.get(seal.PREVIOUS) for d in docs.values()} - {None}
        found = {d.get(seal.SEAL) for d in docs.values()}
        if missing := sorted(link for link in links - found if isinstance(link, str)):
            found |= {d.get(seal.SEAL) for d in self.col.find({seal.SEAL: {"$in": missing}})}
        order = seal.Order(
            sealed=self._first_seq({seal.SEAL: {"$exists": True}}),
            this_token=self._first_seq({seal.SEALED_WITH: seal.fingerprint(self.key)}),
        )
        problems = {}
        for selection_id, doc in docs.items():
            try:
                why = seal.problem(_sealed_fields(doc), self.key, found, order, self.former)
            except (TypeError, ValueError, KeyError, AttributeError):  # fields no record has
                why = seal.CHANGED
            if why is not None:
                problems[selection_id] = why
        return problems

    def _first_seq(self, query: dict) -> int | None:
        first = self.col.find_one(query, sort=[("seq", 1)])
        return first.get("seq") if first else None

    def recent(
        self, limit: int = 20, action: str | None = None, model: str | None = None
    ) -> list[dict]:
        """The latest selections (only ``action`` ones, of registered model ``model``, when
        given), newest first. Records of releases before the model registry have no action:
        each was a download (which wrote ``run_id.txt``, the choice then), listed as one."""
        query: dict = {}
        if action == "download":  # with the records that have none
            query["action"] = {"$in": [action, None]}
        elif action:
            query["action"] = action
        if model:
            query["registered_model"] = model
        docs = self.col.find(query, sort=[("seq", -1)], limit=limit)
        return [_out(doc, "selection_id") for doc in docs]

    @contextlib.contextmanager
    def choice_turn(self, model: str, wait_s: float = 120.0, hold_s: float = 60.0):
        """Hold the turn to choose a version of registered model ``model`` for the writes of
        one choice, among every chooser that shares this store (dashboards on other machines,
        the CLI anywhere): the host's lock file (``dashboard.versions``) leaves those out, and
        two of them at once each got "version N" while the other's moved the alias at once.

        The turn is the document ``choice:<model>`` in ``locks``, renewed every ``hold_s``/4
        while held (a choice's MLflow calls may take minutes on a slow server); a holder that
        died leaves it to be taken once ``hold_s`` has passed since its last renewal.

        Raises:
            ServiceUnavailable: Another choice held the turn for ``wait_s`` seconds, or the
                store cannot be reached.
        """
        locks, key, owner = self.col.database["locks"], f"choice:{model}", uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        try:
            while True:
                now = utcnow()
                held = {"owner": owner, "expires": now + timedelta(seconds=hold_s)}
                try:
                    locks.insert_one({"_id": key, **held})
                    break
                except DuplicateKeyError:
                    taken = locks.find_one_and_update(
                        {"_id": key, "expires": {"$lt": now}}, {"$set": held}
                    )
                    if taken is not None:  # its holder died: the turn is this choice's
                        break
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"another choice of {model} has held its turn for {wait_s:.0f} s; look "
                        "at the audit trail, then choose again"
                    )
                time.sleep(0.1)
        except STORE_ERRORS as exc:
            raise ServiceUnavailable(
                f"the selection store cannot be written ({type(exc).__name__}: {exc}); nothing "
                "was chosen: check MONGO_URI (or STORE_DIR) and choose again"
            ) from exc
        done = threading.Event()

        def renew() -> None:
            while not done.wait(hold_s / 4):
                with contextlib.suppress(*STORE_ERRORS):  # an outage: the next renewal retries
                    expires = utcnow() + timedelta(seconds=hold_s)
                    locks.update_one({"_id": key, "owner": owner}, {"$set": {"expires": expires}})

        renewer = threading.Thread(target=renew, name=f"choice-turn-{model}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            with contextlib.suppress(*STORE_ERRORS):  # else it is taken once hold_s has passed
                locks.delete_many({"_id": key, "owner": owner})


def _sealed_fields(doc: dict) -> dict:
    """A stored record as its seal covers it: its fields as ``recent`` returns them, and its
    place in the trail (``seq``)."""
    return {**_out(doc, "selection_id"), "seq": doc.get("seq")}
