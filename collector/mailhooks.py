"""`POST /hooks/mail/{provider}`: bounces and complaints reported by the mail provider put addresses on the suppression list.

Each provider's delivery is verified as that provider documents it, before anything is read:
- `ses`: Amazon SES notifications through SNS; the SNS signature (collector/sns.py) and the topic
  (CARTBACK_SNS_TOPIC_ARNS) are checked; a SubscriptionConfirmation is confirmed by fetching its
  SubscribeURL. Permanent bounces and complaints suppress.
- `postmark`: the bounce and spam-complaint webhooks, with HTTP basic auth in the webhook's URL
  (CARTBACK_POSTMARK_WEBHOOK_AUTH = `user:password`). Hard bounces and complaints suppress.
- `mailgun`: the `failed` (severity permanent) and `complained` events, verified by the HMAC-SHA256
  of timestamp and token with CARTBACK_MAILGUN_SIGNING_KEY; an old timestamp or a token seen
  before is refused (a replay).

A provider not configured answers 404; a delivery that fails verification 401 and stores nothing;
a verified one 200, whatever it reports (other events are ignored, so the provider does not retry).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.addresses import check_email
from collector.config import Config
from collector.httputil import BodyIncomplete, BodyTooLarge, error, read_body
from collector.services import services
from collector.sns import SnsError, SnsVerifier, is_sns_url, load_certificates
from collector.store import Database, suppressions

log = logging.getLogger("cartback.mailhooks")
MAX_HOOK_BODY = 256 * 1024  # an SES notification carries the message's headers
MAILGUN_MAX_AGE = 15 * 60.0
_OUR_MESSAGE_ID = re.compile(r"<?cartback\.([A-Za-z0-9_]+)\.(\d+)@")


@dataclass(frozen=True)
class MailEvent:
    kind: str  # bounce | complaint
    email: str
    detail: str
    message_ids: tuple[str, ...] = ()


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- Amazon SES through SNS -----------------------------------------------------------------------
_verifiers: dict[str, SnsVerifier] = {}


def sns_verifier(config: Config) -> SnsVerifier:
    key = str(config.sns_cert_file or "")
    if key not in _verifiers:
        trusted = load_certificates(Path(key).read_bytes()) if key else None
        _verifiers[key] = SnsVerifier(trusted)
    return _verifiers[key]


def ses_events(notification: dict[str, Any]) -> list[MailEvent]:
    """The suppressing events of one SES notification (`notificationType`, or `eventType` from event publishing)."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    ids: list[str] = []
    common = mail.get("commonHeaders") or {}
    if isinstance(common.get("messageId"), str):
        ids.append(common["messageId"])
    for h in mail.get("headers") or []:
        if isinstance(h, dict) and str(h.get("name", "")).lower() in ("message-id", "x-cartback-site"):
            ids.append(str(h.get("value", "")))
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return []  # Transient and Undetermined bounces may go through later
        detail = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        return [
            MailEvent(
                "bounce", str(r.get("emailAddress")), f"{detail} {r.get('diagnosticCode') or ''}".strip(), tuple(ids)
            )
            for r in bounce.get("bouncedRecipients") or []
            if isinstance(r, dict) and r.get("emailAddress")
        ]
    if kind == "Complaint":
        complaint = notification.get("complaint") or {}
        detail = f"complaint {complaint.get('complaintFeedbackType') or ''}".strip()
        return [
            MailEvent("complaint", str(r.get("emailAddress")), detail, tuple(ids))
            for r in complaint.get("complainedRecipients") or []
            if isinstance(r, dict) and r.get("emailAddress")
        ]
    return []


async def _confirm_subscription(message: dict[str, Any], config: Config) -> None:
    url = str(message.get("SubscribeURL") or "")
    parts = urlsplit(url)
    # A URL from a trusted signer's message is trusted; otherwise only SNS's own https endpoint.
    if config.sns_cert_file is None and not is_sns_url(url):
        raise Refused(400, "SubscribeURL is not an SNS endpoint")
    if parts.scheme not in ("http", "https"):
        raise Refused(400, "SubscribeURL is not an http(s) URL")
    try:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
            r = await client.get(url)
    except httpx.HTTPError as exc:
        raise Refused(502, f"confirming the subscription failed: {type(exc).__name__}") from None
    if r.status_code != 200:
        raise Refused(502, f"confirming the subscription failed: SNS answered {r.status_code}")
    log.info("SNS subscription to %s confirmed", message.get("TopicArn"))


async def ses(request: Request, body: bytes, config: Config) -> list[MailEvent]:
    if not config.sns_topic_arns:
        raise Refused(404, "Amazon SES hooks are not configured (set CARTBACK_SNS_TOPIC_ARNS)")
    try:
        message = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(message, dict):
        raise Refused(400, "the body is not an SNS message")
    try:
        await sns_verifier(config).verify(message)
    except SnsError as exc:
        raise Refused(401, str(exc)) from None
    if message.get("TopicArn") not in config.sns_topic_arns:
        raise Refused(401, "the SNS topic is not one of CARTBACK_SNS_TOPIC_ARNS")
    if message["Type"] == "SubscriptionConfirmation":
        await _confirm_subscription(message, config)
        return []
    if message["Type"] != "Notification":
        return []
    try:
        notification = json.loads(message["Message"])
    except ValueError:
        return []  # a test message from the console: verified, nothing to do
    return ses_events(notification) if isinstance(notification, dict) else []


# -- Postmark -----------------------------------------------------------------------------------
POSTMARK_HARD = ("HardBounce", "BadEmailAddress", "ManuallyDeactivated")


