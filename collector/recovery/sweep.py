"""One pass of the sweep: mark quiet carts abandoned, send the reminders that are due, deliver webhooks, roll up days.

Run by the server every CARTBACK_SWEEP_SECONDS and by `cartback send-due`. Any number of
sweepers may run at once, in one process or many, on one machine or several: every email is
claimed in the database before it is sent (see collector/store/claims.py for how, and
collector/recovery/reminders.py for what a crash does).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from email.message import EmailMessage
from email.utils import parseaddr

from collector import webhooks
from collector.addresses import needs_smtputf8
from collector.analytics import rollup
from collector.config import Config
from collector.locales import effective, step_subject
from collector.recovery import reminders, retention
from collector.recovery.abandon import mark_abandoned
from collector.recovery.dkim import MessageSigner
from collector.recovery.links import EmailLinks
from collector.recovery.mailer import (
    ConnectionFailure,
    NeedsSmtpUtf8,
    PermanentFailure,
    SmtpSender,
    TemporaryFailure,
    address_domain,
    build_message,
    message_bytes,
    message_headers,
)
from collector.recovery.reminders import Job
from collector.recovery.render import render_email
from collector.security import Signer
from collector.services import Services
from collector.store import Store, suppressions

log = logging.getLogger("cartback.sweep")


def empty_summary() -> dict[str, int]:
    return {"abandoned": 0, "sent": 0, "failed": 0, "retried": 0, "webhooks": 0}


def format_summary(summary: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.items())


class _Sender:
    """Sends the claimed jobs of one sweep, over one SMTP connection or into the dev mailbox."""

    def __init__(
        self, store: Store, signer: Signer, config: Config, now: float | None, summary: dict[str, int]
    ) -> None:
        self.store = store
        self.db = store.db
        self.config = config
        self.signer = signer
        self.fixed_now = now
        self.summary = summary
        self.smtp = SmtpSender(config.smtp) if config.smtp is not None else None
        self.smtp_down = False
        self.dkim = MessageSigner(store.db, config.secret_key)

    def stopped(self) -> bool:
        """The SMTP server is out of reach: the rest of this pass waits for a later one."""
        return self.smtp_down

    def now(self) -> float:
        # Real time for send stamps (a long sweep must not date its last email at its start),
        # unless the caller fixed the time (tests, replays).
        return self.fixed_now if self.fixed_now is not None else time.time()

    async def run(self) -> None:
        token = secrets.token_hex(16)
        started = time.monotonic()
        try:
            while not self.stopped() and time.monotonic() - started < reminders.CLAIM_USE_SECONDS:
                jobs, gave_up = await reminders.claim_due(self.db, self.store.sites, self.now(), token)
                self.summary["failed"] += gave_up
                if not jobs:
                    break
                claimed_at = time.monotonic()
                for i, job in enumerate(jobs):
                    if self.stopped():
                        rest = jobs[i:]
                        await reminders.release(self.db, rest, self.now() + reminders.backoff(1))
                        self.summary["retried"] += len(rest)
                        break
                    if time.monotonic() - claimed_at > reminders.CLAIM_USE_SECONDS:
                        # Past this, another sweeper could take the claims over as stale.
                        await reminders.release(self.db, jobs[i:])
                        break
                    await self.send_one(job)
        finally:
            if self.smtp is not None:
                await self.smtp.close()

    async def send_one(self, job: Job) -> None:
        """Sends one claimed email. Whatever it raises is that email's alone: it is put back for a
        later try (or failed once its tries run out) and the rest of the batch goes on."""
        try:
            await self._send(job)
        except Exception as exc:
            log.exception("email %s failed unexpectedly", job.id)
            reason = f"sending failed: {type(exc).__name__}: {exc}"
            try:
                retried = await reminders.mark_retry(self.db, job, self.now(), reason)
            except Exception:  # the claim goes stale and is taken over, within the attempt limit
                log.exception("recording the failure of email %s failed", job.id)
                return
            self.summary["retried" if retried else "failed"] += 1

    async def _send(self, job: Job) -> None:
        reason = await reminders.recheck(self.db, job, self.now())
        if reason == reminders.CLAIM_LOST:
            return
        if reason is not None:
            await reminders.stop(self.db, job, reason)
            return
        try:
            msg, links = self.build(job)
        except Exception as exc:  # a bug or bad data: keep the email for a fixed version
            log.exception("rendering email %s failed", job.id)
            retried = await reminders.mark_retry(self.db, job, self.now(), f"rendering failed: {exc}")
            self.summary["retried" if retried else "failed"] += 1
            return
        from_addr = str(msg["From"])
        if self.smtp is None:
            mailbox = {
                "to_addr": job.email["to_addr"],
                "from_addr": from_addr,
                "subject": str(msg["Subject"]),
                "html": links["html"],
                "text": links["text"],
                "headers": message_headers(msg),
            }
            if await reminders.mark_sent(self.db, job, self.now(), mailbox):
                self.summary["sent"] += 1
            return
        envelope_from = parseaddr(from_addr)[1]
        utf8 = needs_smtputf8(job.email["to_addr"])
        try:
            data = await self.dkim.sign(message_bytes(msg, utf8=utf8), address_domain(from_addr))
        except Exception as exc:  # a key that cannot be read: better unsent than sent unsigned and binned
            log.exception("signing email %s failed", job.id)
            retried = await reminders.mark_retry(self.db, job, self.now(), f"DKIM signing failed: {exc}")
            self.summary["retried" if retried else "failed"] += 1
            return
        try:
            await self.smtp.send(envelope_from, job.email["to_addr"], data, smtputf8=utf8)
        except NeedsSmtpUtf8 as exc:
            await reminders.mark_failed(self.db, job, str(exc))
            self.summary["failed"] += 1
            log.warning("email %s to %s cannot go: %s", job.id, job.email["to_addr"], exc)
        except PermanentFailure as exc:
            await reminders.mark_failed(self.db, job, str(exc))
            self.summary["failed"] += 1
            log.warning("email %s to %s refused for good: %s", job.id, job.email["to_addr"], exc)
            if exc.recipient:
                # The server refused the address itself (550 user unknown): a hard bounce, never again.
                await suppressions.record_event(
                    self.db,
                    "smtp",
                    "bounce",
                    job.email["to_addr"],
                    site_id=job.site.id,
                    email_id=job.id,
                    detail=str(exc),
                    suppress=True,
                    now=self.now(),
                )
        except (TemporaryFailure, ConnectionFailure) as exc:
            if isinstance(exc, ConnectionFailure):
                self.smtp_down = True
            retried = await reminders.mark_retry(self.db, job, self.now(), str(exc))
            self.summary["retried" if retried else "failed"] += 1
            log.warning("email %s will be retried: %s", job.id, exc)
        else:
            if await reminders.mark_sent(self.db, job, self.now()):
                self.summary["sent"] += 1
            else:
                log.warning("email %s was sent but its claim had been taken over", job.id)
                self.summary["sent"] += 1

    def build(self, job: Job) -> tuple[EmailMessage, dict[str, str]]:
        site = job.site
        rec = site.settings.recovery
        step = rec.steps[job.email["step"]]
        links = EmailLinks(self.signer, self.config.public_url, job.id)
        locale = effective(site.settings.locale, job.cart["locale"])
        rendered = render_email(
            site_name=site.name,
            from_addr=rec.from_,
            subject=job.email["subject"] or step.subject or step_subject(locale, int(job.email["step"])),
            preheader=step.preheader,
            items=job.items,
            currency=job.cart["currency"],
            discount_code=job.email["discount_code"],
            recovery_url=links.recovery,
            unsubscribe_url=links.unsubscribe,
            open_pixel_url=links.open_pixel,
            step=int(job.email["step"]),
            locale=locale,
            look=rec.email,
            origins=site.origins,
        )
        msg = build_message(
            rendered=rendered,
            from_addr=rec.from_,
            to_addr=job.email["to_addr"],
            unsubscribe_url=links.unsubscribe,
            message_id=f"<cartback.{site.key}.{job.id}@{address_domain(rec.from_)}>",
            now=self.now(),
            feedback_id=f"step{int(job.email['step']) + 1}:{site.key}:reminder:cartback",
            site_header=site.key,
        )
        return msg, {"html": rendered.html, "text": rendered.text}


async def _deliver_webhooks(store: Store, config: Config, now: float | None) -> int:
    try:
        return await webhooks.deliver_due(store, now, allow_private=config.webhook_allow_private)
    except Exception:  # the emails of this pass are done; the webhooks try again next pass
        log.exception("webhook delivery failed")
        return 0


async def sweep_once(services: Services, now: float | None = None) -> dict[str, int]:
    """One pass (`now` fixes the time, for tests and replays). Returns {abandoned, sent, failed, retried, webhooks}: carts marked abandoned,
    emails sent, emails that failed for good, emails put back for a later try, webhooks delivered.
    """
    store, summary = services.store, empty_summary()
    at = time.time() if now is None else now
    sites = await store.sites.list()
    for site in sites:
        if site.problem is not None:
            # Its carts wait, open, until its settings are repaired; the other sites go on.
            log.warning("site %s needs attention, skipped: %s", site.key, site.problem)
            continue
        summary["abandoned"] += await mark_abandoned(store.db, site, at)
    # Webhooks go beside the reminders, not after them: a slow receiver never holds up an email.
    _, summary["webhooks"] = await asyncio.gather(
        _Sender(store, services.signer, services.config, now, summary).run(),
        _deliver_webhooks(store, services.config, now),
    )
    try:
        await retention.prune(store.db, sites, at)
    except Exception:  # what is old now is old next pass too; the sending is done
        log.exception("retention failed")
    try:
        # The daily rollups of the closed days not computed yet (or invalidated by a write): a few days a pass.
        await rollup.refresh(store.db, [s.id for s in sites], at)
    except Exception:  # the overview counts those days from the raw rows meanwhile
        log.exception("daily rollups failed")
    return summary


__all__ = ["format_summary", "sweep_once"]
