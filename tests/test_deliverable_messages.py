"""Messages that pass: DKIM that verifies against the published record, RFC 2045/5322 line limits, and
SpamAssassin (Debian's, offline) scoring a normal reminder and one with a 200-character product name <= 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any

import dkim
import pytest

from collector.recovery.dkim import create_key, list_keys
from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.recovery_support import MINUTE, MUG, Shopper, cli, cli_env, settings, sweep_state

STEPS = [
    {"delay_minutes": 0, "subject": "You left something in your cart"},
    {"delay_minutes": 60, "subject": "Still thinking? Here's 10% off", "discount_code": "SAVE10"},
]
LONG_NAME = (
    "Handmade enamel camping mug with a speckled blue glaze, a stainless steel rim, a matching lid and a "
    "gift box, dishwasher safe, 350 ml, the perfect present for hikers, campers and everyone who loves coffee"
)[:200]
LONG_ITEM = {
    **MUG,
    "name": LONG_NAME,
    "url": "https://shop.test/products/handmade-enamel-camping-mug-speckled-blue-glaze-stainless-steel-rim"
    "?variant=40123456789012&utm_source=cartback&utm_medium=email&utm_campaign=abandoned-cart-reminder",
    "image": "https://cdn.shop.test/s/files/1/0123/4567/8901/products/handmade-enamel-camping-mug-speckled"
    "-blue-glaze_1024x1024.png?v=1700000000",
}
# A name with no space to break at: one 200-character word, as some imports write SKUs.
UNBROKEN_ITEM = {**LONG_ITEM, "name": ("Handmade-enamel-camping-mug-speckled-blue-glaze-" * 5)[:200]}


async def sent_reminders(
    app, client, store, smtp, *items: dict[str, Any], from_addr: str = "Test Shop <shop@shop.test>"
):
    site = await store.sites.create(
        "Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=STEPS, **{"from": from_addr})
    )
    s = Shopper(client, site)
    await s.lead("ann@example.com")
    await s.cart(*items)
    state = sweep_state(app, smtp.url)
    t0 = time.time()
    await sweep_once(state, now=t0 + MINUTE)
    await sweep_once(state, now=t0 + 62 * MINUTE)
    assert len(smtp.messages) == 2
    return site, smtp.messages


def txt_record(domain: str, selector: str, value: str):
    """The DNS answer the test supplies to dkimpy (no network)."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        if name.decode().rstrip(".") == f"{selector}._domainkey.{domain}":
            return value.encode()
        return None

    return dnsfunc


async def test_every_reminder_verifies_with_the_published_record_and_fails_after_a_changed_byte(
    app, client, store, smtp, database_url, tmp_path
):
    env = cli_env(database_url, tmp_path)
    code, out, err = await cli(env, "dkim", "create", "--domain", "shop.test")
    assert code == 0, err
    line = out.strip()
    m = re.fullmatch(r'cartback\._domainkey\.shop\.test TXT ((?:"[^"]{1,255}" ?)+)', line)
    assert m, line
    value = "".join(re.findall(r'"([^"]*)"', m.group(1)))
    assert value.startswith("v=DKIM1; k=rsa; p=")
    _, messages = await sent_reminders(app, client, store, smtp, MUG)
    check = txt_record("shop.test", "cartback", value)
    for msg in messages:
        raw = msg.raw
        sig = raw.split(b"\r\n\r\n", 1)[0].decode()
        assert sig.startswith("DKIM-Signature:")
        header = re.search(r"DKIM-Signature:(.*?)\r\n(?!\s)", sig, re.S)
        assert header
        h_tag = re.sub(r"\s", "", re.search(r"\bh=([^;]*)", header.group(1)).group(1)).lower().split(":")
        for name in (
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ):
            assert name in h_tag, name
        assert "c=relaxed/relaxed" in re.sub(r"\s", "", header.group(1))
        assert "a=rsa-sha256" in re.sub(r"\s", "", header.group(1))
        assert dkim.verify(raw, dnsfunc=check)
        head, body = raw.split(b"\r\n\r\n", 1)
        i = body.index(b"Return")
        changed = head + b"\r\n\r\n" + body[:i] + b"X" + body[i + 1 :]
        assert not dkim.verify(changed, dnsfunc=check)
    # Rotation: `create` again makes a new key; the list shows the one record.
    code, out2, _ = await cli(env, "dkim", "create", "--domain", "shop.test", "--selector", "s2026")
    assert code == 0 and out2.startswith("s2026._domainkey.shop.test TXT ")
    keys = await list_keys(store.db)
    assert [(k.domain, k.selector) for k in keys] == [("shop.test", "s2026")]
    code, listed, _ = await cli(env, "dkim", "list")
    assert "shop.test" in listed and "s2026._domainkey.shop.test TXT" in listed


