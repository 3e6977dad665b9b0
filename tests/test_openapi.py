"""GET /api/v1/openapi.json, from outside: a valid OpenAPI 3.1 document (openapi-spec-validator) of every
/api/v1 route, and schemathesis against the running collector finds no 5xx and no answer off the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from collector.app import ROUTES
from tests.conftest import LiveCollector

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def _shop_data(live: LiveCollector, key: str) -> None:
    """A lead, a cart and a checkout step, so the stats and the CSV have something to say."""
    h = {"Origin": "https://shop.example", "Content-Type": "text/plain"}
    for kind, body in (
        ("lead", {"id": "lead-00000001", "vid": "visitor-000001", "email": "ann@example.com", "consent": True}),
        (
            "cart",
            {
                "id": "cart-00000001",
                "vid": "visitor-000001",
                "items": [{"id": "m", "name": "Mug", "price": 14, "quantity": 2}],
                "currency": "EUR",
            },
        ),
        ("event", {"id": "chk-00000001", "vid": "visitor-000001", "type": "checkout", "step": "shipping"}),
        ("event", {"id": "rsn-00000001", "vid": "visitor-000001", "type": "reason", "reason": "Shipping costs"}),
    ):
        r = httpx.post(f"{live.url}/c/{key}/{kind}", content=json.dumps(body), headers=h)
        assert r.status_code == 200, r.text


def test_the_document_is_valid_openapi_31_and_names_every_api_route(live_collector: LiveCollector) -> None:
    r = httpx.get(live_collector.url + "/api/v1/openapi.json")  # no token
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    api_routes = {getattr(route, "path", "") for route in ROUTES if getattr(route, "path", "").startswith("/api/v1/")}
    assert set(doc["paths"]) == api_routes
    stats = doc["components"]["schemas"]["StatsOut"]
    for key in (
        "carts",
        "recovered_revenue",
        "steps",
        "checkout_steps",
        "reasons",
        "recoverable",
        "lost_value",
        "revenue_per_recipient",
    ):
        assert key in stats["required"], key
    for key in ("holdout", "treated", "incremental_recovery_rate", "interval"):
        assert key in stats["properties"], key


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(
    live_collector: LiveCollector, tmp_path: Path
) -> None:
    site = live_collector.create_site(["https://shop.example"], {"recovery": {"holdout_percent": 10}})
    token = live_collector.cli("tokens", "create", "--name", "schemathesis").stdout.strip().split()[-1]
    _shop_data(live_collector, site["key"])
    # The site's real key in the path, so the answers with numbers are tested too (unknown keys give 404s anyway).
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\nkey = "{site["key"]}"\n')
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            f"{live_collector.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "17",
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "har",
            "--report-har-path",
            str(tmp_path / "run.har"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    # The site's own numbers were answered (and checked), not only 404s for generated keys.
    entries = json.loads((tmp_path / "run.har").read_text())["log"]["entries"]
    answered = {(e["request"]["url"].split("?")[0].rsplit("/", 1)[-1], e["response"]["status"]) for e in entries}
    assert ("stats", 200) in answered and ("leads.csv", 200) in answered, sorted(answered)[:20]
    assert not any(status >= 500 for _, status in answered)
