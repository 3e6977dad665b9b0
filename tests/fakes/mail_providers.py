"""Fake mail providers, from their public documentation: an SNS that signs with its own certificate
(and answers the SubscribeURL on loopback), and Mailgun's and Postmark's ways of authenticating a delivery.

The sample payloads beside this file are the providers' documented examples (Amazon SES
notification contents, SNS message formats, Postmark's bounce and spam-complaint webhooks, Mailgun's
webhook event samples); tests/test_mail_hooks.py checks that the fakes keep to those shapes.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).parent
TOPIC = "arn:aws:sns:us-east-1:123456789012:cartback-ses"


def sample(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text())


class _ConfirmHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.confirmed.append(self.path)  # type: ignore[attr-defined]
        body = b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>ok</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class FakeSns:
    """Signs SNS messages as SNS does (RSA over the canonical string; SHA1 for SignatureVersion 1,
    SHA256 for 2) with a certificate of its own, which the collector is configured to trust."""

    def __init__(self, folder: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = folder / "sns-signing.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.server = http.server.HTTPServer(("127.0.0.1", 0), _ConfirmHandler)
        self.server.confirmed = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def confirmed(self) -> list[str]:
        return self.server.confirmed  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def canonical(message: dict[str, Any]) -> bytes:
        # As the SNS developer guide lists them, in this order (Subject only when present).
        if message["Type"] == "Notification":
            fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        else:
            fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        message = {**message, "SignatureVersion": version}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(self.canonical(message), padding.PKCS1v15(), algorithm)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def _base(self, kind: str, topic: str) -> dict[str, Any]:
        doc = copy.deepcopy(
            sample("sns_notification.json" if kind == "Notification" else "sns_subscription_confirmation.json")
        )
        doc.update(
            MessageId=str(uuid.uuid4()),
            TopicArn=topic,
            Timestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            SigningCertURL="https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000000000000.pem",
        )
        return doc

    def notification(self, ses_notification: dict[str, Any], topic: str = TOPIC, version: str = "1") -> dict[str, Any]:
        doc = self._base("Notification", topic)
        doc.pop("Subject", None)  # SES notifications carry no Subject
        doc["Message"] = json.dumps(ses_notification)
        return self.sign(doc, version)

    def subscription_confirmation(self, topic: str = TOPIC) -> dict[str, Any]:
        doc = self._base("SubscriptionConfirmation", topic)
        token = secrets.token_hex(32)
        port = self.server.server_address[1]
        doc.update(
            Token=token,
            Message=f"You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            SubscribeURL=f"http://127.0.0.1:{port}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
        )
        return self.sign(doc)


def mailgun_signed(doc: dict[str, Any], signing_key: str, timestamp: float | None = None) -> dict[str, Any]:
    """The documented event with a fresh signature: hex HMAC-SHA256 of timestamp + token."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    token = secrets.token_hex(25)
    sig = hmac.new(signing_key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {**doc, "signature": {"timestamp": ts, "token": token, "signature": sig}}


def basic_auth(user: str, password: str) -> dict[str, str]:
    """What an HTTP client sends for https://user:password@host/… (Postmark's webhook URL)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