async def test_the_private_key_is_kept_encrypted(store, database_url, tmp_path, app):
    await create_key(store.db, "shop.test", "cartback", "a-secret")
    row = await store.db.fetchone("SELECT private_key FROM dkim_keys")
    assert row and "PRIVATE KEY" not in row["private_key"] and "MII" not in row["private_key"]


async def test_mail_from_a_domain_without_a_key_is_not_signed(app, client, store, smtp):
    await create_key(store.db, "other.test", "cartback", app.state.services.config.secret_key)
    _, messages = await sent_reminders(app, client, store, smtp, MUG)
    assert all(b"DKIM-Signature" not in m.raw.split(b"\r\n\r\n", 1)[0] for m in messages)


async def test_dkim_create_refuses_a_bad_domain_or_selector(database_url, tmp_path, app):
    env = cli_env(database_url, tmp_path)
    code, _, err = await cli(env, "dkim", "create", "--domain", "not a domain")
    assert code == 2 and "--domain" in err
    code, _, err = await cli(env, "dkim", "create", "--domain", "shop.test", "--selector", "bad_selector!")
    assert code == 2 and "--selector" in err


def line_lengths(raw: bytes) -> tuple[int, int]:
    """(longest line of any body part, longest line anywhere), in octets, CRLF excluded."""
    head, body = raw.split(b"\r\n\r\n", 1)
    body_lines = [line for line in body.split(b"\r\n") if not line.startswith(b"--") and b":" not in line[:40]]
    return max(len(x) for x in body_lines), max(len(x) for x in raw.split(b"\r\n"))


@pytest.mark.parametrize("item", [MUG, LONG_ITEM, UNBROKEN_ITEM], ids=["normal", "long-name", "unbroken-name"])
async def test_no_line_over_76_encoded_or_998_octets(app, client, store, smtp, item):
    _, messages = await sent_reminders(app, client, store, smtp, item)
    for msg in messages:
        assert b"Content-Transfer-Encoding: quoted-printable" in msg.raw
        body_max, any_max = line_lengths(msg.raw)
        assert body_max <= 76, body_max
        assert any_max <= 998, any_max
        assert item["name"][:60] in msg.part("html")
        assert msg.message["Feedback-ID"].endswith(":reminder:cartback")


def spamassassin_score(raw: bytes) -> tuple[float, str]:
    exe = shutil.which("spamassassin")
    assert exe, "Debian's spamassassin is missing: `make test` installs it (browser-deps)"
    # -L: local tests only (no DNS, no network checks); -t: test mode, the report appended.
    out = subprocess.run([exe, "-L", "-t"], input=raw, capture_output=True, timeout=120, check=False).stdout.decode(
        "utf-8", "replace"
    )
    m = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    assert m, out[:2000]
    report = out[out.find("Content analysis details:") :]
    return float(m.group(1)), report


@pytest.mark.parametrize("item", [MUG, LONG_ITEM, UNBROKEN_ITEM], ids=["normal", "long-name", "unbroken-name"])
async def test_spamassassin_scores_a_reminder_at_most_2(app, client, store, smtp, item, capsys):
    await create_key(store.db, "shop.test", "cartback", app.state.services.config.secret_key)
    _, messages = await sent_reminders(app, client, store, smtp, item)
    for n, msg in enumerate(messages):
        score, report = spamassassin_score(msg.raw)
        # Past pytest's capture, so the score is in every run's output (the done-when asks for it).
        with capsys.disabled():
            kind = {id(MUG): "normal", id(LONG_ITEM): "200-character product name"}.get(
                id(item), "200-character unbroken name"
            )
            rules = ", ".join(re.findall(r"^\s*(-?[\d.]+ [A-Z_0-9]+)", report, re.M)) or "none"
            print(f"\nSpamAssassin -L: {kind} reminder, step {n + 1}: score {score} (rules: {rules})")
        assert score <= 2.0, report
