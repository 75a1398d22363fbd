"""What a client of a served model depends on, and how another model would change it: one
comparison for the dashboard's choice (``dashboard.handoff``) and the predictor's switch."""

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mlpipeline_model import MAX_DISTORTION, MAX_UPSCALE, distortion

CONFIRMED_TAG = "interface_change"
"""Tag of a registered version whose chooser confirmed that clients receive something else
(``dashboard.choose --yes-interface-change``); its value says what changed."""
CONFIRMED_FROM_TAG = "interface_confirmed_from"
"""The interfaces served when that was confirmed (JSON list of ``Interface`` fields), or
``"any"`` when the chooser could see none: a predictor switches from one of them only, so a
later move of the alias back to the version (a rollback in MLflow's UI) is not confirmed."""


@dataclass(frozen=True)
class Interface:
    """Classes (in order), input channels, input size and the class a threshold decides
    (``decision``; None: no threshold)."""

    classes: tuple[str, ...]
    channels: int | None
    image_size: tuple[int, ...]
    decision: str | None

    @classmethod
    def of(cls, classes: Sequence[str], channels: int | None, image_size: Sequence[int] | None,
           decision: str | None) -> "Interface":  # fmt: skip
        size = tuple(int(side) for side in image_size or (0, 0))
        return cls(tuple(str(c) for c in classes), channels, size, decision)


def _smallest(size: tuple[int, ...]) -> str:
    return "×".join(str(-(-side // MAX_UPSCALE)) for side in size)


def _rule(positive: str | None) -> str:
    return f"threshold for {positive!r}" if positive else "no threshold (no `decision`)"


def changes(before: Interface, after: Interface) -> list[str]:
    """What clients receive otherwise from ``after`` than from ``before``, one phrase each
    (empty: nothing). A smaller input size of the same shape changes nothing a client sees; a
    larger one refuses images that were served, and so does another shape (images far out of
    it are refused, ``mlpipeline_model.misfit``)."""
    found = []
    if before.classes != after.classes:
        found.append(f"classes {', '.join(before.classes)} → {', '.join(after.classes)}")
    if before.channels != after.channels:
        found.append(f"input channels {before.channels} → {after.channels}")
    if any(a > b for a, b in zip(after.image_size, before.image_size, strict=False)):
        found.append(
            f"input {'×'.join(map(str, before.image_size))} → "
            f"{'×'.join(map(str, after.image_size))} px: images under "
            f"{_smallest(after.image_size)} px are refused (under "
            f"{_smallest(before.image_size)} before)"
        )
    sizes = before.image_size, after.image_size
    if len(sizes[0]) == len(sizes[1]) == 2 and abs(distortion(*sizes) - 1) > 1e-6:
        found.append(
            f"input shape {'×'.join(map(str, sizes[0]))} → {'×'.join(map(str, sizes[1]))} px: "
            f"images more than {MAX_DISTORTION}× out of the new shape are refused"
        )
    if before.decision != after.decision:
        found.append(f"decision {_rule(before.decision)} → {_rule(after.decision)}")
    return found


def confirmation(served: Sequence[Interface] | None) -> str:
    """The ``CONFIRMED_FROM_TAG`` value for a change confirmed while ``served`` were served
    (None or empty: unknown, so ``"any"``)."""
    if not served:
        return "any"
    return json.dumps([dataclasses.asdict(i) for i in dict.fromkeys(served)])


def confirmed_for(tags: Mapping[str, str], served: Interface) -> bool:
    """Whether a version with ``tags`` was chosen as a change from ``served``."""
    value = tags.get(CONFIRMED_FROM_TAG)
    if value == "any":
        return True
    try:
        return served in [Interface.of(**fields) for fields in json.loads(value or "[]")]
    except (TypeError, ValueError):  # edited by hand: not a confirmation
        return False


class ServedRecord(NamedTuple):
    """What a predictor of an alias served last (``served_tag``)."""

    version: str
    run_id: str | None
    interface: Interface


def served_tag(alias: str) -> str:
    """Tag of the registered model that records what the predictors of ``alias`` serve
    (``ServedRecord`` as JSON). A predictor that starts compares the version the alias names
    with it, as a running one compares with the version it holds, so a restart does not switch
    clients to other classes that nobody confirmed; a choice compares with it too."""
    return f"served.{alias}"


def served_record(version: str, run_id: str | None, served: Interface) -> str:
    """The ``served_tag`` value for ``version`` (of ``run_id``) of interface ``served``."""
    fields = dataclasses.asdict(served)
    return json.dumps({"version": str(version), "run_id": run_id, "interface": fields})


def read_served(tags: Mapping[str, str], alias: str) -> ServedRecord | None:
    """What was last served under ``alias`` (None: nothing recorded, or the record was edited
    into something else)."""
    try:
        record = json.loads(tags[served_tag(alias)])
        run_id = record.get("run_id")
        interface = Interface.of(**record["interface"])
        return ServedRecord(str(record["version"]), None if run_id is None else str(run_id),
                            interface)  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
