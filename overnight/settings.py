"""The one place for settings: read from the environment, frozen, secrets kept secret."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "overnight"


class Settings(BaseSettings):
    """Process-wide settings. Secrets come from the environment only, never from files."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_prefix="OVERNIGHT_")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    home: Path = Field(default_factory=_default_home)
    """Where the embedded local Batch API keeps its state, and other per-user data."""
    pricing_file: Path | None = None
    """`OVERNIGHT_PRICING_FILE`: a pricing table of the user's own instead of the shipped one."""
    poll_policy: Literal["auto", "local", "remote"] = "auto"
    """`OVERNIGHT_POLL_POLICY`: how often batches are polled (see `tasks.polling`); `auto`
    polls loopback backends every second and others by the batch's age."""
    models_file: Path | None = None
    """`OVERNIGHT_MODELS_FILE`: a model-capabilities file of the user's own instead of the
    shipped one (what each model accepts; see data/models.toml)."""
    max_api_concurrency: int = 4
    build_workers: int | None = Field(default=None, ge=1)
    """`OVERNIGHT_BUILD_WORKERS`: processes building partitions at once on this machine (1
    builds them one after the other in this process); by default one per usable core."""
    collect_workers: int | None = Field(default=None, ge=1)
    """`OVERNIGHT_COLLECT_WORKERS`: processes parsing downloaded shards at once (1 parses them
    one after the other in this process); by default one per usable core once there are
    enough lines to repay starting them (`tasks.runs.parse.POOL_MIN_REQUESTS`)."""
    build_partition_files: int = Field(default=16_384, ge=1)
    """`OVERNIGHT_BUILD_PARTITION_FILES`: listed files per build partition (the count is
    rounded up to a power of two, at most 32); part of how a run's shards are laid out."""
    build_partition_bytes: int = Field(default=32 << 20, ge=1)
    """`OVERNIGHT_BUILD_PARTITION_BYTES`: listed bytes per build partition, as files are
    counted (whichever asks for more partitions wins): a folder of a few thousand big files
    (PDFs, manuals) is built on every core too."""
    dask_address: str | None = None
    """`OVERNIGHT_DASK_ADDRESS`: a Dask scheduler (`tcp://host:8786`) to build partitions on,
    as Prefect tasks through prefect-dask, instead of the local process pool."""

    @property
    def uses_openai(self) -> bool:
        """True when a real OpenAI key is configured (and no other base URL overrides it)."""
        return self.openai_api_key is not None

    @property
    def local_batch_dir(self) -> Path:
        return self.home / "localbatch"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings read once from the environment."""
    return Settings()
