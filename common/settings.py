"""The one settings object, read from the environment (and an optional ``.env`` file)."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    Field,
    Secret,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import StartupError
from common.keys import check_choice_key, comma_entries, is_fingerprint, strip_secret
from common.redact import redact_uri


class Settings(BaseSettings):
    """Configuration shared by every service.

    Each field is read from the upper-case environment variable of the same name, for example
    ``MLFLOW_TRACKING_URI``. The defaults work on one machine (``make demo``).
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    mongo_uri: str | None = Field(
        default=None, description="MongoDB URI; unset means the embedded on-disk store."
    )
    mongo_db: str = "mlpipeline"
    store_dir: Path = Field(
        default=Path(".state/store"), description="Folder of the embedded store (MONGO_URI unset)."
    )
    checkpoint_dir: Path = Field(
        default=Path(".state/checkpoints"),
        description="The trainer's checkpoints, one folder per experiment (--checkpoint-dir wins).",
    )
    data_dir: Path = Path("data")
    artifacts_dir: Path = Path("artifacts")
    run_id_file: Path = Field(
        default=Path("run_id.txt"),
        description="Where the dashboard writes the chosen run id for downstream services.",
    )
    dashboard_user_header: str | None = Field(
        default=None,
        description="Request header in which an authenticating proxy in front of the dashboard "
        "names the signed-in user (e.g. X-Forwarded-User); the audit trail records that user as "
        "who chose. Unset: the Choose model tab asks for a name, recorded as typed.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="The least severe log lines every service writes (common.logs: one format, "
        "UTC times, on standard error).",
    )
    evaluator_url: str = "http://127.0.0.1:5006"
    explainer_url: str = "http://127.0.0.1:5005"
    pipeline_api_token: str | None = Field(
        default=None,
        description="Bearer token of the APIs; unset = no authentication. When set it must be "
        "a random secret of at least 24 characters (the services refuse to start otherwise).",
    )
    pipeline_signing_key: SecretStr | None = Field(
        default=None,
        description="The secret that seals the audit trail and signs choices (at least 24 "
        "characters), held by the dashboard, the choose command and the predictor only; unset: "
        "PIPELINE_API_TOKEN does, which every API client holds and could forge them with.",
    )
    pipeline_previous_tokens: SecretStr | None = Field(
        default=None,
        description="The values that sealed and signed before a rotation (PIPELINE_SIGNING_KEY, "
        "else PIPELINE_API_TOKEN), comma-separated: the audit trail's records sealed under them "
        "are checked with them, and the predictor loads choices signed with them; an entry may "
        "be a former key's fingerprint instead (12 hex digits; `none`: no key), whose records "
        "cannot be checked. A record sealed under a key neither current nor named here fails.",
    )
    pipeline_choice_private_key: SecretStr | None = Field(
        default=None,
        description="The private key of the choices' Ed25519 key pair (the base64 of its 32 "
        "bytes; `python -m runs.keys` makes a pair), held by the dashboard and the choose command "
        "only: they sign each choice with it too (tag choice_signature_ed25519). Unset: choices "
        "carry the HMAC choice_signature alone.",
    )
    pipeline_choice_public_key: str | None = Field(
        default=None,
        description="The public key of that pair (not a secret), for the predictor: set, it "
        "loads only versions whose choice_signature_ed25519 this key (or a former one) verifies, "
        "and needs no PIPELINE_SIGNING_KEY; unset, it checks the HMAC choice_signature.",
    )
    pipeline_choice_previous_public_keys: str | None = Field(
        default=None,
        description="Former PIPELINE_CHOICE_PUBLIC_KEYs, comma-separated: after a rotation of "
        "the key pair, the predictor goes on loading choices signed with their private keys.",
    )
    api_docs_public: bool = Field(
        default=False,
        description="Serve /docs, /redoc and /openapi.json without the token (default: they "
        "need it like the rest of the API when PIPELINE_API_TOKEN is set).",
    )
    max_body_bytes: int = Field(
        default=64 * 2**10,
        ge=1,
        description="Larger request bodies get 413 Content Too Large (the evaluator's and "
        "explainer's are JSON of under 13 KB; a request waiting with ?wait= keeps its body).",
    )
    max_body_buffer_bytes: int = Field(
        default=64_000_000,
        ge=1,
        description="Bytes of request bodies the evaluator or explainer holds at once, across "
        "all connections (at least MAX_BODY_BYTES); more get 503 with Retry-After.",
    )
    body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request body may take to arrive completely; then 408.",
    )
    max_queued_jobs: int = Field(
        default=20, ge=1, description="Queued jobs per service kind before submissions get 429."
    )
    job_max_attempts: int = Field(
        default=6,  # waits of 5+10+20+40+80 s: 2.5 minutes, beyond an MLflow restart (20-40 s)
        ge=1,
        description="Attempts of a job whose dependencies were down, then failed.",
    )
    job_retry_delay_s: float = Field(
        default=5.0, ge=0, description="First wait before a retry; doubles on each attempt."
    )
    predictor_url: str = "http://127.0.0.1:5007"
    model_name: str = Field(
        default="mlpipeline-classifier",
        min_length=1,
        description="Registered model that a chosen run becomes a new version of.",
    )
    model_alias: str = Field(
        default="champion",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
        description="Alias that names the chosen version; the predictor serves what it names.",
    )
    predict_max_body_bytes: int = Field(
        default=128 * 2**20,
        ge=1,
        description="Larger POST /predict bodies (all files of one request) get 413.",
    )
    predict_max_body_buffer_bytes: int = Field(
        default=512 * 2**20,
        ge=1,
        description="Bytes of POST /predict bodies the predictor holds at once, across all "
        "connections (at least PREDICT_MAX_BODY_BYTES); more get 503 with Retry-After.",
    )
    predict_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="POST /predict requests decoded and predicted at once; more wait their turn "
        "(a 40-megapixel image takes up to 0.5 GB while it is decoded).",
    )
    predictor_poll_s: float = Field(
        default=30.0,
        gt=0,
        le=60,
        description="How often the predictor checks whether the alias moved (seconds).",
    )
    predictor_serve_unsigned: bool = Field(
        default=False,
        description="Whether the predictor also loads a version whose tags carry no valid "
        "choice_signature (aliased in MLflow's own UI or client, not chosen with the token); "
        "off: it refuses such a version before loading it.",
    )

    file_names: Literal["paths", "pseudonyms"] = Field(
        default="paths",
        description="How results name images outside the data folder (predictions.csv, "
        "explanations, skipped files, duplicates in dataset_stats.json): their paths relative "
        "to it, or pseudonyms (split/class/~<keyed hash><suffix>) for data whose file or folder "
        "names identify patients; `python -m dataloader locate` finds a pseudonym's file.",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="The secret of the pseudonyms (at least 16 characters; the same in every "
        "service, so that they agree): needed with FILE_NAMES=pseudonyms; also keeps patients' "
        "pseudonyms in dataset_stats.json the same across runs (else each run draws its own).",
    )

    @field_validator("pseudonym_key", mode="after")
    @classmethod
    def _long_key(cls, key: SecretStr | None) -> SecretStr | None:
        return strip_secret(key, 16, "must be a secret of at least 16 characters")

    @field_validator("pipeline_signing_key", mode="after")
    @classmethod
    def _signing_key(cls, key: SecretStr | None) -> SecretStr | None:
        return strip_secret(key, 24, "must be a random secret of at least 24 characters")

    @field_validator("pipeline_choice_private_key", mode="after")
    @classmethod
    def _private_key(cls, key: SecretStr | None) -> SecretStr | None:
        key = strip_secret(key, 0, "")  # stripped; None when unset or empty
        return key and SecretStr(check_choice_key(key.get_secret_value()))

    @field_validator("pipeline_choice_public_key", mode="after")
    @classmethod
    def _public_key(cls, key: str | None) -> str | None:
        value = (key or "").strip()
        return check_choice_key(value) if value else None

    @field_validator("pipeline_choice_previous_public_keys", mode="after")
    @classmethod
    def _former_public_keys(cls, keys: str | None) -> str | None:
        entries = comma_entries(keys or "")
        for number, entry in enumerate(entries, 1):
            check_choice_key(entry, f"entry {number} (entries are separated by commas) ")
        return ",".join(entries) or None

    @property
    def choice_private_key(self) -> str | None:
        """``PIPELINE_CHOICE_PRIVATE_KEY`` (base64), which signs choices; None when unset."""
        key = self.pipeline_choice_private_key
        return key.get_secret_value() if key is not None else None

    def choice_public_keys(self) -> list[str]:
        """``PIPELINE_CHOICE_PUBLIC_KEY`` and the former ones: the keys whose private keys'
        signatures the predictor accepts (empty: it checks the HMAC signature instead)."""
        former = comma_entries(self.pipeline_choice_previous_public_keys or "")
        return [k for k in (self.pipeline_choice_public_key, *former) if k]

    @property
    def sealing_key(self) -> str | None:
        """What seals the audit trail and signs choices: ``PIPELINE_SIGNING_KEY``, else the API
        token (None: neither is set, nothing is sealed or signed)."""
        key = self.pipeline_signing_key
        return key.get_secret_value() if key is not None else self.pipeline_api_token

    def signing_keys(self) -> list[str]:
        """``sealing_key`` and the former ones ``PIPELINE_PREVIOUS_TOKENS`` holds whole (not
        fingerprints): what a choice's signature may have been made with."""
        former = [k for k in self.previous_tokens() if not is_fingerprint(k)]
        return [k for k in (self.sealing_key, *former) if k]

    @field_validator("pipeline_previous_tokens", mode="after")
    @classmethod
    def _former_tokens(cls, tokens: SecretStr | None) -> SecretStr | None:
        entries = comma_entries(tokens.get_secret_value()) if tokens is not None else []
        if not entries:  # unset, or empty as Compose passes an unset variable
            return None
        # a fingerprint copied in capitals is the same fingerprint
        entries = [e.lower() if is_fingerprint(e.lower()) else e for e in entries]
        for entry in entries:
            # a former PIPELINE_API_TOKEN passed service.security.check_token: 24 characters or more
            if len(entry) < 24 and not is_fingerprint(entry):
                raise ValueError(
                    f"an entry of {len(entry)} characters is neither a former token (at least 24) "
                    "nor a fingerprint (12 hex digits, or none): entries are separated by commas"
                )
        return SecretStr(",".join(entries))

    def previous_tokens(self) -> list[str]:
        """The entries of ``PIPELINE_PREVIOUS_TOKENS``: former tokens, or their fingerprints."""
        tokens = self.pipeline_previous_tokens
        return comma_entries(tokens.get_secret_value()) if tokens is not None else []

    @model_validator(mode="after")
    def _pseudonyms_need_a_key(self) -> "Settings":
        if self.file_names == "pseudonyms" and self.pseudonym_key is None:
            raise ValueError(
                "FILE_NAMES=pseudonyms needs PSEUDONYM_KEY, a secret of at least 16 characters "
                "(the same in every service), e.g. from python3 -c 'import secrets; "
                "print(secrets.token_hex(24))'"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, level: object) -> object:
        return level.strip().upper() if isinstance(level, str) else level

    @field_validator("pipeline_api_token", mode="after")
    @classmethod
    def _strip_token(cls, token: str | None) -> str | None:
        # A Kubernetes secret or `.env` line made from a file ends with a newline, which no
        # Authorization header can carry: unstripped, every request would get 401.
        return token.strip() if token is not None else None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build ``Settings`` directly instead).

    MLflow itself reads ``MLFLOW_TRACKING_URI`` from the environment wherever a call names no
    server (``runs:/`` and ``models:/`` downloads): when the variable is unset (the default
    applies) or the value came from ``.env``, it is set here to the settings' value, so that
    such a call reaches the configured server and not MLflow's own default, a ``mlflow.db`` in
    the working directory.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        raise StartupError(settings_problem(exc)) from None
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    return settings


