"""The one rule for paths that come from a request or a run: checked text, confined to a root.

Every service that reads or writes a path it did not choose itself (a request's ``data_dir``,
a run's ``data_dir`` parameter, a download destination) goes through ``confine``: the path text
is checked first (``check_path_text``), then resolved (symlinks and ``..`` included) and refused
unless it lies inside the root (``DATA_DIR`` or ``ARTIFACTS_DIR``).
"""

import os
from pathlib import Path

from common.errors import InvalidInput

MAX_PATH_CHARS = 1024
"""Longest path text accepted (the API's schema says the same)."""
MAX_NAME_BYTES = 255
"""Longest file or folder name, in UTF-8 bytes (Linux's NAME_MAX)."""


def check_path_chars(value: str | os.PathLike, what: str = "path") -> str:
    """``value`` as text, or ``InvalidInput`` for a NUL byte or text that is not valid UTF-8
    (lone surrogates, as JSON ``"\\udc80"`` or undecodable bytes give)."""
    text = os.fspath(value)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{what} is not valid UTF-8; pass the path as UTF-8 text.") from None
    if "\x00" in text:
        raise InvalidInput(
            f"{what} {_shown(text)} contains a NUL byte, which no file name can hold."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} {_shown(text)} is not valid UTF-8 text (it holds a lone surrogate); "
            "pass the path as UTF-8."
        ) from None
    return text


def check_path_text(value: str | os.PathLike, what: str = "path") -> str:
    """``value`` as text, or ``InvalidInput`` when it cannot name a file.

    Refused: what ``check_path_chars`` refuses, more than ``MAX_PATH_CHARS`` characters, or a
    single name longer than ``MAX_NAME_BYTES`` bytes. Messages show at most 80 characters.
    """
    text = check_path_chars(value, what)
    if len(text) > MAX_PATH_CHARS:
        raise InvalidInput(
            f"{what} is {len(text)} characters long, more than the {MAX_PATH_CHARS} allowed; "
            f"it starts {_shown(text)}."
        )
    longest = max(text.replace("\\", "/").split("/"), key=lambda name: len(name.encode()))
    if len(longest.encode()) > MAX_NAME_BYTES:
        raise InvalidInput(
            f"{what} {_shown(text)} has a name of {len(longest.encode())} bytes; file and folder "
            f"names have at most {MAX_NAME_BYTES}."
        )
    return text


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut at 80 characters (surrogates escaped)."""
    return repr(text[:80]) + ("…" if len(text) > 80 else "")


def confine(
    value: str | os.PathLike,
    root: str | os.PathLike,
    what: str = "path",
    root_name: str = "the service's folder",
    fix: str | None = None,
) -> Path:
    """``value`` resolved, when it lies inside ``root``; else ``InvalidInput`` naming both.

    ``what`` names the value and ``root_name`` the root (``"DATA_DIR"``) in messages; ``fix``
    replaces the advice for a path outside (default: pass a path relative to the root).

    A relative ``value`` is taken relative to ``root``; ``~`` is not expanded (a request names
    no home folder of the server: ``~user`` would tell which users exist and where they live).
    Symlinks and ``..`` are resolved before the comparison, so a link inside ``root`` that points
    outside is refused too. The path need not exist. A refusal never says where a path outside
    ``root`` leads nor why it could not be followed: that would map the server's files.
    """
    text = check_path_text(value, what)
    advice = fix or f"pass a path relative to {root_name}."
    if text.startswith("~"):
        raise InvalidInput(
            f"{what} {_shown(text)} starts with '~', a home folder, which the service does not "
            f"expand; it reads and writes only under {root_name}: {advice}"
        )
    resolved_root = Path(root).resolve()
    # Compared as written first, so that a path outside is refused without touching the file
    # system (a link under /proc resolves to a process's files, or fails with its own error).
    # Both the root as configured and as resolved count: DATA_DIR may be a link itself.
    written = Path(os.path.normpath(Path(root).absolute() / text))
    inside = [Path(os.path.normpath(Path(root).absolute())), resolved_root]
    outside = InvalidInput(
        f"{what} {_shown(text)} is outside {root_name} {resolved_root}, or leads outside it "
        f"through a link; the service reads and writes only under {root_name}: {advice}"
    )
    if not any(written.is_relative_to(base) for base in inside):
        raise outside
    try:
        path = (resolved_root / text).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a link it may not follow
        raise InvalidInput(
            f"{what} {_shown(text)} cannot be resolved under {root_name} (a symbolic link "
            f"loop, or a link the service may not follow): {advice}"
        ) from None
    if not path.is_relative_to(resolved_root):
        raise outside
    return path
