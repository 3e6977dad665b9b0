"""Retargeting audiences: who is in them, and the hashes checked against known SHA-256 values."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import time
from typing import Any

from collector.audiences import build_audience, hash_email, normalize
from collector.schemas import SiteSettings
from tests.conftest import ROOT, TEST_SECRET
from tests.dashboard_support import login

# SHA-256 of the normalised addresses, computed apart from the code under test.
KNOWN = {
    "test@example.com": "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b",
    "johndoe@gmail.com": "06a240d11cc201676da976f7b49341181fd180da37cbe40a77432c0a366c80c3",
    "john.doe@gmail.com": "375320dd9ae7ed408002f3768e16cb5f28c861062fd50dff9a3bff62e9dce4ef",
    "foobar@googlemail.com": "47261942a7ae38ec51f6a6e3de76f9c7c47020eb4fc8169d61e99bf6260c50b4",
    "first.last@example.com": "ed54043dc26abe52005ca8de7f530026bb4773f53e7a6effc7a520944bab01ad",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_known_hashes_are_what_hashlib_says():
    for address, digest in KNOWN.items():
        assert sha(address) == digest


def test_normalisation_per_format():
    assert normalize("  John.Doe@Gmail.COM ", "google") == "johndoe@gmail.com"
    assert normalize("  John.Doe@Gmail.COM ", "meta") == "john.doe@gmail.com"
    assert normalize("Foo.Bar@GoogleMail.com", "google") == "foobar@googlemail.com"
    assert normalize("First.Last@Example.com", "google") == "first.last@example.com"  # dots kept off Gmail
    assert normalize("a.b@notgmail.com", "google") == "a.b@notgmail.com"
    assert hash_email(" TEST@example.com\t", "meta") == KNOWN["test@example.com"]
    assert hash_email("John.Doe@gmail.com", "google") == KNOWN["johndoe@gmail.com"]
    assert hash_email("John.Doe@gmail.com", "meta") == KNOWN["john.doe@gmail.com"]


async def add_cart(store: Any, site: Any, email: str | None, abandoned: bool = True, vid: str | None = None) -> None:
    now = time.time()
    vid = vid or f"visitor-{time.monotonic_ns()}"  # one open cart per visitor
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at, updated_at, abandoned_at)"
            " VALUES (?, ?, ?, '[]', 'EUR', 10, 1, ?, ?, ?, ?)",
            site.id,
            vid,
            email,
            "abandoned" if abandoned else "open",
            now,
            now,
            now if abandoned else None,
        )
    )


async def add_lead(store: Any, site: Any, email: str, consent: bool) -> None:
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO leads (site_id, email, visitor_id, source, consent, created_at) VALUES (?, ?, 'v', 'popup', ?, ?)",
            site.id,
            email,
            1 if consent else 0,
            time.time(),
        )
    )


async def seed(store: Any, site: Any) -> None:
    # Addresses as a careless import might have stored them: normalisation is the export's job.
    for email in (
        " John.Doe@Gmail.com ",
        "johndoe@gmail.com",
        "Foo.Bar@GoogleMail.com",
        "First.Last@Example.com",
        "TEST@example.com",
    ):
        await add_cart(store, site, email)
    await add_cart(store, site, "open@example.com", abandoned=False)  # never abandoned
    await add_cart(store, site, None)  # no address
    await add_cart(store, site, "gone@example.com")
    await store.db.write(
        lambda tx: tx.execute(
            "INSERT INTO unsubscribes (site_id, email, created_at) VALUES (?, 'gone@example.com', ?)",
            site.id,
            time.time(),
        )
    )


async def test_audiences_hash_the_shoppers_who_abandoned(store, site):
    await seed(store, site)
    google = await build_audience(store.db, site, "google")
    assert google.hashes == sorted(
        [
            KNOWN["johndoe@gmail.com"],
            KNOWN["foobar@googlemail.com"],
            KNOWN["first.last@example.com"],
            KNOWN["test@example.com"],
        ]
    )
    assert google.csv().splitlines()[0] == "Email"
    meta = await build_audience(store.db, site, "meta")
    assert meta.hashes == sorted(
        [
            KNOWN["john.doe@gmail.com"],
            KNOWN["johndoe@gmail.com"],
            sha("foo.bar@googlemail.com"),
            KNOWN["first.last@example.com"],
            KNOWN["test@example.com"],
        ]
    )
    assert meta.csv().splitlines() == ["email", *meta.hashes]
    assert meta.too_small and "100" in (meta.warning() or "")


async def test_consent_is_required_where_the_site_requires_it(store, site):
    settings = SiteSettings.model_validate({"popup": {"require_consent": True}})
    site = await store.sites.update(site.key, settings=settings)
    for email, consent in (("yes@example.com", True), ("no@example.com", False), ("nolead@example.com", None)):
        await add_cart(store, site, email)
        if consent is not None:
            await add_lead(store, site, email, consent)
    audience = await build_audience(store.db, site, "meta")
    assert audience.hashes == [sha("yes@example.com")]
    # Without the requirement, everyone who abandoned with an address is in.
    site = await store.sites.update(site.key, settings=SiteSettings())
    assert len((await build_audience(store.db, site, "meta")).hashes) == 3


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_") or k.startswith("CARTBACK_TEST_")}
    env.update({"CARTBACK_DATABASE_URL": database_url, "CARTBACK_SECRET_KEY": TEST_SECRET})
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, capture_output=True, text=True, cwd=ROOT)


async def test_the_command_and_the_page_give_the_same_file(client, store, site, database_url, tmp_path):
    await seed(store, site)
    r = cli(database_url, "audiences", "export", "--site", site.key, "--format", "google")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["Email"] and sorted(x[0] for x in rows[1:]) == sorted(
        [
            KNOWN["johndoe@gmail.com"],
            KNOWN["foobar@googlemail.com"],
            KNOWN["first.last@example.com"],
            KNOWN["test@example.com"],
        ]
    )
    assert "warning" in r.stderr and "100" in r.stderr  # Meta's minimum
    out = tmp_path / "meta.csv"
    r = cli(database_url, "audiences", "export", "--site", site.key, "--format", "meta", "--output", str(out))
    assert r.returncode == 0 and out.read_text().splitlines()[0] == "email"
    await login(client, store)
    page = await client.get(f"/admin/sites/{site.key}/audience.csv?format=meta")
    assert page.status_code == 200 and page.content == out.read_bytes()
    assert "attachment" in page.headers["content-disposition"]
    overview = await client.get(f"/admin/sites/{site.key}")
    assert 'data-metric="audience_size">5<' in overview.text and "Fewer than 100 people" in overview.text
    assert (await client.get(f"/admin/sites/{site.key}/audience.csv?format=tiktok")).status_code == 400
    # Bad usage: exit 2 with one line.
    bad = cli(database_url, "audiences", "export", "--site", site.key, "--format", "tiktok")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    unknown = cli(database_url, "audiences", "export", "--site", "pk_nope", "--format", "meta")
    assert unknown.returncode == 2 and "pk_nope" in unknown.stderr


async def test_no_warning_from_a_hundred_people(client, store, site):
    for i in range(100):
        await add_cart(store, site, f"shopper{i}@example.com", vid=f"v{i}")
    audience = await build_audience(store.db, site, "google")
    assert audience.size == 100 and audience.warning() is None
    await login(client, store)
    assert "Fewer than 100 people" not in (await client.get(f"/admin/sites/{site.key}")).text


def test_google_strips_a_plus_suffix_from_gmail_addresses_as_the_data_manager_guide_says():
    # The guide's own example.
    assert normalize("cloudy.sanfrancisco+shopping@gmail.com", "google") == "cloudysanfrancisco@gmail.com"
    assert normalize("Ann.B+promo+x@GoogleMail.com", "google") == "annb@googlemail.com"
    # Other domains keep both their dots and their +suffix; Meta keeps everything.
    assert normalize("ann.b+promo@example.com", "google") == "ann.b+promo@example.com"
    assert normalize("cloudy.sanfrancisco+shopping@gmail.com", "meta") == "cloudy.sanfrancisco+shopping@gmail.com"
    assert hash_email("cloudy.sanfrancisco+shopping@gmail.com", "google") == sha("cloudysanfrancisco@gmail.com")


async def test_google_consent_parts_are_separate_files_with_their_flags(client, store, site, database_url, tmp_path):
    for addr, consent in (("yes@example.com", True), ("no@example.com", False), ("alsoyes@gmail.com", True)):
        await add_lead(store, site, addr, consent)
        await add_cart(store, site, addr)
    await add_cart(store, site, "nolead@example.com")  # identified, never asked: not granted
    granted = await build_audience(store.db, site, "google", "granted")
    denied = await build_audience(store.db, site, "google", "not-granted")
    assert granted.hashes == sorted([sha("yes@example.com"), sha("alsoyes@gmail.com")])
    assert denied.hashes == sorted([sha("no@example.com"), sha("nolead@example.com")])
    assert granted.filename(site.key).endswith("-ad_user_data-GRANTED-ad_personalization-GRANTED.csv")
    assert denied.filename(site.key).endswith("-ad_user_data-DENIED-ad_personalization-DENIED.csv")
    await login(client, store)
    r = await client.get(f"/admin/sites/{site.key}/audience.csv?format=google&consent=granted")
    assert (
        r.status_code == 200 and r.headers["x-cartback-consent"] == "ad_user_data=GRANTED; ad_personalization=GRANTED"
    )
    assert "GRANTED" in r.headers["content-disposition"] and r.text == granted.csv()
    r = await client.get(f"/admin/sites/{site.key}/audience.csv?format=google&consent=maybe")
    assert r.status_code == 400
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
    env.update(CARTBACK_DATABASE_URL=database_url, CARTBACK_SECRET_KEY=TEST_SECRET, CARTBACK_DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector",
            "audiences",
            "export",
            "--site",
            site.key,
            "--format",
            "google",
            "--consent",
            "not-granted",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == denied.csv().splitlines()
    assert "ad_user_data=DENIED; ad_personalization=DENIED" in out.stderr
