"""The one settings object: environment variables with prefix `DUBAN_`, or `duban.toml`."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from models.vocabulary import AttachmentType

DEV_SECRET = "duban-development-secret-do-not-use-in-production"  # noqa: S105
DEFAULT_PASS_CHUNK_SIZE = 500


class Environment(StrEnum):
    """Where duban runs: development allows embedded defaults and the development secret."""

    development = "development"
    production = "production"


class SmtpSecurity(StrEnum):
    """How the SMTP connection is secured."""

    none = "none"
    starttls = "starttls"
    tls = "tls"


class EventPublisher(StrEnum):
    """Who emits the domain events a supervision pass wrote to Prefect's event feed.

    `flow`: the pass itself, before it ends (one process, nothing else to run). `relay`:
    `duban events relay`, a process of its own that `duban serve` starts; the pass ends once
    its rows are committed, and the feed follows within the relay's interval plus what the
    Prefect server takes (about 800 events a second on two CPUs, docs/performance.md).
    """

    flow = "flow"
    relay = "relay"


class Settings(BaseSettings):
    """duban's configuration; fails at start-up naming the setting that is wrong."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_", toml_file="duban.toml", extra="forbid", validate_default=True
    )

    env: Environment = Environment.development
    data_dir: Path = Path(".duban")
    database_url: str = ""
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    public_url: str = ""  # unset: the form's own address, http://127.0.0.1:<portal_port>
    portal_host: str = "127.0.0.1"
    portal_port: int = Field(default=8765, ge=1, le=65535)
    trusted_proxies: str = ""  # comma-separated IPs/CIDRs whose X-Forwarded-For is believed
    organisation: str = ""
    keep_script: bool = False

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_embedded: bool = True
    mail_from_address: str = "duban@example.org"
    mail_from_name: str = "督办系统"

    link_valid_days_after_due: int = Field(default=30, ge=1)
    instruct_link_valid_days: int = Field(default=30, ge=1)

    pass_shards: int = Field(default=1, ge=1)
    pass_chunk_size: int = Field(default=DEFAULT_PASS_CHUNK_SIZE, ge=1)
    event_publisher: EventPublisher = EventPublisher.flow

    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, le=2**31 - 1)
    attachment_max_count: int = Field(default=10, ge=0, le=100)
    attachment_types: str = "pdf,png,jpeg,gif,webp,docx,doc,xlsx,xls"
    attachment_dir: Path | None = None  # a shared directory every portal/worker mounts
    attachment_link_days: int = Field(default=30, ge=1, le=366)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read init arguments, then the environment, then `duban.toml`."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("public_url")
    @classmethod
    def _absolute_public_url(cls, value: str) -> str:
        if not value:
            return value  # filled in from the form's host and port (`_default_public_url`)
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"DUBAN_PUBLIC_URL must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "DUBAN_DATABASE_URL must start with sqlite:// or postgresql+psycopg://, "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value

    @field_validator("mail_from_address", "mail_from_name", "smtp_user")
    @classmethod
    def _no_header_injection(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("mail header settings must not contain line breaks")
        return value

    @field_validator("attachment_types")
    @classmethod
    def _known_attachment_types(cls, value: str) -> str:
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if AttachmentType.of(name) is None]
        if unknown:
            known = ",".join(AttachmentType)
            raise ValueError(f"DUBAN_ATTACHMENT_TYPES: unknown {unknown[0]!r}; known: {known}")
        return ",".join(names)

    @field_validator("attachment_dir")
    @classmethod
    def _absolute_attachment_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(
                f"DUBAN_ATTACHMENT_DIR must be an absolute path on shared storage, got {value}"
            )
        return value

    @model_validator(mode="after")
    def _default_public_url(self) -> Self:
        """Unset, the links point at the form itself: a changed `DUBAN_PORTAL_PORT` moves them
        with it (a form on 0.0.0.0 or :: is reached on loopback from this machine)."""
        if not self.public_url:
            host = self.portal_host
            host = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.portal_port}"
        return self

    @model_validator(mode="after")
    def _production_secrets(self) -> Self:
        if self.env is Environment.production:
            secret = self.secret_key.get_secret_value()
            if secret == DEV_SECRET or len(secret) < 32:
                raise ValueError(
                    "DUBAN_SECRET_KEY must be set to a random string of 32+ characters in "
                    "production"
                )
            if self.smtp_embedded:
                raise ValueError("DUBAN_SMTP_EMBEDDED must be false in production")
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'duban.db').resolve()}"

    @property
    def mail_store(self) -> Path:
        """Where the embedded SMTP server keeps every message it receives (a Maildir)."""
        return self.data_dir / "mail"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
