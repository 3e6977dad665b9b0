"""Several collector processes on one PostgreSQL database, as behind a load balancer.

Two `cartback serve` processes (and `serve --workers 2`) share one database; a burst
of leads reaches both at once, with the same client ids sent to both (a retry that
the balancer sent elsewhere), and each lead must be stored exactly once. Then two
`cartback send-due` passes run at once against a real SMTP server, and each
reminder must go out exactly once.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    POSTGRES_ENV,
    ROOT,
    SHOP_ORIGIN,
    LiveCollector,
    _run_async,
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_server_url():
        pytest.skip(f"PostgreSQL half: set {POSTGRES_ENV} to run it")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def pg_query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    import asyncpg

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return _run_async(run())


def collector_on(tmp: Path, name: str, url: str, **env: str) -> LiveCollector:
    home = tmp / name
    home.mkdir()
    return LiveCollector(home, {"CARTBACK_DATABASE_URL": url, **env})


def start_all(collectors: list[LiveCollector]) -> None:
    """Starts them at the same moment, so their start-up migrations meet too."""
    errors: list[BaseException] = []

    def start(c: LiveCollector) -> None:
        try:
            c.start()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(c,)) for c in collectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


async def send_all(requests: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    """POSTs every (base url, path, body) at once; returns the status codes."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(base: str, path: str, body: dict[str, Any]) -> int:
            r = await client.post(base + path, content=json.dumps(body), headers=H)
            return r.status_code

        return list(await asyncio.gather(*(one(*r) for r in requests)))


def lead_burst(key: str, a: str, b: str) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any]]:
    """The burst, and what must be stored once it is in."""
    reqs: list[tuple[str, str, dict[str, Any]]] = []
    emails: set[str] = set()
    ids: set[str] = set()
    vids: set[str] = set()
    # Shared: each lead goes to both processes at the same moment (a client retry the
    # balancer routed elsewhere).
    for i in range(60):
        body = {
            "id": f"evt-shared-{i:04d}",
            "vid": f"vis-shared-{i:04d}",
            "email": f"shared{i}@example.com",
            "consent": True,
        }
        reqs += [(a, f"/c/{key}/lead", body), (b, f"/c/{key}/lead", body)]
        ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # Distinct, spread over both processes.
    for i in range(60):
        body = {
            "id": f"evt-own-{i:04d}",
            "vid": f"vis-own-{i:04d}",
            "email": f"own{i}@example.com",
            "consent": i % 2 == 0,
        }
        reqs.append((a if i % 2 else b, f"/c/{key}/lead", body))
        ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # One address typed on two browsers, one on each process: one lead, two visitors.
    for i in range(20):
        for side, base in (("a", a), ("b", b)):
            body = {
                "id": f"evt-twice-{side}-{i:04d}",
                "vid": f"vis-twice-{side}-{i:04d}",
                "email": f"twice{i}@example.com",
                "consent": False,
            }
            reqs.append((base, f"/c/{key}/lead", body))
            ids.add(body["id"]), vids.add(body["vid"]), emails.add(body["email"])
    # Cart updates of one visitor on both processes at once: one cart.
    for i in range(20):
        for side, base in (("a", a), ("b", b)):
            body = {
                "id": f"evt-cart-{side}-{i:04d}",
                "vid": f"vis-shared-{i:04d}",
                "currency": "EUR",
                "items": [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 1 if side == "a" else 2}],
            }
            reqs.append((base, f"/c/{key}/cart", body))
            ids.add(body["id"])
    expected = {"events": len(ids), "leads": len(emails), "visitors": len(vids), "emails": emails, "carts": 20}
    return reqs, expected


def check_stored_once(url: str, expected: dict[str, Any]) -> None:
    assert pg_query(url, "SELECT COUNT(*) AS n FROM events")[0]["n"] == expected["events"]
    leads = pg_query(url, "SELECT email, COUNT(*) AS n FROM leads GROUP BY email")
    assert {r["email"] for r in leads} == expected["emails"]
    assert all(r["n"] == 1 for r in leads)
    assert pg_query(url, "SELECT COUNT(*) AS n FROM visitors")[0]["n"] == expected["visitors"]
    carts = pg_query(url, "SELECT visitor_id, email, COUNT(*) AS n FROM carts GROUP BY visitor_id, email")
    assert len(carts) == expected["carts"] and all(r["n"] == 1 for r in carts)
    # Each cart found its shopper's email, whichever process took the lead.
    assert all(r["email"] is not None for r in carts)


