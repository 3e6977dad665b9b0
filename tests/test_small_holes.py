"""The review's smaller holes (issue 13): the secret key file and data folder, a minimum secret
length, scrypt's cost and rehash on login, token and login management, no-store exports,
normalised origins, one-line settings texts and a From of exactly one address."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from pydantic import ValidationError

from collector.config import ConfigError, load_config
from collector.schemas import SiteSettings
from collector.security import hash_password, needs_rehash, verify_password
from tests.conftest import ROOT, SHOP_ORIGIN
from tests.dashboard_support import OWNER, PASSWORD, login
from tests.recovery_support import cli, cli_env


def test_the_secret_key_file_is_0600_in_a_0700_folder_and_one_key_wins_a_race(tmp_path):
    data = tmp_path / "data"
    code = (
        "import sys; from collector.config import load_config;"
        f" print(load_config({{'CARTBACK_DATA_DIR': {str(data)!r}}}).secret_key)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    keys = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
        keys.append(out.decode().strip())
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert (data / "secret.key").read_text().strip() == keys[0]
    assert stat.S_IMODE(os.stat(data / "secret.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert sorted(p.name for p in data.iterdir()) == ["secret.key"]  # no temporary file left


def test_a_short_secret_key_is_refused():
    with pytest.raises(ConfigError, match="^CARTBACK_SECRET_KEY: must be at least 32 characters"):
        load_config({"CARTBACK_SECRET_KEY": "short"})


def _old_hash(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_passwords_are_hashed_at_owasps_cost():
    stored = hash_password("correct horse")
    assert stored.split("$")[:4] == ["scrypt", "16384", "8", "5"] and not needs_rehash(stored)
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert needs_rehash(_old_hash("x"))


async def test_an_old_hash_is_rehashed_at_login(client, store):
    await store.users.create(OWNER, PASSWORD)
    await store.users.set_password_hash(OWNER, _old_hash(PASSWORD))
    await login(client, store)  # asserts the login succeeded
    stored = (await store.users.get(OWNER))["password_hash"]
    assert not needs_rehash(stored) and verify_password(PASSWORD, stored)
    assert (await client.get("/admin")).status_code == 200  # the new session is valid


async def test_tokens_and_logins_are_managed_from_the_command_line(client, store, config, tmp_path):
    env = cli_env(config.database_url, tmp_path)
    code, token, err = await cli(env, "tokens", "create", "--name", "reporting")
    token = token.strip()
    assert code == 0, err
    auth = {"Authorization": f"Bearer {token}"}
    site = await store.sites.create("Shop", [SHOP_ORIGIN])
    assert (await client.get(f"/api/v1/sites/{site.key}/stats", headers=auth)).status_code == 200
    code, out, err = await cli(env, "tokens", "list")
    assert code == 0 and "reporting" in out and token not in out
    token_id = out.split("\t")[0]
    code, out, err = await cli(env, "tokens", "revoke", token_id)
    assert code == 0, err
    assert (await client.get(f"/api/v1/sites/{site.key}/stats", headers=auth)).status_code == 401
    code, out, err = await cli(env, "tokens", "revoke", "9999")
    assert code == 2 and "no token" in err

    code, out, err = await cli(env, "users", "create", "--email", OWNER, "--password-stdin", stdin=b"first-password\n")
    assert code == 0, err
    code, out, err = await cli(env, "users", "list")
    assert code == 0 and OWNER in out
    await login(client, store, OWNER, "first-password")
    code, out, err = await cli(
        env, "users", "set-password", "--email", OWNER, "--password-stdin", stdin=b"second-password\n"
    )
    assert code == 0, err
    r = await client.get("/admin")
    assert r.status_code == 303  # the old session ended with the old password
    await login(client, store, OWNER, "second-password")
    user_id = (await store.users.get(OWNER))["id"]
    await store.db.write(
        lambda tx: tx.execute("INSERT INTO weekly_reports (user_id, week, sent_at) VALUES (?, '2026-W49', 0)", user_id)
    )
    code, out, err = await cli(env, "users", "delete", "--email", OWNER)
    assert code == 0, err
    assert (await client.get("/admin")).status_code == 303
    code, out, err = await cli(env, "users", "delete", "--email", OWNER)
    assert code == 2 and "no login" in err


async def test_exports_are_not_cached(client, site, token):
    r = await client.get(f"/api/v1/sites/{site.key}/leads.csv", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"


async def test_origins_are_normalised(client, store, config, tmp_path):
    env = cli_env(config.database_url, tmp_path)
    code, out, err = await cli(
        env, "sites", "create", "--name", "Shop", "--origin", "HTTPS://Shop.Example:443/", "--json"
    )
    assert code == 0, err
    key = json.loads(out)["key"]
    site = await store.sites.get(key, fresh=True)
    assert site.origins == ["https://shop.example"]
    body = json.dumps({"id": "origin-event-01", "vid": "origin-visitor-1", "type": "shown"})
    r = await client.post(f"/c/{key}/event", content=body, headers={"Origin": "https://shop.example"})
    assert r.status_code == 200
    for bad in ("https://shop.example/path", "ftp://shop.example", "https://shop.example:99999", "shop.example"):
        code, out, err = await cli(env, "sites", "create", "--name", "Bad", "--origin", bad)
        assert code == 2 and "--origin" in err, bad


@pytest.mark.parametrize(
    "doc",
    [
        {"popup": {"headline": "Wait!\r\nBcc: x@evil.example"}},
        {"popup": {"button": "Send\tcode"}},
        {"recovery": {"steps": [{"subject": "Hi\nthere"}]}},
        {"recovery": {"from": "Shop <shop@example.com>, other@evil.example"}},
        {"recovery": {"from": "shop@example.com, other@evil.example"}},
    ],
)
def test_one_line_texts_and_one_from_address(doc):
    with pytest.raises(ValidationError):
        SiteSettings.model_validate(doc)


def test_a_body_text_may_still_have_line_breaks():
    assert SiteSettings.model_validate({"popup": {"body": "Line one.\nLine two."}}).popup.body == "Line one.\nLine two."
