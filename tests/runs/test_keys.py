"""The key-pair command (``python -m runs.keys``): two ``.env`` lines of one pair."""

import subprocess
import sys

import pytest

from common import Settings
from runs import ED25519_TAG, keys, sign_choice_ed25519, unverified_problem

TAGS = {"run_id": "a" * 32, "selected_by": "dr. x", "reason": "best AUC",
        "selected_at": "2026-12-07T05:00:00.000+00:00", "weights_digest": "d" * 64,
        "files_digest": "f" * 64}  # fmt: skip


def _settings_in(text: str) -> dict[str, str]:
    """The settings of the command's output, as a ``.env`` file holds them."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _printed() -> dict[str, str]:
    """What ``python -m runs.keys`` prints, run as the docs say."""
    command = [sys.executable, "-m", "runs.keys"]
    return _settings_in(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def test_its_lines_are_a_pair_the_settings_take(tmp_path):
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in _printed().items()))
    settings = Settings(_env_file=env)
    signed = {**TAGS, ED25519_TAG: sign_choice_ed25519(TAGS, settings.choice_private_key)}
    assert unverified_problem(signed, "a" * 32, settings.choice_public_keys()) is None


def test_each_run_makes_another_pair(capsys):
    pairs = []
    for _ in range(2):  # in this process: a second interpreter's start costs seconds
        assert keys.main([]) == 0
        pairs.append(_settings_in(capsys.readouterr().out))
    assert pairs[0] != pairs[1] and all(len(pair) == 2 for pair in pairs)


def test_help_prints_usage_and_no_key(capsys):
    with pytest.raises(SystemExit) as stop:
        keys.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m runs.keys" in out and "PRIVATE_KEY=" not in out
