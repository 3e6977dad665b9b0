"""The CARTBACK_* environment, read once at start-up (pydantic-settings) and checked into a Config.

Every mistake is found here, before anything runs, and raised as a ConfigError: one line that
names the variable, e.g. ``CARTBACK_SMTP_URL: port must be 1-65535``. `cartback` prints it and
exits 2. Values that may hold a password (the database and SMTP URLs) are never echoed.

    CARTBACK_DATABASE_URL           sqlite:///data/cartback.db (default) or postgresql://...
    CARTBACK_SECRET_KEY             signs links and sessions; unset: made once in DATA_DIR/secret.key
    CARTBACK_PUBLIC_URL             where shoppers and the dashboard reach the collector (http(s)://)
    CARTBACK_SMTP_URL               smtp://, smtp+starttls:// or smtps://; unset: the dev mailbox
    CARTBACK_SWEEP_SECONDS          seconds between sweeps in `cartback serve` (0: none), default 30
    CARTBACK_DATA_DIR               the secret key and the demo login, default ./data
    CARTBACK_WEBHOOK_ALLOW_PRIVATE  1: webhooks may go to private and loopback addresses; default 0
    CARTBACK_INGEST_SITE_PER_SECOND ingest requests a second one site may make (all its visitors); 0/unset: no ceiling
    CARTBACK_READ_TIMEOUT_SECONDS   seconds a client has to send a request's headers, and its body (408 past it), default 10
    CARTBACK_MAX_CONNECTIONS        open connections `cartback serve` takes per process (503 past it), default 1000

An empty variable counts as unset.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "CARTBACK_"
DEFAULT_DATABASE_URL = "sqlite:///data/cartback.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_SWEEP_SECONDS = 30.0
DEFAULT_DATA_DIR = "data"
DEFAULT_READ_TIMEOUT = 10.0
# Anything shorter can be guessed offline from one signed link.
MIN_SECRET_LENGTH = 32
DEFAULT_MAX_CONNECTIONS = 1000

SMTP_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+")  # a DNS name, an IPv4 or (unbracketed) IPv6 address
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A configuration value that Cartback cannot start with; the message names the variable."""


@dataclass(frozen=True)
class SmtpSettings:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None
    password: str | None = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """smtp://[user:pass@]host[:port] (plain, 25), smtp+starttls:// (587), smtps:// (465).

        The user and password are URL-decoded, so a password with '@', ':' or '/' is written %40, %3A, %2F.
        Raises ConfigError naming CARTBACK_SMTP_URL (the URL itself is not echoed: it may hold a password).
        """

        def fail(reason: str) -> ConfigError:
            return ConfigError(f"{ENV_PREFIX}SMTP_URL: {reason}")

        if any(c.isspace() or not c.isprintable() for c in url):
            raise fail("must not contain spaces or control characters")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise fail("not a URL (percent-encode [ and ] in the user name or password)") from None
        scheme = parts.scheme.lower()
        if scheme not in SMTP_DEFAULT_PORTS:
            raise fail("use smtp://, smtp+starttls:// or smtps://")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise fail("unexpected path, query or fragment (percent-encode / ? # in the user name or password)")
        host = parts.hostname
        if not host:
            raise fail("no host")
        if not _HOST.fullmatch(host):
            raise fail(f"bad host {host!r} (write an internationalised name in its xn-- form)")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 1 <= port <= 65535:
            raise fail("port must be 1-65535")
        userinfo = parts.netloc.rpartition("@")[0]
        try:
            if _BAD_PERCENT.search(userinfo):
                raise ValueError(userinfo)
            username = unquote(parts.username, errors="strict") if parts.username else None
            password = unquote(parts.password, errors="strict") if parts.password is not None else None
        except ValueError:  # UnicodeDecodeError included: %-escapes that are not UTF-8
            raise fail("bad percent-encoding in the user name or password") from None
        return cls(
            hostname=host,
            port=port or SMTP_DEFAULT_PORTS[scheme],
            use_tls=scheme == "smtps",
            start_tls=scheme == "smtp+starttls",
            username=username,
            password=password,
        )


@dataclass(frozen=True)
class Config:
    """What the collector runs with. load_config makes one from the environment; tests may build one."""

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = field(default="", repr=False)
    public_url: str = DEFAULT_PUBLIC_URL
    smtp_url: str | None = field(default=None, repr=False)
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    webhook_allow_private: bool = False
    ingest_site_per_second: float = 0.0
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Parsed from smtp_url (a bad URL raises ConfigError here); None: no SMTP, the dev mailbox.
    smtp: SmtpSettings | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "smtp", SmtpSettings.from_url(self.smtp_url) if self.smtp_url else None)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


