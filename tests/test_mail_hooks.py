"""`POST /hooks/mail/{provider}`: each provider's documented bounce and complaint samples suppress; forged ones are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.config import Config, load_config
from collector.sns import canonical_string
from collector.store import suppressions
from tests.conftest import TEST_SECRET
from tests.fakes.mail_providers import TOPIC, FakeSns, basic_auth, mailgun_signed, sample

PM_USER, PM_PASS = "cartback", "pm-secret"
MG_KEY = "key-mailgun-signing-test"


@pytest.fixture
def sns(tmp_path: Path):
    fake = FakeSns(tmp_path)
    yield fake
    fake.close()


@pytest.fixture
def config(tmp_path: Path, database_url: str, sns: FakeSns) -> Config:
    return Config(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url="https://collector.test",
        sweep_seconds=0,
        data_dir=tmp_path / "data",
        sns_cert_file=sns.cert_file,
        sns_topic_arns=(TOPIC,),
        postmark_webhook_auth=f"{PM_USER}:{PM_PASS}",
        mailgun_signing_key=MG_KEY,
    )


async def listed(store) -> dict[str, str]:
    return {r["email"]: r["reason"] for r in await suppressions.list_all(store.db)}


# -- the fakes keep to the documented shapes ---------------------------------------------------------
def test_the_fake_sns_writes_the_documented_envelope(sns: FakeSns) -> None:
    documented = sample("sns_notification.json")
    made = sns.notification(sample("ses_bounce.json"))
    assert set(made) == set(documented) - {"Subject"}
    assert made["SignatureVersion"] == "1" and json.loads(made["Message"])["notificationType"] == "Bounce"
    confirmation = sns.subscription_confirmation()
    assert set(confirmation) == set(sample("sns_subscription_confirmation.json"))
    # The fake's canonical string is the collector's, field for field (the documented order).
    assert FakeSns.canonical(made) == canonical_string(made)
    assert FakeSns.canonical(confirmation) == canonical_string(confirmation)
    assert canonical_string(documented).startswith(b"Message\nHello world!\nMessageId\n")
    assert b"\nSubject\nMy First Message\n" in canonical_string(documented)


def test_the_samples_are_the_documented_shapes() -> None:
    bounce = sample("ses_bounce.json")
    assert bounce["bounce"]["bounceType"] == "Permanent" and bounce["bounce"]["bouncedRecipients"][0]["emailAddress"]
    assert sample("ses_complaint.json")["complaint"]["complainedRecipients"][0]["emailAddress"]
    pm = sample("postmark_bounce.json")
    assert (pm["RecordType"], pm["Type"], pm["TypeCode"]) == ("Bounce", "HardBounce", 1)
    assert sample("postmark_spam_complaint.json")["RecordType"] == "SpamComplaint"
    mg = sample("mailgun_failed_permanent.json")
    assert set(mg) == {"signature", "event-data"} and set(mg["signature"]) == {"timestamp", "token", "signature"}
    assert (mg["event-data"]["event"], mg["event-data"]["severity"]) == ("failed", "permanent")
    assert sample("mailgun_complained.json")["event-data"]["event"] == "complained"


# -- Amazon SES through SNS -------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1", "2"])
async def test_ses_bounce_and_complaint_suppress(client, store, sns, version):
    r = await client.post(
        "/hooks/mail/ses", content=json.dumps(sns.notification(sample("ses_bounce.json"), version=version))
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/hooks/mail/ses", content=json.dumps(sns.notification(sample("ses_complaint.json"), version=version))
    )
    assert r.status_code == 200, r.text
    r = await client.post("/hooks/mail/ses", content=json.dumps(sns.notification(sample("ses_transient_bounce.json"))))
    assert r.status_code == 200 and r.json()["suppressed"] == 0
    assert await listed(store) == {"jane@example.com": "bounce", "richard@example.com": "complaint"}


async def test_ses_subscription_confirmation_is_confirmed(client, store, sns):
    r = await client.post("/hooks/mail/ses", content=json.dumps(sns.subscription_confirmation()))
    assert r.status_code == 200, r.text
    assert len(sns.confirmed) == 1 and "Action=ConfirmSubscription" in sns.confirmed[0]


async def test_forged_ses_notifications_are_refused(client, store, sns, tmp_path):
    good = sns.notification(sample("ses_bounce.json"))
    # A changed byte of the message.
    tampered = {**good, "Message": good["Message"].replace("jane@", "jana@")}
    r = await client.post("/hooks/mail/ses", content=json.dumps(tampered))
    assert r.status_code == 401
    # Signed by someone else's certificate.
    (tmp_path / "other").mkdir()
    other = FakeSns(tmp_path / "other")
    try:
        r = await client.post("/hooks/mail/ses", content=json.dumps(other.notification(sample("ses_bounce.json"))))
        assert r.status_code == 401
    finally:
        other.close()
    # Validly signed, but from a topic we never subscribed to.
    r = await client.post(
        "/hooks/mail/ses",
        content=json.dumps(
            sns.notification(sample("ses_bounce.json"), topic="arn:aws:sns:us-east-1:999999999999:evil")
        ),
    )
    assert r.status_code == 401 and "topic" in r.json()["error"]
    # No signature at all, and bodies that are not SNS messages.
    unsigned = {k: v for k, v in good.items() if k != "Signature"}
    for body in (json.dumps(unsigned), "not json", "[]", json.dumps({**good, "Type": "Other"})):
        r = await client.post("/hooks/mail/ses", content=body)
        assert r.status_code in (400, 401), (body[:40], r.status_code)
    assert await listed(store) == {}
    assert sns.confirmed == []


# -- Postmark -------------------------------------------------------------------------------------------
async def test_postmark_bounce_and_complaint_suppress(client, store):
    auth = basic_auth(PM_USER, PM_PASS)
    for name in ("postmark_bounce.json", "postmark_spam_complaint.json", "postmark_soft_bounce.json"):
        r = await client.post("/hooks/mail/postmark", json=sample(name), headers=auth)
        assert r.status_code == 200, r.text
    assert await listed(store) == {"john@example.com": "bounce", "complainer@example.com": "complaint"}


async def test_postmark_without_the_right_basic_auth_is_refused(client, store):
    for headers in ({}, basic_auth(PM_USER, "wrong"), {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
        r = await client.post("/hooks/mail/postmark", json=sample("postmark_bounce.json"), headers=headers)
        assert r.status_code == 401
    assert await listed(store) == {}


# -- Mailgun -----------------------------------------------------------------------------------------------
async def test_mailgun_permanent_failure_and_complaint_suppress(client, store):
    for name in ("mailgun_failed_permanent.json", "mailgun_complained.json", "mailgun_failed_temporary.json"):
        r = await client.post("/hooks/mail/mailgun", json=mailgun_signed(sample(name), MG_KEY))
        assert r.status_code == 200, r.text
    assert await listed(store) == {"alice@example.com": "bounce", "carol@example.com": "complaint"}


async def test_forged_or_replayed_mailgun_events_are_refused(client, store):
    # The documented sample as it is: signed with a key that is not ours.
    r = await client.post("/hooks/mail/mailgun", json=sample("mailgun_failed_permanent.json"))
    assert r.status_code == 401
    r = await client.post(
        "/hooks/mail/mailgun", json=mailgun_signed(sample("mailgun_failed_permanent.json"), "other-key")
    )
    assert r.status_code == 401
    old = mailgun_signed(sample("mailgun_failed_permanent.json"), MG_KEY, timestamp=1529006854)
    r = await client.post("/hooks/mail/mailgun", json=old)
    assert r.status_code == 401 and "old" in r.json()["error"]
    fresh = mailgun_signed(sample("mailgun_complained.json"), MG_KEY)
    assert (await client.post("/hooks/mail/mailgun", json=fresh)).status_code == 200
    r = await client.post("/hooks/mail/mailgun", json=fresh)
    assert r.status_code == 401 and "replay" in r.json()["error"]
    assert await listed(store) == {"carol@example.com": "complaint"}


# -- shared ----------------------------------------------------------------------------------------------
async def test_unknown_or_unconfigured_providers_answer_404(client, tmp_path, database_url):
    r = await client.post("/hooks/mail/sendgrid", json={})
    assert r.status_code == 404
    import httpx
    from asgi_lifespan import LifespanManager

    from collector.app import create_app

    bare = create_app(
        Config(database_url=database_url, secret_key=TEST_SECRET, data_dir=tmp_path / "d2", sweep_seconds=0)
    )
    async with (
        LifespanManager(bare),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://x") as c,
    ):
        for provider in ("ses", "postmark", "mailgun"):
            r = await c.post(f"/hooks/mail/{provider}", json={})
            assert r.status_code == 404 and "not configured" in r.json()["error"]


def test_the_configuration_reads_the_provider_variables(tmp_path: Path, sns: FakeSns) -> None:
    env = {
        "CARTBACK_SECRET_KEY": TEST_SECRET,
        "CARTBACK_DATA_DIR": str(tmp_path),
        "CARTBACK_SNS_CERT_FILE": str(sns.cert_file),
        "CARTBACK_SNS_TOPIC_ARNS": f"{TOPIC}, arn:aws:sns:eu-west-1:1:b",
        "CARTBACK_POSTMARK_WEBHOOK_AUTH": "u:p",
        "CARTBACK_MAILGUN_SIGNING_KEY": "k",
    }
    config = load_config(env)
    assert config.sns_topic_arns == (TOPIC, "arn:aws:sns:eu-west-1:1:b")
    assert config.sns_cert_file == sns.cert_file and config.postmark_webhook_auth == "u:p"
    from collector.config import ConfigError

    for name, value in (
        ("CARTBACK_SNS_CERT_FILE", str(tmp_path / "missing.pem")),
        ("CARTBACK_POSTMARK_WEBHOOK_AUTH", "no-colon"),
        ("CARTBACK_SNS_TOPIC_ARNS", "not-an-arn"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_config({**env, name: value})


async def test_a_bounce_is_credited_to_the_site_of_the_reminder(app, client, store, sns: Any, smtp):
    """The event is recorded against the site whose reminder the address got last."""
    import time

    from collector.recovery.sweep import sweep_once
    from tests.conftest import SHOP_ORIGIN
    from tests.recovery_support import MINUTE, MUG, Shopper, rows, settings, sweep_state

    site = await store.sites.create(
        "Test shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=[{"delay_minutes": 0, "subject": "Hi"}])
    )
    s = Shopper(client, site)
    await s.lead("jane@example.com")
    await s.cart(MUG)
    await sweep_once(sweep_state(app, smtp.url), now=time.time() + MINUTE)
    r = await client.post("/hooks/mail/ses", content=json.dumps(sns.notification(sample("ses_bounce.json"))))
    assert r.status_code == 200
    events = await rows(store, "SELECT provider, kind, email, site_id FROM mail_events")
    assert [(e["provider"], e["kind"], e["email"], e["site_id"]) for e in events] == [
        ("ses", "bounce", "jane@example.com", site.id)
    ]


def test_only_sns_hosts_are_trusted_for_certificates_and_confirmations() -> None:
    from collector.sns import is_sns_cert_url, is_sns_url

    assert is_sns_cert_url("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem")
    assert is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription")
    for url in (
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-west-2.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.us-west-2.amazonaws.com/x.pem",
        "https://sns.us-west-2.amazonaws.com@evil.example/x.pem",
    ):
        assert not is_sns_cert_url(url), url
