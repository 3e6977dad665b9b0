"""Building reminder messages and sending them over SMTP (aiosmtplib, one connection per sweep).

Failures come out as one of three exceptions, which the sweep turns into database states:
- TemporaryFailure: this message may go through later (a 4xx answer); the connection is fine.
- ConnectionFailure: the server cannot be reached or dropped us (refused, timeout, TLS or
  login trouble, 421); this message and the rest of the sweep's batch wait for a later sweep.
- PermanentFailure: the server refused this message for good (a 5xx answer); not retried.
"""

from __future__ import annotations

import email.policy
import logging
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiosmtplib

from collector.config import SmtpSettings  # parsed from CARTBACK_SMTP_URL at start-up
from collector.recovery.render import RenderedEmail, one_line

log = logging.getLogger("cartback.mail")

# Long enough that no header we write is folded: Python folds a long unbroken header value
# (a List-Unsubscribe URL) into RFC 2047 encoded words, which mail clients do not read as a URL.
POLICY = email.policy.SMTP.clone(max_line_length=998)
# The bodies are encoded with RFC 2045's 76-character lines: quoted-printable soft breaks (6.7).
# (Python's quoted-printable encoder wraps at the policy's max_line_length, so it gets its own.)
BODY_POLICY = email.policy.SMTP.clone(max_line_length=76)
SMTP_TIMEOUT = 30.0


class SendError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(SendError):
    pass


class PermanentFailure(SendError):
    """`recipient`: the server refused the address itself (a 5xx to RCPT TO: user unknown, say),
    which suppresses it; a 5xx to the message (DATA) says nothing about the address."""

    def __init__(self, message: str, code: int | None = None, recipient: bool = False) -> None:
        super().__init__(message, code)
        self.recipient = recipient


class NeedsSmtpUtf8(SendError):
    """The address has a non-ASCII local part and the SMTP server does not offer SMTPUTF8: this
    email cannot go (a server matter, not the address's fault: it is not a bounce)."""


class ConnectionFailure(SendError):
    pass


def address_domain(addr: str) -> str:
    _, bare = parseaddr(addr)
    return bare.rpartition("@")[2] or "localhost"


def build_message(
    *,
    rendered: RenderedEmail,
    from_addr: str,
    to_addr: str,
    unsubscribe_url: str,
    message_id: str,
    now: float,
    feedback_id: str | None = None,
    site_header: str | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=BODY_POLICY)
    msg["Subject"] = rendered.subject
    msg["From"] = one_line(from_addr)
    msg["To"] = to_addr
    msg["Date"] = formatdate(now, usegmt=True)
    # The same id on a re-send after a crash lets mail systems see one message, not two.
    msg["Message-ID"] = message_id
    # RFC 8058 one-click unsubscribe; RFC 2369 for the link itself.
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if feedback_id:
        # Gmail's feedback loop reports complaints per Feedback-ID (campaign:customer:type:sender).
        msg["Feedback-ID"] = feedback_id
    if site_header:
        msg["X-Cartback-Site"] = site_header
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    # Headers are written with 998-octet lines (see POLICY); the bodies above are already encoded.
    msg.policy = POLICY
    return msg


def message_headers(msg: EmailMessage) -> dict[str, str]:
    """The top-level headers as a dict (for the dev mailbox)."""
    return {k: str(v) for k, v in msg.items()}


def message_bytes(msg: EmailMessage, utf8: bool = False) -> bytes:
    """The message as sent; `utf8` writes address headers in UTF-8, for an SMTPUTF8 transaction."""
    return msg.as_bytes(policy=POLICY.clone(utf8=True) if utf8 else POLICY)


class SmtpSender:
    """One SMTP connection, opened on first use and kept for the whole sweep."""

    def __init__(self, settings: SmtpSettings, timeout: float = SMTP_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None
        self.connections = 0

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.hostname,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            username=s.username,
            password=s.password,
            timeout=self.timeout,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise ConnectionFailure(f"SMTP {exc.code} {exc.message}", exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            raise ConnectionFailure(f"cannot reach the SMTP server: {exc}") from exc
        self.connections += 1
        return smtp

    async def send(self, sender: str, recipient: str, data: bytes, smtputf8: bool = False) -> None:
        """Sends one message; `smtputf8` for a recipient whose address needs it (see needs_smtputf8)."""
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = await self._connect()
        smtp = self._smtp
        if smtputf8 and not smtp.supports_extension("smtputf8"):
            raise NeedsSmtpUtf8("the address needs SMTPUTF8, which the SMTP server does not offer")
        try:
            await smtp.sendmail(sender, [recipient], data, mail_options=["SMTPUTF8"] if smtputf8 else [])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first: Any = exc.recipients[0] if exc.recipients else None
            code = getattr(first, "code", 550)
            text = f"SMTP {code} {getattr(first, 'message', '')}".strip()
            if 400 <= code < 500:
                raise TemporaryFailure(text, code) from exc
            raise PermanentFailure(text, code, recipient=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.code} {exc.message}"
            if exc.code == 421 or not smtp.is_connected:
                await self._drop()
                raise ConnectionFailure(text, exc.code) from exc
            if 400 <= exc.code < 500:
                raise TemporaryFailure(text, exc.code) from exc
            if 500 <= exc.code < 600:
                raise PermanentFailure(text, exc.code) from exc
            raise TemporaryFailure(text, exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._drop()
            raise ConnectionFailure(f"SMTP connection lost: {exc}") from exc

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except Exception:  # noqa: BLE001 - the messages are sent; a rude goodbye is fine
                smtp.close()