# Due 6 seconds after abandonment, so that the sending sweeps find the whole queue waiting.
STEPS = [
    {"delay_minutes": 0.1, "subject": "You left something in your cart"},
    {"delay_minutes": 0.1, "subject": "Still thinking? Here's 10% off", "discount_code": "SAVE10"},
]
SWEEP_SETTINGS = {
    "recovery": {
        "abandon_after_minutes": 0,
        "steps": STEPS,
        "from": "Shop <shop@shop.test>",
        "cart_url": "https://shop.test/cart",
    }
}


async def shoppers(key: str, a: str, b: str, n: int) -> set[str]:
    """n shoppers, each giving an email on one process and filling a cart on the other, all at once."""
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            vid = f"vis-buyer-{i:05d}"
            first, second = (a, b) if i % 2 else (b, a)
            lead = {"id": f"evt-buyer-lead-{i:05d}", "vid": vid, "email": f"buyer{i}@example.com", "consent": True}
            cart = {
                "id": f"evt-buyer-cart-{i:05d}",
                "vid": vid,
                "currency": "EUR",
                "items": [{"id": "sku-1", "name": "Mug", "price": 12.5, "quantity": 2}],
            }
            for base, kind, body in ((first, "lead", lead), (second, "cart", cart)):
                r = await client.post(f"{base}/c/{key}/{kind}", content=json.dumps(body), headers=H)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(one(i) for i in range(n)))
    return {f"buyer{i}@example.com" for i in range(n)}


