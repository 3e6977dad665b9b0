"""The `cartback` command as a store owner runs it: real processes, real SQLite files, exit statuses."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from tests.conftest import LiveCollector


@pytest.fixture
def cli(tmp_path) -> LiveCollector:
    # The collector is not started: these tests only run commands against its database.
    return LiveCollector(tmp_path)


def test_sites_create_json_prints_key_and_the_exact_tag(cli):
    out = cli.create_site(["https://shop.example"], name="My shop")
    assert out["key"].startswith("pk_")
    assert out["snippet"].startswith(f'<script async src="{cli.url}/s/{out["key"]}.js"></script>')
    assert "window.cartback = window.cartback || function ()" in out["snippet"]
    listed = json.loads(cli.cli("sites", "list", "--json").stdout)
    assert [s["key"] for s in listed] == [out["key"]] and listed[0]["origins"] == ["https://shop.example"]


@pytest.mark.parametrize(
    "settings, names",
    [
        ({"popup": {"delay_ms": -5}}, "popup.delay_ms"),
        ({"popup": {"colour": "red"}}, "popup.colour"),
        ({"recovery": {"steps": [{"delay_minutes": "soon"}]}}, "recovery.steps.0.delay_minutes"),
        ({"recovery": {"from": "nobody"}}, "recovery.from"),
        ({"webhooks": [{"url": "ftp://x"}]}, "webhooks.0.url"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_settings_exit_2_naming_the_key_and_keep_the_old_ones(cli, tmp_path, settings, names):
    site = cli.create_site(["https://shop.example"], settings={"popup": {"headline": "Kept"}})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(settings))
    result = cli.cli("sites", "update", site["key"], "--settings", str(path), check=False)
    assert result.returncode == 2
    assert names in result.stderr and len(result.stderr.strip().splitlines()) == 1
    stored = cli.query("SELECT settings FROM sites")[0]["settings"]
    assert json.loads(stored)["popup"]["headline"] == "Kept"


def test_settings_defaults_fill_what_is_left_out(cli):
    site = cli.create_site(["https://shop.example"], settings={"popup": {"headline": "Hi"}})
    stored = json.loads(cli.query("SELECT settings FROM sites WHERE key = ?", site["key"])[0]["settings"])
    assert stored["popup"]["headline"] == "Hi" and stored["popup"]["sensitivity_px"] == 20
    assert stored["recovery"]["abandon_after_minutes"] == 60 and stored["experiments"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["sites", "create", "--name", "X", "--origin", "shop.example"],
        ["sites", "create", "--name", "X", "--origin", "https://shop.example/path"],
        ["sites", "create", "--name", "X"],
        ["sites", "update", "pk_missing", "--settings", "/nonexistent.json"],
        ["leads", "export", "--site", "pk_missing"],
        ["leads", "export", "--site", "pk_missing", "--since", "last week"],
        ["nonsense"],
    ],
)
def test_bad_usage_exits_2_with_one_line(cli, args):
    result = cli.cli(*args, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_unparseable_settings_file_exits_2(cli, tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    result = cli.cli(
        "sites", "create", "--name", "X", "--origin", "https://a.example", "--settings", str(path), check=False
    )
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_users_create_reads_the_password_from_stdin_and_hashes_it(cli):
    result = cli.cli(
        "users", "create", "--email", "Owner@Shop.example", "--password-stdin", input="correct horse battery\n"
    )
    assert "owner@shop.example" in result.stdout
    row = cli.query("SELECT email, password_hash FROM users")[0]
    assert row["email"] == "owner@shop.example" and row["password_hash"].startswith("scrypt$")
    assert "correct horse" not in row["password_hash"]
    again = cli.cli(
        "users", "create", "--email", "owner@shop.example", "--password-stdin", input="another password\n", check=False
    )
    assert again.returncode == 2
    short = cli.cli("users", "create", "--email", "x@shop.example", "--password-stdin", input="short\n", check=False)
    assert short.returncode == 2


def test_tokens_are_shown_once_and_stored_hashed(cli):
    token = cli.cli("tokens", "create", "--name", "erp").stdout.strip()
    assert token.startswith("cbt_") and len(token) > 30
    stored = cli.query("SELECT token_hash FROM tokens")[0]["token_hash"]
    assert token not in stored and len(stored) == 64


def test_leads_export_matches_the_api(cli, tmp_path):
    site = cli.create_site(["https://shop.example"])
    token = cli.cli("tokens", "create", "--name", "t").stdout.strip()
    cli.start()
    try:
        for i, email in enumerate(["ann@example.com", "=cmd@example.com", "bob@example.com"]):
            body = {"id": f"evt-lead-{i:05d}", "vid": f"visitor-{i:05d}", "email": email, "consent": i % 2 == 0}
            r = httpx.post(
                f"{cli.url}/c/{site['key']}/lead", content=json.dumps(body), headers={"Origin": "https://shop.example"}
            )
            assert r.status_code == 200, r.text
        api = httpx.get(
            f"{cli.url}/api/v1/sites/{site['key']}/leads.csv", headers={"Authorization": f"Bearer {token}"}
        ).text
    finally:
        cli.stop()
    stdout = cli.cli("leads", "export", "--site", site["key"]).stdout
    out = tmp_path / "leads.csv"
    cli.cli("leads", "export", "--site", site["key"], "--output", str(out))
    assert stdout.replace("\r\n", "\n") == api.replace("\r\n", "\n")
    assert out.read_bytes() == api.encode()
    rows = list(csv.DictReader(io.StringIO(api)))
    assert [r["email"] for r in rows] == ["ann@example.com", "'=cmd@example.com", "bob@example.com"]


def test_migrate_is_repeatable(cli):
    first = cli.cli("migrate").stdout
    second = cli.cli("migrate").stdout
    assert "applied" in first and "up to date" in second