def settings_problem(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line naming each environment variable whose value is not valid, and why; ``model``:
    the settings class that raised (unnamed: ``Settings`` or its subclass named by ``exc``)."""
    models = [model] if model else [m for m in _settings_classes() if m.__name__ == exc.title]
    problems = [
        f"{'.'.join(map(str, e['loc'])).upper()}={_shown_input(e, models or [Settings])}: "
        f"{_message(e)}"
        if e["loc"]  # a rule over several settings has none; its input is every value (secrets)
        else _message(e)
        for e in exc.errors()
    ]
    return (
        f"invalid settings: {'; '.join(problems)}; fix these environment variables (or their "
        "lines in .env), see README.md#configuration"
    )


def _settings_classes() -> list[type[BaseModel]]:
    """``Settings`` and its subclasses, theirs included."""
    found: list[type[BaseModel]] = [Settings]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found


def _shown_input(error: dict, models: list[type[BaseModel]]) -> str:
    """The value a setting was given, as an error may show it: never a secret's, that is a
    field typed with a secret type (``SecretStr | None``, ``list[SecretStr]``) or, for those
    that are plain strings, named ``*_key(s)`` or ``*_token(s)``."""
    names = [part for part in error["loc"] if isinstance(part, str)]
    fields = [m.model_fields.get(names[0]) for m in models] if names else []
    if any(f and _holds_secret(f.annotation) for f in fields) or any(
        name.endswith(("_key", "_keys", "_token", "_tokens")) for name in names
    ):
        return "(hidden)"
    return redact_uri(repr(error.get("input")))  # a MONGO_URI's password


def _holds_secret(annotation: object) -> bool:
    """Whether a type is, or is made with, a secret type (``SecretStr``, ``SecretBytes``,
    ``Secret[...]``)."""
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, (SecretStr, SecretBytes, Secret)):
        return True
    return any(_holds_secret(arg) for arg in get_args(annotation))


def _message(error: dict) -> str:
    """Pydantic's message without the prefix it puts before our validators' words."""
    return str(error["msg"]).removeprefix("Value error, ")
