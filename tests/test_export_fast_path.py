"""The leads CSV through each backend's batch iterator is the same bytes as lead_row over plain rows."""

from __future__ import annotations

import json

from collector.exports import lead_csv_chunks, lead_row
from tests.conftest import SHOP_ORIGIN


async def test_both_paths_write_the_same_csv(client, site, store):
    h = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}
    emails = ["ann@example.com", "=cmd@example.com", "bob+x@example.com", "-x@example.com"]
    for n, email in enumerate(emails * 2):
        body = {
            "id": f"evt-lead-{n:06d}",
            "vid": f"visitor-{n:06d}",
            "email": email.replace("@", f"{n}@"),
            "consent": n % 2 == 0,
            "discount_code": ["SAVE10", "@x", None, "+1"][n % 4],
            "variants": {"headline": "B", "z": "-a"} if n % 3 == 0 else None,
        }
        r = await client.post(
            f"/c/{site.key}/lead", content=json.dumps({k: v for k, v in body.items() if v is not None}), headers=h
        )
        assert r.status_code == 200
    await store.db.write(
        lambda tx: tx.execute("UPDATE leads SET cart_value = 12.345, currency = '=EUR' WHERE email LIKE 'ann%'")
    )
    await store.db.write(
        lambda tx: tx.execute("UPDATE leads SET created_at = 1700000000.9999996 WHERE email LIKE 'bob%'")
    )
    fast = "".join([c async for c in lead_csv_chunks(store.db, site.id)])
    rows = await store.db.fetchall(
        "SELECT email, created_at, source, consent, discount_code, cart_value, currency, variants FROM leads"
        " WHERE site_id = ? ORDER BY created_at, id",
        site.id,
    )
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([lead_row(r) for r in rows])
    assert fast.split("\r\n", 1)[1] == buf.getvalue()
    assert "'=cmd" in fast and "'=EUR" in fast and "z='-a" not in fast and "headline=B;z=-a" in fast
