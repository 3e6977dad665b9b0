"""The CARTBACK_* environment: defaults, every bad value refused at load with the variable named, the secret file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import Config, ConfigError, SmtpSettings, load_config

ROOT = Path(__file__).resolve().parent.parent


def env_for(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"CARTBACK_DATA_DIR": str(tmp_path / "data"), **{f"CARTBACK_{k.upper()}": v for k, v in variables.items()}}


def test_defaults(tmp_path: Path) -> None:
    config = load_config(env_for(tmp_path))
    assert config.database_url == "sqlite:///data/cartback.db"
    assert config.public_url == "http://127.0.0.1:8000" and not config.secure_cookies
    assert config.smtp_url is None and config.smtp is None
    assert config.sweep_seconds == 30.0
    assert config.webhook_allow_private is False
    assert config.data_dir == tmp_path / "data"
    assert len(config.secret_key) >= 32
    assert load_config({"CARTBACK_SECRET_KEY": "k" * 32}).data_dir == Path("data")


def test_an_empty_variable_is_unset(tmp_path: Path) -> None:
    names = ["DATABASE_URL", "PUBLIC_URL", "SMTP_URL", "SWEEP_SECONDS", "WEBHOOK_ALLOW_PRIVATE", "SECRET_KEY"]
    config = load_config({**{f"CARTBACK_{n}": "" for n in names}, **env_for(tmp_path)})
    assert config == load_config(env_for(tmp_path))


def test_values_are_read(tmp_path: Path) -> None:
    config = load_config(
        env_for(
            tmp_path,
            database_url="postgresql://u:p@db/cartback",
            secret_key="s3cret-s3cret-s3cret-s3cret-s3cret-s3cret",
            public_url="https://carts.shop.example/",
            smtp_url="smtp+starttls://user%40shop.example:p%40ss@mail.shop.example",
            sweep_seconds="2.5",
            webhook_allow_private="1",
        )
    )
    assert config.database_url == "postgresql://u:p@db/cartback"
    assert config.secret_key == "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret"
    assert config.public_url == "https://carts.shop.example" and config.secure_cookies
    assert config.smtp == SmtpSettings("mail.shop.example", 587, False, True, "user@shop.example", "p@ss")
    assert config.sweep_seconds == 2.5
    assert config.webhook_allow_private is True
    assert not (tmp_path / "data" / "secret.key").exists()  # a given key makes no file


@pytest.mark.parametrize(
    ("value", "allowed"), [("1", True), ("true", True), ("yes", True), ("0", False), ("off", False)]
)
def test_webhook_allow_private(tmp_path: Path, value: str, allowed: bool) -> None:
    assert load_config(env_for(tmp_path, webhook_allow_private=value)).webhook_allow_private is allowed


BAD = [
    ({"database_url": "mysql://u:hunter2@db/x"}, "CARTBACK_DATABASE_URL: unsupported scheme 'mysql'"),
    ({"database_url": "data/cartback.db"}, "CARTBACK_DATABASE_URL: unsupported scheme ''"),
    ({"public_url": "ftp://shop.example"}, "CARTBACK_PUBLIC_URL: not an http(s) URL"),
    ({"public_url": "shop.example"}, "CARTBACK_PUBLIC_URL: not an http(s) URL"),
    ({"public_url": "https://"}, "CARTBACK_PUBLIC_URL: not an http(s) URL"),
    ({"smtp_url": "http://u:hunter2@mail.example"}, "CARTBACK_SMTP_URL: use smtp://, smtp+starttls:// or smtps://"),
    ({"smtp_url": "mail.example:25"}, "CARTBACK_SMTP_URL: use smtp://"),
    ({"smtp_url": "smtp://u:hunter2@:25"}, "CARTBACK_SMTP_URL: no host"),
    ({"smtp_url": "smtp://"}, "CARTBACK_SMTP_URL: no host"),
    ({"smtp_url": "smtp://mail.example:0"}, "CARTBACK_SMTP_URL: port must be 1-65535"),
    ({"smtp_url": "smtp://mail.example:65536"}, "CARTBACK_SMTP_URL: port must be 1-65535"),
    ({"smtp_url": "smtp://mail.example:twentyfive"}, "CARTBACK_SMTP_URL: port must be 1-65535"),
    ({"smtp_url": "smtp://u:hunter2%zz@mail.example"}, "CARTBACK_SMTP_URL: bad percent-encoding"),
    ({"smtp_url": "smtp://u:hunter2%ff@mail.example"}, "CARTBACK_SMTP_URL: bad percent-encoding"),  # not UTF-8
    ({"smtp_url": "smtp://u:hunt/er2@mail.example"}, "CARTBACK_SMTP_URL: unexpected path"),  # a / not encoded
    ({"smtp_url": "smtp://mail.example/?timeout=5"}, "CARTBACK_SMTP_URL: unexpected path, query"),
    ({"smtp_url": "smtp://u:hunter2@[::1:25"}, "CARTBACK_SMTP_URL: not a URL"),
    ({"smtp_url": "smtp://mail example"}, "CARTBACK_SMTP_URL: must not contain spaces"),
    ({"sweep_seconds": "-1"}, "CARTBACK_SWEEP_SECONDS: must be a number of seconds, 0 or more: '-1'"),
    ({"sweep_seconds": "soon"}, "CARTBACK_SWEEP_SECONDS: not a number: 'soon'"),
    ({"sweep_seconds": "nan"}, "CARTBACK_SWEEP_SECONDS: must be a number of seconds"),
    ({"sweep_seconds": "inf"}, "CARTBACK_SWEEP_SECONDS: must be a number of seconds"),
    ({"webhook_allow_private": "maybe"}, "CARTBACK_WEBHOOK_ALLOW_PRIVATE: use 1 (allow) or 0 (refuse), not 'maybe'"),
]


@pytest.mark.parametrize(("variables", "message"), BAD, ids=[m.split(":")[0] + " " + str(v) for v, m in BAD])
def test_a_bad_value_is_refused_at_load_naming_the_variable(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env_for(tmp_path, **variables))
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert "hunter2" not in text  # URLs may hold passwords: never echoed
    assert isinstance(caught.value, ValueError)


def test_all_mistakes_come_out_together_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env_for(tmp_path, smtp_url="smtp://mail.example:99999", sweep_seconds="x", public_url="ftp://x"))
    text = str(caught.value)
    assert "\n" not in text
    assert [part.split(":")[0] for part in text.split("; ")] == [
        "CARTBACK_PUBLIC_URL",
        "CARTBACK_SMTP_URL",
        "CARTBACK_SWEEP_SECONDS",
    ]


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    first = load_config(env).secret_key
    path = tmp_path / "data" / "secret.key"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(env).secret_key == first
    assert list(path.parent.iterdir()) == [path]  # the temporary file is gone
    path.write_text("kept-from-before\n")
    assert load_config(env).secret_key == "kept-from-before"


def test_an_empty_secret_file_is_refused_not_used(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    path.parent.mkdir()
    path.write_text("\n")
    with pytest.raises(ConfigError, match="^CARTBACK_DATA_DIR: .*secret.key is empty"):
        load_config(env_for(tmp_path))
    path.unlink()
    assert load_config(env_for(tmp_path)).secret_key == path.read_text().strip()


def test_a_data_dir_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="^CARTBACK_DATA_DIR: cannot keep the secret key"):
        load_config({"CARTBACK_DATA_DIR": str(blocker / "data")})


def test_without_a_mapping_the_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTBACK_SECRET_KEY", "from-environ" * 3)
    monkeypatch.setenv("CARTBACK_SWEEP_SECONDS", "7")
    monkeypatch.setenv("CARTBACK_DATA_DIR", str(tmp_path))
    config = load_config()
    assert (config.secret_key, config.sweep_seconds, config.data_dir) == ("from-environ" * 3, 7.0, tmp_path)
    # A mapping given is all that is read.
    assert load_config({"CARTBACK_SECRET_KEY": "given" * 7}).sweep_seconds == 30.0
    monkeypatch.setenv("CARTBACK_SMTP_URL", "smtp://mail.example:0")
    with pytest.raises(ConfigError, match="^CARTBACK_SMTP_URL: port must be 1-65535$"):
        load_config()


def test_a_config_built_in_code_parses_its_smtp_url() -> None:
    config = Config(secret_key="k", smtp_url="smtps://u:p@mail.example")
    assert config.smtp == SmtpSettings("mail.example", 465, True, False, "u", "p")
    assert "p@" not in repr(config) and "'p'" not in repr(config.smtp)
    with pytest.raises(ConfigError, match="^CARTBACK_SMTP_URL: no host$"):
        Config(smtp_url="smtp://")


def test_smtp_url_forms() -> None:
    assert SmtpSettings.from_url("smtp://mail.example") == SmtpSettings("mail.example", 25, False, False, None, None)
    assert SmtpSettings.from_url("SMTP://Mail.Example:2525/").port == 2525
    assert SmtpSettings.from_url("smtp://[2001:db8::1]:26").hostname == "2001:db8::1"
    s = SmtpSettings.from_url("smtp://u%C3%BC:p%2Fw%3F%23@mail.example")
    assert (s.username, s.password) == ("uü", "p/w?#")
    assert SmtpSettings.from_url("smtp://u:@mail.example").password == ""


def cartback_command() -> list[str]:
    script = Path(sys.executable).parent / "cartback"
    return [str(script)] if script.exists() else [sys.executable, "-m", "collector"]


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"]])
def test_cartback_with_a_bad_smtp_url_exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CARTBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'cartback.db'}",
        "CARTBACK_DATA_DIR": str(tmp_path / "data"),
        "CARTBACK_SMTP_URL": "smtp://shop:hunter2@mail.example:99999",
    }
    result = subprocess.run(
        [*cartback_command(), *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "cartback: error: CARTBACK_SMTP_URL: port must be 1-65535\n"
    assert result.stdout == ""
    assert not (tmp_path / "cartback.db").exists()  # refused before anything was touched
