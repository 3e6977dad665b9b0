"""The counts the dashboard reads from the variant tables and the indexes agree with the raw rows,
after random ingest (carts, popups shown under variants, leads, purchases), reminders sent with
variants, and shoppers forgotten: counted again the slow way, from events, leads and emails."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from collector.experiments.results import variant_counts
from collector.funnel import site_stats
from collector.schemas import SiteSettings
from collector.shoppers import forget_shopper
from collector.store import Store, variants
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import cart, ingest

SETTINGS = SiteSettings.model_validate(
    {
        "experiments": [
            {"name": "hl", "kind": "popup", "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}]},
            {
                "name": "subj",
                "kind": "subject",
                "step": 0,
                "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "fun", "subject": "Psst"}],
            },
        ]
    }
)


async def reference(store: Store, site_id: int) -> dict[str, dict[str, tuple[int, int]]]:
    """Popup tests as the code before migration 007 counted them (every shown event's JSON),
    subject tests from each sent email's variants column: {exp: {variant: (shown, converted)}}."""
    exposed: dict[tuple[str, str], set[str]] = {}
    for r in await store.db.fetchall(
        "SELECT visitor_id, data FROM events WHERE site_id = ? AND type = 'shown'", site_id
    ):
        for exp, var in (json.loads(r["data"] or "{}").get("variants") or {}).items():
            exposed.setdefault((exp, var), set()).add(r["visitor_id"])
    out: dict[str, dict[str, tuple[int, int]]] = {}
    converted: dict[tuple[str, str], int] = {}
    for r in await store.db.fetchall(
        "SELECT visitor_id, variants FROM leads WHERE site_id = ? AND variants IS NOT NULL", site_id
    ):
        for exp, var in json.loads(r["variants"]).items():
            if r["visitor_id"] in exposed.get((exp, var), set()):
                converted[(exp, var)] = converted.get((exp, var), 0) + 1
    for (exp, var), seen in exposed.items():
        out.setdefault(exp, {})[var] = (len(seen), converted.get((exp, var), 0))
    for r in await store.db.fetchall(
        "SELECT variants, opened_at FROM emails WHERE site_id = ? AND status = 'sent' AND variants IS NOT NULL", site_id
    ):
        for exp, var in json.loads(r["variants"]).items():
            shown, conv = out.setdefault(exp, {}).get(var, (0, 0))
            out[exp][var] = (shown + 1, conv + (r["opened_at"] is not None))
    return out


def measured(counts: dict[str, Any]) -> dict[str, dict[str, tuple[int, int]]]:
    return {
        exp: {v: (c["shown"], c["converted"]) for v, c in cells.items() if c["shown"]}
        for exp, cells in counts.items()
        if any(c["shown"] for c in cells.values())
    }


async def test_counts_agree_with_the_raw_rows_after_ingest_purchases_and_forgetting(client, store):
    rng = random.Random(14)
    site = await store.sites.create("Random shop", [SHOP_ORIGIN], SETTINGS)
    other = await store.sites.create("Other shop", [SHOP_ORIGIN], SETTINGS)
    n = 0
    for who in range(40):
        vid = f"visitor-{who:04d}"
        target = other if who % 7 == 0 else site
        await ingest(client, target, "cart", cart(f"c-{who:06d}", vid))
        for _ in range(rng.randint(0, 3)):
            n += 1
            var = rng.choice("ABC")
            await ingest(
                client, target, "event", {"id": f"s-{n:06d}", "vid": vid, "type": "shown", "variants": {"hl": var}}
            )
        if rng.random() < 0.6:
            var = rng.choice("ABC")
            body = {"id": f"l-{who:06d}", "vid": vid, "email": f"p{who}@example.com", "variants": {"hl": var}}
            await ingest(client, target, "lead", body)
        if rng.random() < 0.3:
            await ingest(
                client,
                target,
                "purchase",
                {"id": f"p-{who:06d}", "vid": vid, "order_id": f"o-{who}", "value": 20, "currency": "EUR"},
            )
    now = time.time()

    async def send(tx: Any) -> None:
        rows = await tx.fetchall("SELECT id, site_id, email FROM carts WHERE email IS NOT NULL ORDER BY id")
        for c in rows:
            var = rng.choice(["plain", "fun"])
            row = await tx.fetchone(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, sent_at, opened_at, variants,"
                " created_at) VALUES (?, ?, 0, ?, 'sent', ?, ?, ?, ?, ?) RETURNING id",
                c["site_id"],
                c["id"],
                c["email"],
                now,
                now,
                now if rng.random() < 0.5 else None,
                json.dumps({"subj": var}),
                now,
            )
            # What the reminder's claim records beside the email (store/emails.py, take).
            await variants.record_email(tx, c["site_id"], row["id"], {"subj": var})

    await store.db.write(send)
    for s in (site, other):
        assert measured(await variant_counts(store.db, SETTINGS, s.id)) == await reference(store, s.id)
    # Forgetting shoppers removes their exposures and their reminders' variants with them.
    leads = await store.db.fetchall("SELECT email FROM leads WHERE site_id = ? ORDER BY email", site.id)
    gone = 0
    for row in leads[:: max(1, len(leads) // 4)]:
        gone += (await forget_shopper(store.db, site, row["email"]))["variant_assignments"]
    assert gone > 0
    assert measured(await variant_counts(store.db, SETTINGS, site.id)) == await reference(store, site.id)
    # And the funnel's counts are the raw rows' counts.
    stats = await site_stats(store.db, site.id, settings=SETTINGS)
    raw = await store.db.fetchone(
        "SELECT (SELECT COUNT(*) FROM carts WHERE site_id = ?) AS carts,"
        " (SELECT COUNT(*) FROM events WHERE site_id = ? AND type = 'shown') AS shown,"
        " (SELECT COUNT(*) FROM leads WHERE site_id = ?) AS leads,"
        " (SELECT COUNT(*) FROM emails WHERE site_id = ? AND status = 'sent') AS sent,"
        " (SELECT COUNT(*) FROM emails WHERE site_id = ? AND opened_at IS NOT NULL) AS opened",
        *[site.id] * 5,
    )
    assert (stats["carts"], stats["popup_shown"], stats["leads"], stats["emails_sent"], stats["emails_opened"]) == (
        raw["carts"],
        raw["shown"],
        raw["leads"],
        raw["sent"],
        raw["opened"],
    )


async def test_retention_of_old_events_takes_their_exposures_along(client, store):
    site = await store.sites.create("Old shop", [SHOP_ORIGIN], SETTINGS)
    for i in range(6):
        await ingest(
            client, site, "event", {"id": f"s-{i:06d}", "vid": f"v-{i:06d}", "type": "shown", "variants": {"hl": "A"}}
        )
    cutoff = time.time() + 1
    # What a retention pass does (issue 13's sweep): old events deleted, and their exposures with them.
    await store.db.write(
        lambda tx: tx.execute("DELETE FROM events WHERE site_id = ? AND created_at < ?", site.id, cutoff)
    )
    assert await store.db.write(lambda tx: variants.drop_older(tx, site.id, cutoff)) == 6
    assert measured(await variant_counts(store.db, SETTINGS, site.id)) == await reference(store, site.id) == {}
