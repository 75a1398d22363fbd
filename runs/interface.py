"""What a client of a served model depends on, and how another model would change it: one
comparison for the dashboard's choice (``dashboard.handoff``) and the predictor's switch.

Beside the fields an earlier version recorded (``Interface.core``), the records hold one dict of
what was added since (``Interface.extras``: the DICOM inputs, and whether the model has the
out-of-distribution check), under names that still say "dicom" (the served record's ``"dicom"``,
``CONFIRMED_DICOM_TAG``): an earlier version's predictor reads the DICOM inputs there and ignores
the rest, and a record without a field reads as not known."""

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from mlpipeline_model import MAX_DISTORTION, MAX_UPSCALE, distortion

CONFIRMED_TAG = "interface_change"
"""Tag of a registered version whose chooser confirmed that clients receive something else
(``dashboard.choose --yes-interface-change``); its value says what changed."""
CONFIRMED_FROM_TAG = "interface_confirmed_from"
"""The interfaces served when that was confirmed (JSON list of ``Interface`` fields), or
``"any"`` when the chooser could see none: a predictor switches from one of them only, so a
later move of the alias back to the version (a rollback in MLflow's UI) is not confirmed."""
CONFIRMED_DICOM_TAG = "interface_confirmed_dicom"
"""What each of those interfaces took of DICOM inputs: JSON ``{"for": the first 16 hex digits of
the sha256 of the ``CONFIRMED_FROM_TAG`` value it goes with and the choice's ``selected_at``
tag, "inputs": [one ``Interface.extras()``
per interface, in the same order: {"modalities": [codes] ([] every one) | null, "multi_frame":
bool | null, "ood_check": bool | null (absent: written before it was recorded)}]}``. Kept
beside ``CONFIRMED_FROM_TAG``, not in it, so that a predictor of an earlier version still reads
that tag; without it, or beside another value of it (rewritten by an earlier version's
dashboard), a confirmation holds whatever the DICOM inputs and the check were."""

Codes = tuple[str, ...] | None
"""DICOM Modality codes a model takes (``()``: every modality; None: not known)."""


@dataclass(frozen=True)
class Interface:
    """Classes (in order), input channels, input size, the class a threshold decides
    (``decision``; None: no threshold) and the DICOM inputs the model takes: ``modalities``
    (its Modality codes, sorted; ``()``: every modality, as a model that records none) and
    ``multi_frame`` (whether it takes multi-frame files, by their first frame); and ``ood_check``:
    whether the model has the out-of-distribution check (``mlpipeline_model.ood``: its answers
    give each image ``ood_score`` and ``out_of_distribution``, null without it). Each None when
    not known (a record written before they were).

    Equality leaves these extras out: the records of an earlier version (``served_record``,
    ``confirmation``) hold the other fields alone, and these beside them."""

    classes: tuple[str, ...]
    channels: int | None
    image_size: tuple[int, ...]
    decision: str | None
    modalities: Codes = field(default=None, compare=False)
    multi_frame: bool | None = field(default=None, compare=False)
    ood_check: bool | None = field(default=None, compare=False)

    @classmethod
    def of(cls, classes: Sequence[str], channels: int | None, image_size: Sequence[int] | None,
           decision: str | None, modalities: Sequence[str] | None = None,
           multi_frame: bool | None = None,
           ood_check: bool | None = None) -> "Interface":  # fmt: skip
        """``modalities``: a model's codes (empty: every modality); ``ood_check``: whether it has
        the out-of-distribution check; each None when not known."""
        size = tuple(int(side) for side in image_size or (0, 0))
        codes = None if modalities is None else tuple(sorted({str(m) for m in modalities}))
        frames = None if multi_frame is None else bool(multi_frame)
        ood = None if ood_check is None else bool(ood_check)
        return cls(tuple(str(c) for c in classes), channels, size, decision, codes, frames, ood)

    def core(self) -> dict:
        """The fields as an earlier version wrote them (without the extras)."""
        return {"classes": list(self.classes), "channels": self.channels,
                "image_size": list(self.image_size), "decision": self.decision}  # fmt: skip

    def extras(self) -> dict:
        """The DICOM inputs it takes and whether it has the out-of-distribution check, as the
        records hold them beside ``core`` (one dict, which earlier versions wrote as the DICOM
        inputs alone)."""
        codes = None if self.modalities is None else list(self.modalities)
        return {"modalities": codes, "multi_frame": self.multi_frame, "ood_check": self.ood_check}

    def with_extras(self, found: object) -> "Interface":
        """This interface with the extras of a record's ``found`` (``extras()``'s dict;
        anything else, or a field missing: not known)."""
        found = found if isinstance(found, dict) else {}
        codes, frames = found.get("modalities"), found.get("multi_frame")
        codes = tuple(sorted(map(str, codes))) if isinstance(codes, list) else None
        frames = frames if isinstance(frames, bool) else None
        ood = found.get("ood_check")
        ood = ood if isinstance(ood, bool) else None
        return dataclasses.replace(self, modalities=codes, multi_frame=frames, ood_check=ood)