def postmark_events(record: dict[str, Any]) -> list[MailEvent]:
    kind, typ, addr = record.get("RecordType"), record.get("Type"), record.get("Email")
    if not isinstance(addr, str) or not addr:
        return []
    ids = (str(record["MessageID"]),) if record.get("MessageID") else ()
    if kind == "SpamComplaint" or typ == "SpamComplaint":
        return [MailEvent("complaint", addr, "SpamComplaint", ids)]
    if kind in ("Bounce", None) and typ in POSTMARK_HARD:
        return [MailEvent("bounce", addr, f"{typ}: {record.get('Description') or ''}".strip(), ids)]
    return []


def _basic_auth(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


async def postmark(request: Request, body: bytes, config: Config) -> list[MailEvent]:
    if not config.postmark_webhook_auth:
        raise Refused(404, "Postmark hooks are not configured (set CARTBACK_POSTMARK_WEBHOOK_AUTH)")
    given = _basic_auth(request)
    if given is None or not hmac.compare_digest(given.encode(), config.postmark_webhook_auth.encode()):
        raise Refused(401, "wrong or missing basic auth")
    try:
        record = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(record, dict):
        raise Refused(400, "the body is not a Postmark webhook record")
    return postmark_events(record)


# -- Mailgun --------------------------------------------------------------------------------------
_seen_tokens: OrderedDict[str, float] = OrderedDict()


def mailgun_signature_ok(key: str, timestamp: str, token: str, signature: str) -> bool:
    expected = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def mailgun_events(data: dict[str, Any]) -> list[MailEvent]:
    event, addr = data.get("event"), data.get("recipient")
    if not isinstance(addr, str) or not addr:
        return []
    headers = (data.get("message") or {}).get("headers") or {}
    ids = (str(headers["message-id"]),) if isinstance(headers, dict) and headers.get("message-id") else ()
    if event == "complained":
        return [MailEvent("complaint", addr, "complained", ids)]
    if event == "failed" and data.get("severity") == "permanent":
        status = data.get("delivery-status") or {}
        detail = f"failed permanent {status.get('code') or ''} {data.get('reason') or ''}".strip()
        return [MailEvent("bounce", addr, detail, ids)]
    return []


async def mailgun(request: Request, body: bytes, config: Config) -> list[MailEvent]:
    if not config.mailgun_signing_key:
        raise Refused(404, "Mailgun hooks are not configured (set CARTBACK_MAILGUN_SIGNING_KEY)")
    try:
        doc = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    sig = doc.get("signature") if isinstance(doc, dict) else None
    if not isinstance(sig, dict) or not all(
        isinstance(sig.get(k), str | int) for k in ("timestamp", "token", "signature")
    ):
        raise Refused(401, "no signature")
    timestamp, token, signature = str(sig["timestamp"]), str(sig["token"]), str(sig["signature"])
    if not mailgun_signature_ok(config.mailgun_signing_key, timestamp, token, signature):
        raise Refused(401, "the signature does not verify")
    now = time.time()
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise Refused(401, "the timestamp is not a number") from None
    if age > MAILGUN_MAX_AGE:
        raise Refused(401, "the timestamp is too old (a replay?)")
    while _seen_tokens and next(iter(_seen_tokens.values())) < now - MAILGUN_MAX_AGE:
        _seen_tokens.popitem(last=False)
    if token in _seen_tokens:
        raise Refused(401, "this token was used before (a replay)")
    _seen_tokens[token] = now
    data = doc.get("event-data")
    return mailgun_events(data) if isinstance(data, dict) else []


PROVIDERS = {"ses": ses, "postmark": postmark, "mailgun": mailgun}


# -- the route -------------------------------------------------------------------------------------
async def _source(db: Database, event: MailEvent) -> tuple[int | None, int | None]:
    """(site id, email id) of the reminder the event is about: by our Message-ID where the provider
    kept it, else the latest reminder sent to the address."""
    for mid in event.message_ids:
        m = _OUR_MESSAGE_ID.search(mid)
        if m:
            row = await db.fetchone(
                "SELECT e.id, e.site_id FROM emails e JOIN sites s ON s.id = e.site_id WHERE e.id = ? AND s.key = ?",
                int(m.group(2)),
                m.group(1),
            )
            if row:
                return int(row["site_id"]), int(row["id"])
    row = await db.fetchone(
        "SELECT id, site_id FROM emails WHERE to_addr = ? AND status = 'sent' ORDER BY sent_at DESC LIMIT 1",
        event.email.strip().lower(),
    )
    return (int(row["site_id"]), int(row["id"])) if row else (None, None)


async def mail_hook(request: Request) -> Response:
    provider = request.path_params["provider"]
    handler = PROVIDERS.get(provider)
    if handler is None:
        return error(404, f"unknown mail provider {provider!r} (ses, postmark, mailgun)")
    svc = services(request)
    try:
        body = await read_body(request, MAX_HOOK_BODY)
    except BodyTooLarge:
        return error(413, "body too large")
    except BodyIncomplete:
        return error(400, "incomplete body")
    try:
        events = await handler(request, body, svc.config)
    except Refused as exc:
        return error(exc.status, exc.reason)
    suppressed = 0
    for event in events:
        try:
            check_email(event.email)
        except ValueError:
            log.warning("%s reported %s for an address that is not valid: %r", provider, event.kind, event.email)
            continue
        site_id, email_id = await _source(svc.store.db, event)
        suppressed += await suppressions.record_event(
            svc.store.db,
            provider,
            event.kind,
            event.email,
            site_id=site_id,
            email_id=email_id,
            detail=event.detail,
            suppress=True,
            now=time.time(),
        )
    return JSONResponse({"ok": True, "events": len(events), "suppressed": suppressed})


routes = [Route("/hooks/mail/{provider}", mail_hook, methods=["POST"])]
