"""The one settings object, read from the environment (and an optional ``.env`` file)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    evaluator_url: str = "http://127.0.0.1:5006"
    explainer_url: str = "http://127.0.0.1:5005"
    pipeline_api_token: str | None = None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build ``Settings`` directly instead)."""
    return Settings()
