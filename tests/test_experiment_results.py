"""A/B results from stored data: what each kind counts, and ending a test keeps the winner."""

from __future__ import annotations

import json
import time

from collector.experiments.ending import end_experiment
from collector.experiments.results import experiment_results, variant_counts
from collector.schemas import SiteSettings
from collector.store import variants
from tests.conftest import SHOP_ORIGIN

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}

SETTINGS = SiteSettings.model_validate(
    {
        "experiments": [
            {
                "name": "hl",
                "kind": "popup",
                "variants": [
                    {"name": "A", "popup": {"headline": "Wait!"}},
                    {"name": "B", "popup": {"headline": "Don't go!", "button": "Get it"}, "discount_code": "BCODE"},
                ],
            },
            {
                "name": "subj",
                "kind": "subject",
                "step": 0,
                "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "fun", "subject": "Psst, your cart"}],
            },
        ]
    }
)


async def post(client, site, kind, body):
    r = await client.post(f"/c/{site.key}/{kind}", content=json.dumps(body), headers=H)
    assert r.status_code == 200, r.text


async def test_popup_variants_count_visitors_shown_and_their_leads(client, store):
    site = await store.sites.create("AB shop", [SHOP_ORIGIN], SETTINGS)
    plan = {"A": ["va-000001", "va-000002", "va-000003"], "B": ["vb-000001", "vb-000002"]}
    n = 0
    for var, visitors in plan.items():
        for vid in visitors:
            for _ in range(2):  # shown twice to the same visitor: one exposure
                n += 1
                await post(
                    client,
                    site,
                    "event",
                    {"id": f"evt-show-{n:05d}", "vid": vid, "type": "shown", "variants": {"hl": var}},
                )
    await post(
        client,
        site,
        "lead",
        {"id": "evt-lead-00001", "vid": "va-000001", "email": "a1@example.com", "variants": {"hl": "A"}},
    )
    await post(
        client,
        site,
        "lead",
        {"id": "evt-lead-00002", "vid": "vb-000001", "email": "b1@example.com", "variants": {"hl": "B"}},
    )
    await post(
        client,
        site,
        "lead",
        {"id": "evt-lead-00003", "vid": "vb-000002", "email": "b2@example.com", "variants": {"hl": "B"}},
    )
    counts = await variant_counts(store.db, site.settings, site.id)
    assert counts["hl"]["A"] == {"shown": 3, "converted": 1, "rate": round(1 / 3, 4)}
    assert counts["hl"]["B"] == {"shown": 2, "converted": 2, "rate": 1.0}
    # A database from before migration 007 has only the events and leads: its Python step
    # rebuilds the same assignments from them.
    await store.db.write(lambda tx: tx.execute("DELETE FROM variant_assignments"))
    assert (await variant_counts(store.db, site.settings, site.id))["hl"]["A"]["shown"] == 0
    await store.db.write(variants.backfill)
    assert await variant_counts(store.db, site.settings, site.id) == counts
    assert counts["subj"]["plain"]["shown"] == 0
    results = await experiment_results(store.db, site.settings, site.id)
    hl = next(r for r in results if r["name"] == "hl")
    assert hl["winner"] is None and "497 more exposures on A" in hl["progress"]["message"]
    assert [v["exposures"] for v in hl["variants"]] == [3, 2]


async def test_subject_variants_count_sent_opened_and_clicked(client, store):
    site = await store.sites.create("AB shop", [SHOP_ORIGIN], SETTINGS)
    await post(
        client,
        site,
        "cart",
        {
            "id": "evt-cart-00001",
            "vid": "visitor-0001",
            "currency": "EUR",
            "items": [{"id": "a", "name": "Mug", "price": 3, "quantity": 1}],
        },
    )
    cart = await store.db.fetchone("SELECT id FROM carts")
    now = time.time()

    async def op(tx):
        for step, (var, opened, clicked) in enumerate([("plain", now, None), ("plain", None, None), ("fun", now, now)]):
            row = await tx.fetchone(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, sent_at, opened_at, clicked_at, variants, created_at)"
                " VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?, ?, ?) RETURNING id",
                site.id,
                cart["id"],
                step,
                "x@example.com",
                now,
                now,
                opened,
                clicked,
                json.dumps({"subj": var}),
                now,
            )
            # What the reminder's claim records beside the email (store/emails.py, take).
            await variants.record_email(tx, site.id, row["id"], {"subj": var})

    await store.db.write(op)
    counts = await variant_counts(store.db, site.settings, site.id)
    assert counts["subj"]["plain"] == {"shown": 2, "converted": 1, "clicked": 0, "rate": 0.5}
    assert counts["subj"]["fun"] == {"shown": 1, "converted": 1, "clicked": 1, "rate": 1.0}