def dicom_inputs(
    checked: bool, modalities: Sequence[str] | None, multi_frame: bool | None
) -> tuple[tuple[str, ...], bool]:
    """``(modalities, multi_frame)`` a model takes, for ``Interface.of``: a model logged before
    its DICOM inputs were checked (``checked`` False) takes every modality (``()``) and
    multi-frame files; one that records no modality takes every one."""
    if not checked:
        return (), True
    return tuple(modalities or ()), bool(multi_frame)


def _smallest(size: tuple[int, ...]) -> str:
    return "×".join(str(-(-side // MAX_UPSCALE)) for side in size)


def _rule(positive: str | None) -> str:
    return f"threshold for {positive!r}" if positive else "no threshold (no `decision`)"


def changes(before: Interface, after: Interface) -> list[str]:
    """What clients receive otherwise from ``after`` than from ``before``, one phrase each
    (empty: nothing). A smaller input size of the same shape changes nothing a client sees; a
    larger one refuses images that were served, and so does another shape (images far out of
    it are refused, ``mlpipeline_model.misfit``). Losing the out-of-distribution check is a
    change (clients that send flagged images to a person would get none flagged); gaining it
    is not: answers keep every field, ``ood_score`` and ``out_of_distribution`` only carry
    values where they were null, and no image is refused for them."""
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
    if refused := _refused_modalities(before.modalities, after.modalities):
        found.append(refused)
    if before.multi_frame and after.multi_frame is False:
        found.append("multi-frame DICOM files (a cine loop's first frame classified) → refused")
    if before.ood_check and after.ood_check is False:
        found.append(
            "out-of-distribution check → none: `out_of_distribution` and `ood_score` are null "
            "for every image, so no image unlike the training images is flagged for review by "
            "a person"
        )
    return found


def _refused_modalities(before: Codes, after: Codes) -> str | None:
    """The DICOM files ``after`` refuses that ``before`` classified (None: none, or not known).
    A model that takes more modalities changes nothing a client of the served ones sees."""
    if before is None or after is None or not after:
        return None
    if not before:
        return (f"DICOM modalities any → {', '.join(after)}: files of other modalities are "
                "refused")  # fmt: skip
    if lost := [m for m in before if m not in after]:
        return (f"DICOM modalities {', '.join(before)} → {', '.join(after)}: "
                f"{', '.join(lost)} files are refused")  # fmt: skip
    return None


def confirmation(served: Sequence[Interface] | None, selected_at: str) -> dict[str, str]:
    """The tags of a change confirmed while ``served`` were served (None or empty: unknown,
    so from ``"any"``), by the choice tagged ``selected_at``: ``CONFIRMED_FROM_TAG`` and
    ``CONFIRMED_DICOM_TAG``."""
    if not served:
        return {CONFIRMED_FROM_TAG: "any"}
    unique = list({json.dumps([i.core(), i.extras()]): i for i in served}.values())
    value = json.dumps([i.core() for i in unique])
    inputs = {"for": _digest(value + selected_at), "inputs": [i.extras() for i in unique]}
    return {CONFIRMED_FROM_TAG: value, CONFIRMED_DICOM_TAG: json.dumps(inputs)}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _own_dicom(tags: Mapping[str, str]) -> dict | None:
    """The version's ``CONFIRMED_DICOM_TAG`` when it belongs to its own confirmation and choice
    (its ``for``: the digest of ``interface_confirmed_from`` and ``selected_at``); None when it
    has none, it was edited, or another choice left it."""
    value = tags.get(CONFIRMED_FROM_TAG)
    try:
        found = json.loads(tags.get(CONFIRMED_DICOM_TAG) or "null")
    except ValueError:
        return None
    if not value or not isinstance(found, dict):
        return None
    return found if found.get("for") == _digest(value + tags.get("selected_at", "")) else None


def restamped(tags: Mapping[str, str], selected_at: str) -> dict[str, str]:
    """The ``CONFIRMED_DICOM_TAG`` of a version with ``tags`` whose choice is made again at
    ``selected_at`` without a confirmation of its own (its ``interface_*`` tags stay): its DICOM
    inputs, stamped for the new choice, so they go on counting; empty when it has none of its own
    (none, or left by another choice)."""
    inputs = _own_dicom(tags)
    if inputs is None:
        return {}
    stamp = _digest(tags[CONFIRMED_FROM_TAG] + selected_at)
    return {CONFIRMED_DICOM_TAG: json.dumps({**inputs, "for": stamp})}


def confirmed_for(tags: Mapping[str, str], served: Interface) -> bool:
    """Whether a version with ``tags`` was chosen as a change from ``served`` (its extras too,
    where both the confirmation and ``served`` know them)."""
    value = tags.get(CONFIRMED_FROM_TAG)
    if value == "any":
        return True
    try:
        confirmed = [Interface.of(**fields) for fields in json.loads(value or "[]")]
    except (TypeError, ValueError):  # edited by hand: not a confirmation
        return False
    if not confirmed:
        return False
    dicom = (_own_dicom(tags) or {}).get("inputs")
    if not isinstance(dicom, list) or len(dicom) != len(confirmed):  # not known
        dicom = [None] * len(confirmed)
    return any(
        one == served and _same_extras(one.with_extras(d), served)
        for one, d in zip(confirmed, dicom, strict=True)
    )


def _same_extras(a: Interface, b: Interface) -> bool:
    """Whether ``a`` and ``b`` take the same DICOM inputs and both have the out-of-distribution
    check or both lack it, as far as both are known."""
    pairs = ((a.modalities, b.modalities), (a.multi_frame, b.multi_frame),
             (a.ood_check, b.ood_check))  # fmt: skip
    return all(x is None or y is None or x == y for x, y in pairs)


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
    """The ``served_tag`` value for ``version`` (of ``run_id``) of interface ``served`` (its
    extras beside the interface, under ``"dicom"``, where a predictor of an earlier version reads
    the DICOM inputs as before)."""
    return json.dumps({"version": str(version), "run_id": run_id, "interface": served.core(),
                       "dicom": served.extras()})  # fmt: skip


def read_served(tags: Mapping[str, str], alias: str) -> ServedRecord | None:
    """What was last served under ``alias`` (None: nothing recorded, or the record was edited
    into something else)."""
    try:
        record = json.loads(tags[served_tag(alias)])
        run_id = record.get("run_id")
        # "dicom" absent: recorded before the DICOM inputs were, not known
        interface = Interface.of(**record["interface"]).with_extras(record.get("dicom"))
        return ServedRecord(str(record["version"]), None if run_id is None else str(run_id),
                            interface)  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
