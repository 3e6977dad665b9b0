"""Settings that cannot brick a site (issue 13): a stored settings row that no longer validates
marks that one site as needing attention (dashboard and CLI), every other site keeps sending,
and `cartback sites update` can always overwrite it."""

from __future__ import annotations

import json
import time

from collector.recovery import reminders
from collector.recovery.sweep import sweep_once
from tests.conftest import SHOP_ORIGIN
from tests.dashboard_support import login
from tests.recovery_support import MUG, Shopper, cli, cli_env, one, settings, sweep_state


async def test_a_corrupt_settings_row_stops_only_its_site_and_sites_update_repairs_it(
    app, client, store, smtp, config, tmp_path
):
    broken = await store.sites.create("Broken shop", [SHOP_ORIGIN], settings(abandon_after_minutes=0))
    fine = await store.sites.create("Fine shop", ["https://fine.test"], settings(abandon_after_minutes=0))
    ann = Shopper(client, broken)
    await ann.lead("ann@example.com")
    await ann.cart(MUG)
    r = await client.post(
        f"/c/{fine.key}/lead",
        content=json.dumps(
            {"id": "fine-lead-0001", "vid": "fine-visitor-1", "email": "bob@example.com", "consent": True}
        ),
        headers={"Origin": "https://fine.test"},
    )
    assert r.status_code == 200
    r = await client.post(
        f"/c/{fine.key}/cart",
        content=json.dumps({"id": "fine-cart-0001", "vid": "fine-visitor-1", "items": [MUG], "currency": "EUR"}),
        headers={"Origin": "https://fine.test"},
    )
    assert r.status_code == 200
    # A hand edit (or a downgrade) leaves a value this release refuses.
    doc = broken.settings.dump()
    doc["popup"]["delay_ms"] = -5
    await store.db.write(
        lambda tx: tx.execute("UPDATE sites SET settings = ? WHERE id = ?", json.dumps(doc), broken.id)
    )
    store.sites._forget(broken.key)  # as another process would see it once the 5 s cache runs out

    state = sweep_state(app, smtp.url)
    s = await sweep_once(state, now=time.time() + 1)
    assert s["sent"] == 1 and [m.to for m in smtp.messages] == ["bob@example.com"]
    # The broken site's cart waits, open, and nothing of it was cancelled.
    assert (await one(store, "SELECT status FROM carts WHERE site_id = ?", broken.id))["status"] == "open"

    # The dashboard says so, and still answers.
    await login(client, store)
    page = await client.get("/admin")
    assert page.status_code == 200 and "Needs attention" in page.text and "popup.delay_ms" in page.text
    assert (await client.get(f"/admin/sites/{broken.key}")).status_code == 200
    assert (await client.get(f"/admin/sites/{fine.key}")).text.count("Needs attention") == 0
    # Its snippet still loads (with the popup off), and ingest still stores its carts.
    assert (await client.get(f"/s/{broken.key}.js")).status_code == 200

    # The command line lists every site and names the one to repair...
    env = cli_env(config.database_url, tmp_path)
    code, out, err = await cli(env, "sites", "list", "--json")
    assert code == 0
    listed = {s["key"]: s for s in json.loads(out)}
    assert "popup.delay_ms" in listed[broken.key]["needs_attention"] and listed[fine.key]["needs_attention"] is None
    code, out, err = await cli(env, "sites", "list")
    assert code == 0 and broken.key in out and "needs attention" in err
    # ...and `sites update` overwrites the bad row.
    good = tmp_path / "good.json"
    good.write_text(json.dumps(settings(abandon_after_minutes=0).dump()))
    code, out, err = await cli(env, "sites", "update", broken.key, "--settings", str(good))
    assert code == 0, err
    store.sites._forget(broken.key)
    later = time.time() + reminders.NEEDS_ATTENTION_WAIT + 5
    await sweep_once(state, now=later)
    assert sorted(m.to for m in smtp.messages) == ["ann@example.com", "bob@example.com"]
