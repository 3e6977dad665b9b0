"""The CARTBACK_* environment, read once into a Config."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration value that Cartback cannot start with."""


DEFAULT_DATABASE_URL = "sqlite:///data/cartback.db"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    public_url: str = DEFAULT_PUBLIC_URL
    smtp_url: str | None = None
    sweep_seconds: float = 30.0
    data_dir: Path = field(default_factory=lambda: Path("data"))

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


def _secret_from_file(data_dir: Path) -> str:
    # Made once and kept, so links and sessions survive restarts.
    path = data_dir / "secret.key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key + "\n")
    os.chmod(tmp, 0o600)
    try:
        # Another process may have won the race: keep its key.
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def load_config(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    database_url = env.get("CARTBACK_DATABASE_URL") or DEFAULT_DATABASE_URL
    scheme = urlsplit(database_url).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"CARTBACK_DATABASE_URL: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")
    public_url = (env.get("CARTBACK_PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
    if urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).netloc:
        raise ConfigError(f"CARTBACK_PUBLIC_URL: not an http(s) URL: {public_url!r}")
    smtp_url = env.get("CARTBACK_SMTP_URL") or None
    if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtp+starttls", "smtps"):
        raise ConfigError("CARTBACK_SMTP_URL: use smtp://, smtp+starttls:// or smtps://")
    raw_sweep = env.get("CARTBACK_SWEEP_SECONDS", "30")
    try:
        sweep = float(raw_sweep)
    except ValueError:
        raise ConfigError(f"CARTBACK_SWEEP_SECONDS: not a number: {raw_sweep!r}") from None
    if sweep < 0:
        raise ConfigError("CARTBACK_SWEEP_SECONDS: must be 0 or more")
    data_dir = Path(env.get("CARTBACK_DATA_DIR") or "data")
    secret = env.get("CARTBACK_SECRET_KEY") or _secret_from_file(data_dir)
    return Config(
        database_url=database_url,
        secret_key=secret,
        public_url=public_url,
        smtp_url=smtp_url,
        sweep_seconds=sweep,
        data_dir=data_dir,
    )