def send_due_at_once(collectors: list[LiveCollector], smtp_url: str) -> list[dict[str, int]]:
    """`cartback send-due` from each collector's machine, all at the same moment."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "collector", "send-due"],
            env={**c.env, "CARTBACK_SMTP_URL": smtp_url},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in collectors
    ]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        summaries.append({k: int(v) for k, v in re.findall(r"(\w+) (\d+)", out)})
    return summaries


def test_two_collectors_store_every_lead_once_and_two_sweepers_send_every_email_once(
    pg_url: str, tmp_path: Path
) -> None:
    from tests.recovery_support import Recorder, SmtpServer

    class SlowRecorder(Recorder):
        # A few milliseconds a message, like a real relay: the two sweeps overlap for seconds.
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(0.01)
            return await super().handle_DATA(server, session, envelope)

    a, b = collector_on(tmp_path, "a", pg_url), collector_on(tmp_path, "b", pg_url)
    smtp = SmtpServer()
    smtp.handler = SlowRecorder()
    smtp.start()
    try:
        start_all([a, b])
        key = a.create_site([SHOP_ORIGIN], SWEEP_SETTINGS)["key"]

        # 1. A burst of leads on both processes: each stored once.
        reqs, expected = lead_burst(key, a.url, b.url)
        statuses = asyncio.run(send_all(reqs))
        assert set(statuses) == {200}, sorted(set(statuses))
        # And all of it once more (every request a retry now): nothing changes.
        assert set(asyncio.run(send_all(reqs))) == {200}
        check_stored_once(pg_url, expected)

        # 2. Shoppers who leave: lead on one process, cart on the other.
        buyers = asyncio.run(shoppers(key, a.url, b.url, 100))
        carts = pg_query(pg_url, "SELECT email FROM carts WHERE status = 'open' AND email IS NOT NULL")
        assert len(carts) == 120 and buyers <= {c["email"] for c in carts}

        # 3. Two sweeps at once, one from each machine. The first pair marks the carts
        # abandoned and queues two reminders each, due a few seconds later; once they are
        # due, the second pair sends them (both sweepers claiming from the same queue).
        marking = send_due_at_once([a, b], smtp.url)
        assert sum(s["abandoned"] for s in marking) == 120, marking
        due = pg_query(pg_url, "SELECT COUNT(*) AS n, MAX(due_at) AS last FROM emails WHERE status = 'pending'")[0]
        assert due["n"] == 240 - sum(s["sent"] for s in marking)
        time.sleep(max(0.0, due["last"] - time.time()) + 0.2)
        sending = send_due_at_once([a, b], smtp.url)
        summaries = marking + sending
        assert sum(s["sent"] for s in summaries) == 240, summaries
        if not any(s["sent"] for s in marking):
            assert all(s["sent"] > 0 for s in sending), f"one sweeper sent everything, nothing was shared: {sending}"
        assert sum(s["failed"] + s["retried"] for s in summaries) == 0, summaries
        headers = BytesHeaderParser(policy=email.policy.default)
        sent = Counter((m.to, headers.parsebytes(m.raw)["Subject"]) for m in smtp.messages)
        assert len(smtp.messages) == 240 and set(sent.values()) == {1}, [k for k, v in sent.items() if v > 1]
        assert {to for to, _ in sent} == {c["email"] for c in carts}
        rows = pg_query(pg_url, "SELECT status, COUNT(*) AS n FROM emails GROUP BY status")
        assert rows == [{"status": "sent", "n": 240}]
        # A later sweep finds nothing left to send.
        again = send_due_at_once([a, b], smtp.url)
        assert sum(s["sent"] for s in again) == 0 and len(smtp.messages) == 240
    finally:
        a.stop()
        b.stop()
        smtp.stop()
    for c in (a, b):
        log = c.log.read_text()
        assert "Traceback" not in log, log[-3000:]


def test_serve_with_two_workers_on_postgres(pg_url: str, tmp_path: Path) -> None:
    live = collector_on(tmp_path, "w", pg_url)
    live.proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(live.port), "--workers", "2"],
        env=live.env,
        cwd=ROOT,
        stdout=open(live.log, "ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert live.proc.poll() is None, live.log.read_text()[-3000:]
            try:
                if httpx.get(live.url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not answer in 30 s"
            time.sleep(0.1)
        key = live.create_site([SHOP_ORIGIN])["key"]
        reqs, expected = lead_burst(key, live.url, live.url)
        assert set(asyncio.run(send_all(reqs))) == {200}
        check_stored_once(pg_url, expected)
    finally:
        live.stop()
    log = live.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    # Two worker processes served, each with its own pool on the one database.
    assert log.count("Started server process") == 2, log[-3000:]


def test_the_sweep_loops_of_two_collectors_send_every_email_once(pg_url: str, tmp_path: Path) -> None:
    """The servers' own sweeps (CARTBACK_SWEEP_SECONDS), running in both processes at once."""
    from tests.recovery_support import SmtpServer

    smtp = SmtpServer()
    smtp.start()
    env = {"CARTBACK_SWEEP_SECONDS": "0.2", "CARTBACK_SMTP_URL": smtp.url}
    a, b = collector_on(tmp_path, "a", pg_url, **env), collector_on(tmp_path, "b", pg_url, **env)
    try:
        start_all([a, b])
        settings = {"recovery": {**SWEEP_SETTINGS["recovery"], "steps": [{"delay_minutes": 0, "subject": "Your cart"}]}}
        key = a.create_site([SHOP_ORIGIN], settings)["key"]
        buyers = asyncio.run(shoppers(key, a.url, b.url, 60))
        deadline = time.monotonic() + 60
        while len(smtp.messages) < len(buyers) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a few more passes of both loops: nothing more may go out
        sent = Counter(m.to for m in smtp.messages)
        assert set(sent) == buyers and set(sent.values()) == {1}, [k for k, v in sent.items() if v > 1]
        rows = pg_query(pg_url, "SELECT status, COUNT(*) AS n FROM emails GROUP BY status")
        assert rows == [{"status": "sent", "n": len(buyers)}]
    finally:
        a.stop()
        b.stop()
        smtp.stop()
    for c in (a, b):
        log = c.log.read_text()
        assert "Traceback" not in log, log[-3000:]
