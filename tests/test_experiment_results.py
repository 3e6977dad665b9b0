"""A/B results from stored data: what each kind counts, and ending a test keeps the winner."""

from __future__ import annotations

import json
import time

from collector.experiment_results import end_experiment, experiment_results, variant_counts
from collector.schemas import SiteSettings
from tests.conftest import SHOP_ORIGIN

H = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}

SETTINGS = SiteSettings.model_validate({
    "experiments": [
        {"name": "hl", "kind": "popup", "variants": [
            {"name": "A", "popup": {"headline": "Wait!"}},
            {"name": "B", "popup": {"headline": "Don't go!", "button": "Get it"}, "discount_code": "BCODE"}]},
        {"name": "subj", "kind": "subject", "step": 0, "variants": [
            {"name": "plain", "subject": "Your cart"}, {"name": "fun", "subject": "Psst, your cart"}]},
    ]
})


async def post(client, site, kind, body):
    r = await client.post(f"/c/{site.key}/{kind}", content=json.dumps(body), headers=H)
    assert r.status_code == 200, r.text


async def test_popup_variants_count_visitors_shown_and_their_leads(client, store):
    site = await store.create_site("AB shop", [SHOP_ORIGIN], SETTINGS)
    plan = {"A": ["va-000001", "va-000002", "va-000003"], "B": ["vb-000001", "vb-000002"]}
    n = 0
    for var, visitors in plan.items():
        for vid in visitors:
            for _ in range(2):  # shown twice to the same visitor: one exposure
                n += 1
                await post(client, site, "event", {"id": f"evt-show-{n:05d}", "vid": vid, "type": "shown", "variants": {"hl": var}})
    await post(client, site, "lead", {"id": "evt-lead-00001", "vid": "va-000001", "email": "a1@example.com", "variants": {"hl": "A"}})
    await post(client, site, "lead", {"id": "evt-lead-00002", "vid": "vb-000001", "email": "b1@example.com", "variants": {"hl": "B"}})
    await post(client, site, "lead", {"id": "evt-lead-00003", "vid": "vb-000002", "email": "b2@example.com", "variants": {"hl": "B"}})
    counts = await variant_counts(store.db, site.settings, site.id)
    assert counts["hl"]["A"] == {"shown": 3, "converted": 1, "rate": round(1 / 3, 4)}
    assert counts["hl"]["B"] == {"shown": 2, "converted": 2, "rate": 1.0}
    assert counts["subj"]["plain"]["shown"] == 0
    results = await experiment_results(store.db, site.settings, site.id)
    hl = next(r for r in results if r["name"] == "hl")
    assert hl["winner"] is None and "497 more exposures on A" in hl["progress"]["message"]
    assert [v["exposures"] for v in hl["variants"]] == [3, 2]


async def test_subject_variants_count_sent_opened_and_clicked(client, store):
    site = await store.create_site("AB shop", [SHOP_ORIGIN], SETTINGS)
    await post(client, site, "cart", {"id": "evt-cart-00001", "vid": "visitor-0001", "currency": "EUR",
                                      "items": [{"id": "a", "name": "Mug", "price": 3, "quantity": 1}]})
    cart = await store.db.fetchone("SELECT id FROM carts")
    now = time.time()

    async def op(tx):
        for step, (var, opened, clicked) in enumerate([("plain", now, None), ("plain", None, None), ("fun", now, now)]):
            await tx.execute(
                "INSERT INTO emails (site_id, cart_id, step, to_addr, status, due_at, sent_at, opened_at, clicked_at, variants, created_at)"
                " VALUES (?, ?, ?, ?, 'sent', ?, ?, ?, ?, ?, ?)",
                site.id, cart["id"], step, "x@example.com", now, now, opened, clicked, json.dumps({"subj": var}), now)

    await store.db.write(op)
    counts = await variant_counts(store.db, site.settings, site.id)
    assert counts["subj"]["plain"] == {"shown": 2, "converted": 1, "clicked": 0, "rate": 0.5}
    assert counts["subj"]["fun"] == {"shown": 1, "converted": 1, "clicked": 1, "rate": 1.0}


def test_ending_an_experiment_keeps_the_winner_as_the_setting():
    ended = end_experiment(SETTINGS, "hl", "B")
    assert ended.popup.headline == "Don't go!" and ended.popup.button == "Get it" and ended.popup.discount_code == "BCODE"
    assert next(e for e in ended.experiments if e.name == "hl").enabled is False
    ended = end_experiment(SETTINGS, "subj", "fun")
    assert ended.recovery.steps[0].subject == "Psst, your cart"
    try:
        end_experiment(SETTINGS, "hl", "Z")
    except ValueError as exc:
        assert "no variant" in str(exc)
    else:
        raise AssertionError("an unknown variant must be refused")