class _Environment(BaseSettings):
    """The CARTBACK_* variables, each checked with a message of its own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    public_url: str = DEFAULT_PUBLIC_URL
    smtp_url: str | None = None
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    webhook_allow_private: bool = False
    ingest_site_per_second: float = 0.0
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The process environment only: no .env file, no secrets directory.
        return init_settings, env_settings

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        if value and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (make one with"
                " `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.rstrip("/")
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is not None:
            SmtpSettings.from_url(value)  # the same check as Config's, so all mistakes come out together
        return value

    @field_validator("sweep_seconds", mode="before")
    @classmethod
    def _sweep_seconds(cls, value: object) -> float:
        try:
            seconds = float(str(value).strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"must be a number of seconds, 0 or more: {value!r}")
        return seconds

    @field_validator("ingest_site_per_second", mode="before")
    @classmethod
    def _per_second(cls, value: object) -> float:
        try:
            rate = float(str(value).strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"must be a number of requests a second, 0 (no ceiling) or more: {value!r}")
        return rate

    @field_validator("read_timeout_seconds", mode="before")
    @classmethod
    def _read_timeout(cls, value: object) -> float:
        try:
            seconds = float(str(value).strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
        if not math.isfinite(seconds) or not 0.5 <= seconds <= 3600:
            raise ValueError(f"must be a number of seconds from 0.5 to 3600: {value!r}")
        return seconds

    @field_validator("max_connections", mode="before")
    @classmethod
    def _max_connections(cls, value: object) -> int:
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
            raise ValueError(f"must be a whole number from 1 to 1000000: {value!r}")
        return int(text)

    @field_validator("webhook_allow_private", mode="before")
    @classmethod
    def _flag(cls, value: object) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"use 1 (allow) or 0 (refuse), not {value!r}")


class _Given(_Environment):
    """The same variables, from a mapping given to load_config (its values come in as init values)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _one_line(exc: ValidationError) -> str:
    """'CARTBACK_X: reason; CARTBACK_Y: reason' from pydantic's errors."""
    parts = []
    for err in exc.errors():
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, ConfigError):
            parts.append(str(error))  # names its variable already
            continue
        name = f"{ENV_PREFIX}{str(err['loc'][0]).upper()}" if err["loc"] else "configuration"
        parts.append(f"{name}: {error if error is not None else err['msg']}")
    return "; ".join(parts)


def _from_mapping(env: Mapping[str, str]) -> dict[str, Any]:
    # As pydantic-settings reads os.environ: prefix off, names in any case, empty = unset; and only
    # the variables above (no init option of BaseSettings can come in this way).
    prefix = ENV_PREFIX.lower()
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.lower().startswith(prefix) and v != ""}
    return {name: value for name, value in values.items() if name in _Environment.model_fields}


def _secret_from_file(data_dir: Path) -> str:
    # Made once and kept, so links and sessions survive restarts.
    path = data_dir / "secret.key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
        # Never sign with an empty key; and another process may be using this file's name right now.
        raise ConfigError(
            f"{ENV_PREFIX}DATA_DIR: {path} is empty: delete it to have a key made, or set {ENV_PREFIX}SECRET_KEY"
        )
    # The folder holds the key and (by default) the database: for Cartback's user only.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    key = secrets.token_urlsafe(48)
    # A temporary file of this process's own (mkstemp makes it 0600 and unique), written in full
    # and flushed, then linked into place: two first starts at once never read a half-written
    # key, and the one that loses the link keeps the winner's key.
    fd, tmp_name = tempfile.mkstemp(prefix=".secret-", dir=data_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The Config of ``env`` (only that mapping, as tests pass it) or, when None, of os.environ.

    Raises ConfigError, one line naming the variable(s), for any value Cartback cannot start with.
    """
    try:
        raw = _Environment() if env is None else _Given(**_from_mapping(env))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    try:
        secret = raw.secret_key or _secret_from_file(raw.data_dir)
    except OSError as exc:
        raise ConfigError(
            f"{ENV_PREFIX}DATA_DIR: cannot keep the secret key in {raw.data_dir / 'secret.key'}: {exc.strerror or exc}"
        ) from None
    return Config(
        database_url=raw.database_url,
        secret_key=secret,
        public_url=raw.public_url,
        smtp_url=raw.smtp_url,
        sweep_seconds=raw.sweep_seconds,
        data_dir=raw.data_dir,
        webhook_allow_private=raw.webhook_allow_private,
        ingest_site_per_second=raw.ingest_site_per_second,
        read_timeout_seconds=raw.read_timeout_seconds,
        max_connections=raw.max_connections,
    )
