"""The trainer's flag types: each converts the text of one flag and says, as argparse prints it
after the flag's name, what a bad value should have been (``--seed: must be a whole number from
0 to 4294967295, got -1``)."""

import argparse
import math

from dataloader import MAX_IMAGE_SIDE, parse_modalities


def number(text: str, kind: type[int] | type[float] = float) -> float:
    """``text`` as a number of ``kind``; an ``ArgumentTypeError`` that says so otherwise (argparse
    would name the converting function: "invalid below_one value")."""
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def side(text: str, least: int = 1) -> int:
    """An image side in pixels, as the loader takes it: ``least`` to ``MAX_IMAGE_SIDE``."""
    value = number(text, int)
    if not least <= value <= MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of pixels from {least} to {MAX_IMAGE_SIDE}, got {text}"
        )
    return value


def side_bound(text: str) -> int:
    """``--min-image-size`` / ``--max-image-size``: a side, or 0 (no bound)."""
    return side(text, least=0)


def non_negative_float(text: str) -> float:
    value = number(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {text}")
    return value


def seed(text: str) -> int:
    """A seed numpy's generators take: a whole number from 0 to 2**32 - 1."""
    value = number(text, int)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 4294967295, got {text}")
    return value


def warmup_factor(text: str) -> float:
    """What the warm-up multiplies the learning rate by at its start: in (0, 1]."""
    value = number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {text}")
    return value


def name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def probability(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def below_one(text: str) -> float:
    """A value in ``[0, 1)``, 0 turning the option off (``--ema-decay``, ``--ood-quantile``, and
    ``--val-fraction``: none carved, a ``val/`` folder needed)."""
    value = number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0: off), got {text}")
    return value


def class_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(
            f"must name every class, comma-separated, e.g. malignant,benign; got {text!r}"
        )
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"names a class twice: {text!r}")
    if odd := [name for name in names if "/" in name or "\\" in name or name.startswith(".")]:
        # as import-medmnist refuses them: the file's imported folders must be able to match
        raise argparse.ArgumentTypeError(
            f"{odd[0]!r} cannot be a class (folder) name: no '/' or '\\', no leading '.'"
        )
    return names


def modalities(text: str) -> str:
    """``"us, CT"`` → ``"CT,US"``: DICOM Modality codes, checked, as the run's parameter."""
    try:
        return ",".join(parse_modalities(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def batch_size(text: str) -> int:
    value = number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (BatchNorm needs it), got {text}")
    return value
