import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field, SecretBytes, SecretStr, ValidationError

from common import Settings
from common.settings import settings_problem
from tests.conftest import ROOT


def test_defaults_work_on_one_machine(monkeypatch):
    for var in (
        "MLFLOW_TRACKING_URI",
        "MONGO_URI",
        "DATA_DIR",
        "EVALUATOR_URL",
        "PIPELINE_API_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert s.evaluator_url == "http://127.0.0.1:5006"
    assert s.explainer_url == "http://127.0.0.1:5005"
    assert s.mongo_uri is None
    assert s.data_dir == Path("data")
    assert s.pipeline_api_token is None


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MONGO_URI", "mongodb://mongo:27017")
    monkeypatch.setenv("DATA_DIR", "/data")
    monkeypatch.setenv("ARTIFACTS_DIR", "/artifacts")
    monkeypatch.setenv("PIPELINE_API_TOKEN", "s3cret")
    s = Settings(_env_file=None)
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.mongo_uri == "mongodb://mongo:27017"
    assert s.data_dir == Path("/data")
    assert s.artifacts_dir == Path("/artifacts")
    assert s.pipeline_api_token == "s3cret"


def test_mlflow_reads_the_configured_server_where_a_call_names_none(tmp_path):
    # A .env next to where a CLI runs, no MLFLOW_TRACKING_URI in the environment: MLflow's own
    # lookups (runs:/ and models:/ downloads) must reach that server, not ./mlflow.db.
    (tmp_path / ".env").write_text("MLFLOW_TRACKING_URI=http://mlflow.example:5999\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "from common import get_settings; import mlflow; get_settings(); "
        "print(mlflow.get_tracking_uri())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "http://mlflow.example:5999"
    assert not (tmp_path / "mlflow.db").exists()


def test_seals_and_signatures_take_the_signing_key_else_the_api_token(monkeypatch):
    monkeypatch.delenv("PIPELINE_SIGNING_KEY", raising=False)
    token, key = "api-token-0123456789abcdef", "signing-key-0123456789abcdef"
    assert Settings(_env_file=None, pipeline_api_token=token).sealing_key == token
    assert Settings(_env_file=None, pipeline_api_token=token,
                    pipeline_signing_key=f"{key}\n").sealing_key == key  # fmt: skip
    empty = Settings(_env_file=None, pipeline_api_token=token, pipeline_signing_key="")
    assert empty.sealing_key == token  # Compose passes an unset variable as empty


def test_a_short_signing_key_is_refused_without_showing_it():
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, pipeline_signing_key="short-secret")
    said = settings_problem(caught.value)
    assert "PIPELINE_SIGNING_KEY=(hidden): must be a random secret of at least 24" in said
    assert "short-secret" not in said


def test_a_former_keys_fingerprint_copied_in_capitals_is_taken_as_one():
    old = "o" * 30
    settings = Settings(_env_file=None, pipeline_previous_tokens=f" 0123456789AB, NONE ,{old}")
    assert settings.previous_tokens() == ["0123456789ab", "none", old]
    assert settings.signing_keys() == [old]  # fingerprints check no signature


PUBLIC = "QbSsV7AO78BG7XXmrmUM9p0udhY5KK0Q9sFGFTpf6hg="  # a key as `python -m runs.keys` prints it


def _problem(**values) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)
    return settings_problem(caught.value)


def test_a_malformed_choice_private_key_is_refused_without_showing_it():
    said = _problem(pipeline_choice_private_key="c2VjcmV0LWJ1dC10b28tc2hvcnQ=")
    assert "PIPELINE_CHOICE_PRIVATE_KEY=(hidden): must be an Ed25519 key as `python -m " in said
    assert "c2VjcmV0LWJ1dC10b28tc2hvcnQ" not in said


def test_a_choice_public_key_cut_short_is_refused():
    said = _problem(pipeline_choice_public_key=PUBLIC[:-5])
    assert "PIPELINE_CHOICE_PUBLIC_KEY=(hidden): must be an Ed25519 key" in said


def test_a_malformed_former_public_key_is_refused_by_its_place_in_the_list():
    said = _problem(pipeline_choice_previous_public_keys=f"{PUBLIC}, {PUBLIC};")
    assert "entry 2 (entries are separated by commas) must be an Ed25519 key" in said


def test_the_choice_public_keys_are_the_current_then_the_former_ones():
    other = "A" * 43 + "="
    settings = Settings(_env_file=None, pipeline_choice_public_key=f" {PUBLIC}\n",
                        pipeline_choice_previous_public_keys=f"{other}, ")  # fmt: skip
    assert settings.choice_public_keys() == [PUBLIC, other]
    assert Settings(_env_file=None, pipeline_choice_public_key="").choice_public_keys() == []


class _MailSettings(Settings):
    """A service's own settings: secrets whose names say nothing of keys or tokens."""

    smtp_password: SecretStr = Field(default=SecretStr("x" * 30), min_length=30)
    smtp_cert: SecretBytes | None = Field(default=None, min_length=30)
    smtp_passwords: list[Annotated[SecretStr, Field(min_length=30)]] = Field(default_factory=list)
    smtp_host: str = Field(default="mail.example.org", min_length=10)


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("SMTP_PASSWORD", "hunter2-secret", "SMTP_PASSWORD"),
        ("SMTP_CERT", "hunter2-bytes", "SMTP_CERT"),
        ("SMTP_PASSWORDS", f'["{"x" * 30}", "hunter2-listed"]', "SMTP_PASSWORDS.1"),
    ],
)
def test_a_setting_typed_secret_is_hidden_whatever_its_name(monkeypatch, variable, value, shown):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        _MailSettings(_env_file=None)
    for said in (settings_problem(caught.value), settings_problem(caught.value, _MailSettings)):
        assert f"{shown}=(hidden): " in said
        assert "hunter2" not in said


def test_a_plain_setting_shows_its_value(monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "mail")
    with pytest.raises(ValidationError) as caught:
        _MailSettings(_env_file=None)
    assert "SMTP_HOST='mail': " in settings_problem(caught.value)


def _readme_variables() -> list[str]:
    """The first column of README.md's configuration table, each cell a `VARIABLE`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.search(r"^\| variable \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", section, re.MULTILINE)
    assert rows, "README.md's configuration table is missing or has another header"
    cells = [row.split(" | ", 1)[0].removeprefix("| ") for row in rows[1].splitlines()]
    assert all(re.fullmatch(r"`[A-Z][A-Z0-9_]*`", c) for c in cells), cells
    return [cell.strip("`") for cell in cells]


def test_every_setting_is_a_row_of_the_readme_table_and_every_row_a_setting():
    # an environment variable is the upper-cased field name (no prefix, no aliases)
    assert not Settings.model_config.get("env_prefix")
    assert not Settings.model_config.get("case_sensitive")
    assert all(f.alias is None and f.validation_alias is None
               for f in Settings.model_fields.values())  # fmt: skip
    variables = _readme_variables()
    assert len(variables) == len(set(variables)), "a variable has two rows"
    fields = {name.upper() for name in Settings.model_fields}
    unlisted, unknown = sorted(fields - set(variables)), sorted(set(variables) - fields)
    assert (unlisted, unknown) == ([], []), "(settings not in README.md's table, rows no setting)"