def test_ending_an_experiment_keeps_the_winner_as_the_setting():
    ended = end_experiment(SETTINGS, "hl", "B")
    assert (
        ended.popup.headline == "Don't go!" and ended.popup.button == "Get it" and ended.popup.discount_code == "BCODE"
    )
    assert next(e for e in ended.experiments if e.name == "hl").enabled is False
    offer = SiteSettings.model_validate(
        {
            "recovery": {
                "steps": [
                    {"delay_minutes": 0, "subject": "Hi"},
                    {"delay_minutes": 60, "subject": "Hi", "discount_code": "SAVE10"},
                ]
            },
            "experiments": [
                {
                    "name": "offer",
                    "kind": "discount",
                    "variants": [
                        {"name": "ten", "discount_code": "TEN"},
                        {"name": "fifteen", "discount_code": "FIFTEEN"},
                    ],
                }
            ],
        }
    )
    ended = end_experiment(offer, "offer", "fifteen")
    assert ended.popup.discount_code == "FIFTEEN"
    assert [s.discount_code for s in ended.recovery.steps] == [None, "FIFTEEN"]  # a step without a code stays without
    ended = end_experiment(SETTINGS, "subj", "fun")
    assert ended.recovery.steps[0].subject == "Psst, your cart"
    try:
        end_experiment(SETTINGS, "hl", "Z")
    except ValueError as exc:
        assert "no variant" in str(exc)
    else:
        raise AssertionError("an unknown variant must be refused")


async def test_a_discount_test_gives_the_same_offer_in_the_reminder_and_counts_its_recovered_orders(app, client, store):
    """A reminder step that offers a code offers the shopper's variant of a discount test (assigned from
    the cart's visitor id, as the popup assigns it); the email carries that variant beside its subject
    variant, and the recovered order counts for it, with its revenue."""
    import re

    from collector.experiments import assign, assign_email
    from collector.recovery.sweep import sweep_once
    from tests.recovery_support import MUG, Shopper, SmtpServer, settings, sweep_state

    offer = {
        "name": "offer",
        "kind": "discount",
        "variants": [{"name": "ten", "discount_code": "TEN-OFF"}, {"name": "fifteen", "discount_code": "FIFTEEN-OFF"}],
    }
    subj = {
        "name": "subj",
        "kind": "subject",
        "variants": [{"name": "plain", "subject": "Your cart"}, {"name": "urgent", "subject": "Last chance!"}],
    }
    steps = [{"delay_minutes": 0, "subject": "Here is 10% off", "discount_code": "SAVE10"}]
    site = await store.sites.create(
        "AB shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0, steps=steps, _experiments=[offer, subj])
    )
    variants = [("ten", 1), ("fifteen", 1)]
    vids = {}
    for n in range(100):
        vid = f"visitor-{n:06d}"
        vids.setdefault(assign("offer", vid, variants), []).append(vid)
    plan = [("ten", vids["ten"][0]), ("ten", vids["ten"][1]), ("fifteen", vids["fifteen"][0])]
    shoppers = []
    for i, (_variant, vid) in enumerate(plan):
        s = Shopper(client, site, vid=vid)
        await s.identify(f"buyer{i}@example.com")  # known from checkout: no popup, no lead
        await s.cart(MUG)
        shoppers.append(s)

    smtp = SmtpServer()
    smtp.start()
    try:
        await sweep_once(sweep_state(app, smtp.url), now=time.time() + 1)
        assert len(smtp.messages) == 3
        codes = {"ten": "TEN-OFF", "fifteen": "FIFTEEN-OFF"}
        for i, (var, _) in enumerate(plan):
            addr = f"buyer{i}@example.com"
            row = await store.db.fetchone("SELECT id, discount_code, variants FROM emails WHERE to_addr = ?", addr)
            sub = assign_email("subj", addr, [("plain", 1), ("urgent", 1)])
            assert row["discount_code"] == codes[var]
            assert json.loads(row["variants"]) == {"subj": sub, "offer": var}
            msg = next(m for m in smtp.messages if m.to == addr)
            assert codes[var] in msg.part("html") and codes[var] in msg.part("plain")
            assert msg.message["Subject"] == {"plain": "Your cart", "urgent": "Last chance!"}[sub]
        # buyer0 clicks the reminder and buys: a recovered order of the "ten" offer.
        link = re.search(
            r'href="http://collector\.test(/r/[^"]+)"',
            next(m for m in smtp.messages if m.to == "buyer0@example.com").part("html"),
        ).group(1)
        assert (await client.get(link.replace("&amp;", "&"))).status_code in (302, 303)
        await shoppers[0].purchase("order-1", 33.5)
    finally:
        smtp.stop()
    order = await store.db.fetchone("SELECT recovered, email_id FROM orders WHERE order_id = 'order-1'")
    assert order["recovered"] == 1
    # The order is attributable to its email's variants.
    email = await store.db.fetchone("SELECT variants FROM emails WHERE id = ?", order["email_id"])
    assert json.loads(email["variants"])["offer"] == "ten"
    site = await store.sites.get(site.key, fresh=True)
    counts = await variant_counts(store.db, site.settings, site.id)
    assert counts["offer"]["ten"] == {"shown": 2, "converted": 1, "revenue": 33.5, "rate": 0.5}
    assert counts["offer"]["fifteen"] == {"shown": 1, "converted": 0, "revenue": 0.0, "rate": 0.0}
    assert sum(c["shown"] for c in counts["subj"].values()) == 3 and "offer" not in str(counts["subj"])
