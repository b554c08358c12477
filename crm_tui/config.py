"""Typed, layered configuration: defaults < config file (TOML) < environment (CRM_TUI_*).

The file lives at ``<config dir>/config.toml``; ``CRM_TUI_CONFIG`` points at another file (the
seam tests use). Nothing is read at import time: call ``load_settings()``.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from crm_tui import paths
from crm_tui.core.domain import parse_datetime, utcnow


class ConfigError(Exception):
    """The config file cannot be read or has invalid values; the message says where and what."""


class SyncSettings(BaseModel):
    interval: float = Field(30.0, ge=1, le=86400, description="seconds between syncs (daemon and app)")
    page_size: int = Field(5000, ge=1, le=5000, description="records per change-feed page")
    batch_size: int = Field(500, ge=1, le=1000, description="ops per push request")
    connect_timeout: float = Field(5.0, gt=0, le=120)
    read_timeout: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(5, ge=0, le=20, description="consecutive retries before a sync gives up")
    backoff_base: float = Field(0.5, gt=0, le=60, description="first retry delay cap, seconds")
    backoff_max: float = Field(30.0, gt=0, le=600, description="largest retry delay, seconds")
    # The network lies: every request, answer and run is bounded (docs: README, Configuration).
    request_timeout: float = Field(120.0, gt=0, le=3600, description="whole-request deadline, seconds")
    run_timeout: float = Field(3600.0, gt=0, le=86400, description="whole-sync-run deadline, seconds")
    max_retry_after: float = Field(120.0, ge=0, le=3600,
                                   description="longest Retry-After waited for; beyond it the run ends")
    max_response_mb: float = Field(64.0, gt=0, le=1024, description="largest answer read, MB")
    max_feed_pages: int = Field(2000, ge=1, le=1_000_000, description="change-feed pages per run")
    lock_wait: float = Field(600.0, ge=0, le=86400,
                             description="how long a sync waits for another process's sync to finish")
    ca_bundle: Path | None = Field(
        None, description="PEM file of the CA certificates to trust for the server instead of the public ones"
    )

    @field_validator("ca_bundle")
    @classmethod
    def _loads_as_ca_certificates(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        try:
            ssl.create_default_context(cafile=str(value))
        except FileNotFoundError:
            raise ValueError(f"{value}: no such file") from None
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"{value} is not a PEM file of CA certificates ({exc})") from None
        return value


class SecuritySettings(BaseModel):
    encrypt_replica: bool = Field(
        True, description="encrypt the replica, its outbox and the hot cache (false: plaintext, with a "
                          "warning on every start)")
    key_store: Literal["auto", "keyring", "passphrase"] = Field(
        "auto", description="where a new replica key goes: the OS keyring, or wrapped by a passphrase "
                            "(auto: the keyring when a secure one exists, else a passphrase)")
    token_store: Literal["keyring", "file"] = Field(
        "keyring", description="where `login` keeps the API token: the OS keyring, or (opt-in) a 0600 file")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_TUI_", env_nested_delimiter="__", extra="forbid")

    server: str | None = Field(None, description="server URL; `crm-tui login` sets it")
    theme: str = Field("textual-dark", description="a Textual theme name")
    keymap: dict[str, str] = Field(
        default_factory=dict, description="binding id -> keys, e.g. {'app.search' = 'f2'}"
    )
    sync: SyncSettings = Field(default_factory=SyncSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    # Switches for deterministic runs (snapshot tests, demos on a projector).
    clock: str | None = Field(None, description="freeze the app clock at this ISO date-time")
    animations: bool = True
    sync_in_app: bool = Field(True, description="the app syncs in the background unless a daemon does")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="what goes to the log file (and the daemon's stderr)")

    def make_clock(self) -> Callable[[], dt.datetime]:
        """The clock of everything this process does with a replica: frozen at ``clock`` when set
        (snapshot tests, demos), else the wall clock in UTC. Handed to the replica when it is
        opened (crm_tui.replicas); the app, the sync engine and the replica's parts all ask it."""
        if self.clock:
            frozen = parse_datetime(self.clock)
            return lambda: frozen
        return utcnow

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Later sources lose: explicit values, then CRM_TUI_* variables, then the file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_path))


_config_path: Path | None = None


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the config file, then the environment, then ``overrides``.

    Raises ConfigError naming the file and the bad keys.
    """
    global _config_path
    path = config_file or paths.Paths.resolve().config_file
    read_config_file(path)  # a file that is not TOML gets its own clear message
    _config_path = path if path.exists() else None
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings in {path} or CRM_TUI_* variables: {problems}") from None
    finally:
        _config_path = None
