"""One pass of the sweep: mark quiet carts abandoned, send the reminders that are due, deliver webhooks.

Run by the server every CARTBACK_SWEEP_SECONDS and by `cartback send-due`. Any number of
sweepers may run at once, in one process or many, on one machine or several: every email is
claimed in the database before it is sent (see collector/recovery/queue.py for how, and for
what a crash does).
"""

from __future__ import annotations

import logging
import secrets
import time
from email.utils import parseaddr
from typing import Any

from collector.recovery import queue
from collector.recovery.links import EmailLinks
from collector.recovery.mailer import (
    ConnectionFailure,
    PermanentFailure,
    SmtpSender,
    SmtpSettings,
    TemporaryFailure,
    address_domain,
    build_message,
    message_bytes,
    message_headers,
)
from collector.recovery.queue import Job, Sites
from collector.recovery.render import render_email

log = logging.getLogger("cartback.sweep")


def empty_summary() -> dict[str, int]:
    return {"abandoned": 0, "sent": 0, "failed": 0, "retried": 0, "webhooks": 0}


def format_summary(summary: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.items())


class _Sender:
    """Sends the claimed jobs of one sweep, over one SMTP connection or into the dev mailbox."""

    def __init__(self, state: Any, now: float | None, summary: dict[str, int]) -> None:
        self.store = state.store
        self.config = state.config
        self.signer = state.signer
        self.fixed_now = now
        self.summary = summary
        url = getattr(self.config, "smtp_url", None)
        self.smtp = SmtpSender(SmtpSettings.from_url(url)) if url else None
        self.smtp_down = False

    def now(self) -> float:
        # Real time for send stamps (a long sweep must not date its last email at its start),
        # unless the caller fixed the time (tests, replays).
        return self.fixed_now if self.fixed_now is not None else time.time()

    async def run(self, sites: Sites) -> None:
        token = secrets.token_hex(16)
        started = time.monotonic()
        try:
            while not self.smtp_down and time.monotonic() - started < queue.CLAIM_USE_SECONDS:
                jobs, gave_up = await queue.claim_due(self.store, sites, self.now(), token)
                self.summary["failed"] += gave_up
                if not jobs:
                    break
                claimed_at = time.monotonic()
                for i, job in enumerate(jobs):
                    if self.smtp_down:
                        rest = jobs[i:]
                        await queue.release(self.store, rest, self.now() + queue.backoff(1))
                        self.summary["retried"] += len(rest)
                        break
                    if time.monotonic() - claimed_at > queue.CLAIM_USE_SECONDS:
                        # Past this, another sweeper could take the claims over as stale.
                        await queue.release(self.store, jobs[i:])
                        break
                    await self.send_one(job)
        finally:
            if self.smtp is not None:
                await self.smtp.close()

    async def send_one(self, job: Job) -> None:
        reason = await queue.recheck(self.store, job)
        if reason == "claim lost":
            return
        if reason is not None:
            await queue.close(self.store, job, reason)
            return
        try:
            msg, links = self.build(job)
        except Exception as exc:  # a bug or bad data: keep the email for a fixed version
            log.exception("rendering email %s failed", job.id)
            if await queue.mark_retry(self.store, job, self.now(), f"rendering failed: {exc}"):
                self.summary["retried"] += 1
            else:
                self.summary["failed"] += 1
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
            if await queue.mark_sent(self.store, job, self.now(), mailbox):
                self.summary["sent"] += 1
            return
        envelope_from = parseaddr(from_addr)[1]
        try:
            await self.smtp.send(envelope_from, job.email["to_addr"], message_bytes(msg))
        except PermanentFailure as exc:
            await queue.mark_failed(self.store, job, str(exc))
            self.summary["failed"] += 1
            log.warning("email %s to %s refused for good: %s", job.id, job.email["to_addr"], exc)
        except (TemporaryFailure, ConnectionFailure) as exc:
            if isinstance(exc, ConnectionFailure):
                self.smtp_down = True
            if await queue.mark_retry(self.store, job, self.now(), str(exc)):
                self.summary["retried"] += 1
            else:
                self.summary["failed"] += 1
            log.warning("email %s will be retried: %s", job.id, exc)
        else:
            if await queue.mark_sent(self.store, job, self.now()):
                self.summary["sent"] += 1
            else:
                log.warning("email %s was sent but its claim had been taken over", job.id)
                self.summary["sent"] += 1

    def build(self, job: Job) -> tuple[Any, dict[str, str]]:
        site = job.site
        rec = site.settings.recovery
        step = rec.steps[job.email["step"]]
        links = EmailLinks(self.signer, self.config.public_url, job.id)
        rendered = render_email(
            site_name=site.name,
            from_addr=rec.from_,
            subject=job.email["subject"] or step.subject,
            preheader=step.preheader,
            items=job.items,
            currency=job.cart["currency"],
            discount_code=job.email["discount_code"],
            recovery_url=links.recovery,
            unsubscribe_url=links.unsubscribe,
            open_pixel_url=links.open_pixel,
            step=int(job.email["step"]),
        )
        msg = build_message(
            rendered=rendered,
            from_addr=rec.from_,
            to_addr=job.email["to_addr"],
            unsubscribe_url=links.unsubscribe,
            message_id=f"<cartback.{site.key}.{job.id}@{address_domain(rec.from_)}>",
            now=self.now(),
        )
        return msg, {"html": rendered.html, "text": rendered.text}


async def _deliver_webhooks(state: Any, now: float | None) -> int:
    try:
        from collector.webhooks import deliver_due
    except ModuleNotFoundError as exc:
        if exc.name != "collector.webhooks":
            raise
        return 0
    try:
        result = await (deliver_due(state) if now is None else deliver_due(state, now))
    except Exception:  # the emails of this pass are done; the webhooks try again next pass
        log.exception("webhook delivery failed")
        return 0
    if isinstance(result, dict):
        return int(result.get("delivered", 0))
    return int(result or 0)


async def sweep_once(state: Any, now: float | None = None) -> dict[str, int]:
    """One pass; `state` has .store, .config and .signer (the app's state, or one built by the CLI).

    Returns {abandoned, sent, failed, retried, webhooks}: carts marked abandoned, emails sent,
    emails that failed for good, emails put back for a later try, webhooks delivered.
    """
    summary = empty_summary()
    store = state.store
    sites = Sites()
    at = time.time() if now is None else now
    for site in await store.list_sites():
        sites.add(site)
        summary["abandoned"] += await queue.mark_abandoned(store, site, at)
    await _Sender(state, now, summary).run(sites)
    summary["webhooks"] = await _deliver_webhooks(state, now)
    return summary


__all__ = ["format_summary", "sweep_once"]
