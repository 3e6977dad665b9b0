"""Render and send 2,000 reminders to a local aiosmtpd over one reused SMTP connection.

A real aiosmtpd server runs in a process of its own on a free loopback port and counts the
messages it receives and the connections they came over. A fresh database holds 2,000 carts
with an email, quiet for two hours, of a site with one reminder step; the sweep's abandonment
pass queues their emails (not timed). Then one `sweep_once` with CARTBACK_SMTP_URL pointing at
the server does what the server's sweep does: claim the due emails, check each again, render
it (Jinja2, HTML and text), build the MIME message, send it, and mark it sent. Timed from the
start of that sweep to its end. Three rounds (fresh emails each); medians.

    .venv/bin/python bench/bench_send.py [--emails 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import PY, ROOT, SECRET, bench_env, cartback, create_site, ensure_pip, free_port, median, report, row

SMTPD = r"""
import asyncio, json, signal, sys
from aiosmtpd.controller import Controller

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # before any thread: sigwait gets it

class Counter:
    def __init__(self):
        self.messages, self.sessions = 0, set()
    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.sessions.add(id(session))
        return "250 OK"

handler = Counter()
controller = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
controller.stop()
print(json.dumps({"messages": handler.messages, "connections": len(handler.sessions)}), flush=True)
"""

ITEMS = json.dumps(
    [
        {
            "id": "sku-1042",
            "name": "Blue enamel mug",
            "price": 12.5,
            "quantity": 2,
            "image": "https://shop.example/img/mug.jpg",
            "url": "https://shop.example/p/blue-mug",
        },
        {
            "id": "sku-2210",
            "name": "Linen tea towel",
            "price": 7.9,
            "quantity": 1,
            "image": "https://shop.example/img/towel.jpg",
        },
    ],
    separators=(",", ":"),
)

SETTINGS = {
    "recovery": {
        "abandon_after_minutes": 60,
        "from": "Bench shop <shop@example.com>",
        "cart_url": "https://shop.example/cart",
        "steps": [{"delay_minutes": 0, "subject": "You left something in your cart", "discount_code": "SAVE10"}],
    }
}


def add_carts(db: Path, site_id: int, n: int, round_: int, now: float) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'EUR', 32.9, 3, 'open', ?, ?)",
        (
            (site_id, f"vis-{round_}-{i:06d}", f"shopper{round_}-{i}@example.com", ITEMS, now - 7300, now - 7200)
            for i in range(n)
        ),
    )
    conn.execute("COMMIT")
    conn.close()


async def sweep(url: str, smtp_url: str, public_url: str) -> tuple[float, dict[str, int], int]:
    from collector.recovery.commands import sweep_state

    from collector.config import Config
    from collector.recovery import abandon
    from collector.recovery.sweep import sweep_once
    from collector.store import Store, open_database

    config = Config(database_url=url, secret_key=SECRET, public_url=public_url, smtp_url=smtp_url, sweep_seconds=0)
    store = Store(open_database(url))
    await store.connect()
    try:
        state = sweep_state(store, config)
        now = time.time()
        queued = 0
        for site in await store.sites.list():
            queued += await abandon.mark_abandoned(store.db, site, now)
        t = time.perf_counter()
        summary = await sweep_once(state)
        return time.perf_counter() - t, summary, queued
    finally:
        await store.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emails", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ensure_pip("aiosmtpd")
    rates, conns = [], []
    with tempfile.TemporaryDirectory(prefix="cartback-bench-send-") as t:
        db = Path(t) / "cartback.db"
        env = bench_env(db, "https://cartback.example")
        cartback(env, "migrate")
        create_site(env, "https://shop.example", SETTINGS)
        for r in range(args.rounds):
            port = free_port()
            smtpd = subprocess.Popen([PY, "-c", SMTPD, str(port)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
            try:
                assert smtpd.stdout is not None and smtpd.stdout.readline().strip() == "ready"
                add_carts(db, 1, args.emails, r, time.time())
                seconds, summary, queued = asyncio.run(
                    sweep(env["CARTBACK_DATABASE_URL"], f"smtp://127.0.0.1:{port}", env["CARTBACK_PUBLIC_URL"])
                )
            finally:
                smtpd.send_signal(signal.SIGTERM)
                out, _ = smtpd.communicate(timeout=30)
            got = json.loads(out.strip().splitlines()[-1])
            assert queued == args.emails and summary["sent"] == args.emails, (queued, summary)
            assert got["messages"] == args.emails, got
            rates.append(args.emails / seconds)
            conns.append(got["connections"])
            print(
                f"round {r + 1}: {args.emails:,} reminders rendered and sent in {seconds:.2f} s: {rates[-1]:.0f} emails/s;"
                f" the server got {got['messages']:,} messages over {got['connections']} connection(s)",
                flush=True,
            )
    rate = median(rates)
    print(f"median: {rate:.0f} emails/s, connections per sweep: {max(conns)}")
    report(
        [
            row(
                f"send: render and send {args.emails:,} reminders (emails/s)",
                f"{rate:.0f}",
                "",
                None,
                ">= 200, 1 connection",
                rate >= 200 and max(conns) == 1,
            )
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
