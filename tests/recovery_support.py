"""Helpers of the recovery tests: a real SMTP server (aiosmtpd on a free loopback port) and shop actions."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from collector.config import Config, load_config
from collector.schemas import SiteSettings
from collector.services import Services
from collector.store import Store
from tests.conftest import ROOT, SHOP_ORIGIN, TEST_SECRET, free_port

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}
MINUTE = 60.0


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    session: int = 0  # which SMTP connection carried it
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()


class Recorder:
    """The SMTP server's handler: records what it accepts; can answer 4xx/5xx on demand."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.data_reply: str | None = None  # e.g. "451 4.3.0 Try again later"
        self.refuse_rcpt: dict[str, str] = {}  # address -> reply, e.g. "550 5.1.1 No such user"
        self.accept_then_421: int | None = None  # accept this many, then answer 421 and hang up
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = self.refuse_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            if self.accept_then_421 is not None and len(self.messages) >= self.accept_then_421:
                return "421 4.3.2 Service shutting down"
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    id(session),
                    server.transport.get_extra_info("ssl_object") is not None,
                )
            )
        return "250 OK"

    def for_addr(self, addr: str) -> list[Received]:
        return [m for m in self.messages if addr in m.rcpt_tos]


class SmtpServer:
    """aiosmtpd in a thread on a free loopback port; stop() and start() again on the same port.

    tls: None (plain), "starttls" (STARTTLS required before MAIL) or "smtps" (TLS from the first byte),
    with `ssl_context` holding the server's certificate.
    """

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        tls: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        smtputf8: bool = False,
    ) -> None:
        self.port = free_port()
        self.smtputf8 = smtputf8
        self.handler = Recorder()
        self.auth = auth
        self.tls = tls
        self.ssl_context = ssl_context
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        scheme = {None: "smtp", "starttls": "smtp+starttls", "smtps": "smtps"}[self.tls]
        return f"{scheme}://127.0.0.1:{self.port}"

    def _authenticator(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        )
        if isinstance(auth_data, LoginPassword):
            self.handler.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.auth:
            kwargs.update(authenticator=self._authenticator, auth_required=True, auth_require_tls=False)
        if self.tls == "starttls":
            kwargs.update(tls_context=self.ssl_context, require_starttls=True)
        elif self.tls == "smtps":
            kwargs.update(ssl_context=self.ssl_context)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
                self.controller.start()
                return
            except Exception:  # the port may take a moment to be free again after stop()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


def self_signed_certificate(folder: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 made by openssl; returns (cert file, key file)."""
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def sweep_state(app: Any, smtp_url: str | None = None, store: Store | None = None) -> Services:
    """What the sweep reads: the app's store, config (with an SMTP URL) and signer."""
    base: Services = app.state.services
    config = load_config({**config_env(base.config), "CARTBACK_SMTP_URL": smtp_url or ""})
    return Services(config=config, store=store or base.store, signer=base.signer)


def config_env(config: Config) -> dict[str, str]:
    """The environment that loads `config` again."""
    return {
        "CARTBACK_DATABASE_URL": config.database_url,
        "CARTBACK_SECRET_KEY": config.secret_key,
        "CARTBACK_PUBLIC_URL": config.public_url,
        "CARTBACK_SMTP_URL": config.smtp_url or "",
        "CARTBACK_SWEEP_SECONDS": str(config.sweep_seconds),
        "CARTBACK_DATA_DIR": str(config.data_dir),
        "CARTBACK_WEBHOOK_ALLOW_PRIVATE": "1" if config.webhook_allow_private else "",
    }


def settings(**recovery: Any) -> SiteSettings:
    doc = {
        "abandon_after_minutes": 60,
        "from": "Test Shop <shop@shop.test>",
        "cart_url": "https://shop.test/cart",
        "attribution_days": 5,
        "steps": [
            {"delay_minutes": 0, "subject": "You left something in your cart", "preheader": "Your mug is waiting"},
            {"delay_minutes": 1440, "subject": "Still thinking? Here's 10% off", "discount_code": "SAVE10"},
        ],
    }
    doc.update(recovery)
    extra = doc.pop("_experiments", [])
    return SiteSettings.model_validate({"recovery": doc, "experiments": extra})


MUG = {
    "id": "sku-mug",
    "name": "Enamel mug",
    "price": 14.0,
    "quantity": 2,
    "image": "https://shop.test/img/mug.png",
    "url": "https://shop.test/p/mug",
}
EVIL = {"id": "sku-evil", "name": "<img src=x onerror=alert(1)>", "price": 3.5, "quantity": 1}


class Shopper:
    """One shopper's browser, talking to the ingest routes like the snippet does."""

    _n = 0

    def __init__(self, client: Any, site: Any, vid: str | None = None) -> None:
        Shopper._n += 1
        self.client = client
        self.site = site
        self.vid = vid or f"visitor-{Shopper._n:06d}-{time.monotonic_ns() % 10**8}"
        self.seq = 0

    async def send(self, kind: str, **body: Any) -> None:
        self.seq += 1
        payload = {"id": f"e{self.seq:04d}-{self.vid}"[:64], "vid": self.vid, **body}
        r = await self.client.post(f"/c/{self.site.key}/{kind}", content=json.dumps(payload), headers=H)
        assert r.status_code == 200, r.text

    async def lead(self, email_addr: str) -> None:
        await self.send("lead", email=email_addr, consent=True)

    async def identify(self, email_addr: str) -> None:
        await self.send("identify", email=email_addr)

    async def cart(self, *items: dict[str, Any], currency: str = "EUR") -> None:
        await self.send("cart", items=list(items), currency=currency)

    async def purchase(self, order_id: str, value: float, currency: str = "EUR") -> None:
        await self.send("purchase", order_id=order_id, value=value, currency=currency)


async def rows(store: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
    return await store.db.fetchall(sql, *args)


async def one(store: Any, sql: str, *args: Any) -> dict[str, Any]:
    row = await store.db.fetchone(sql, *args)
    assert row is not None, sql
    return row


async def cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector",
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(), err.decode()


def cli_env(database_url: str, tmp_path, smtp_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
    env.update(
        {
            "CARTBACK_DATABASE_URL": database_url,
            "CARTBACK_SECRET_KEY": TEST_SECRET,
            "CARTBACK_PUBLIC_URL": "http://collector.test",
            "CARTBACK_DATA_DIR": str(tmp_path / "data"),
        }
    )
    if smtp_url:
        env["CARTBACK_SMTP_URL"] = smtp_url
    return env
