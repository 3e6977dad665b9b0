"""Ingest of a real cart update vs a bare Starlette route on the same uvicorn.

What the snippet sends (POST /c/{key}/cart, text/plain JSON, an Origin, a fresh client id and
visitor id per request, made by a wrk Lua script), against `cartback serve` (one process,
SQLite), 32 connections. The baseline is a tiny Starlette app on the same uvicorn settings whose
route reads the same JSON, parses it and answers 204. The two are measured in turn, five rounds,
and the medians are quoted; beside req/s, the event loop's CPU per request (from /proc), which the
machine's other load disturbs much less than throughput. After each collector round the collector is killed with SIGKILL and
the carts on disk are counted: every 2xx that wrk saw must be there.

    .venv/bin/python bench/bench_ingest.py [--seconds 6] [--rounds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    PY,
    ROOT,
    bench_env,
    cart_update_lua,
    cartback,
    create_site,
    ensure_apt,
    free_port,
    median,
    report,
    row,
    wait_http,
)

ORIGIN = "https://shop.example"


def bare_app():  # the baseline, run with --serve-bare in its own process
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def cart(request: Request) -> Response:
        json.loads(await request.body())
        return Response(status_code=204)

    return Starlette(
        routes=[Route("/c/{key}/{kind}", cart, methods=["POST"]), Route("/healthz", lambda r: Response("ok"))]
    )


def serve_bare(port: int) -> None:
    import uvicorn

    # The same uvicorn settings as `cartback serve` (loop and http "auto", no access log).
    uvicorn.run(bare_app(), host="127.0.0.1", port=port, access_log=False, log_level="warning")


def main_thread_cpu(pid: int) -> float:
    """Seconds of CPU the process's main thread (the event loop) has used so far."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str, url: str, lua: Path, seconds: float, connections: int, pid: int | None = None
) -> dict[str, float]:
    cpu0 = main_thread_cpu(pid) if pid else 0.0
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "10s", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert m, out
    requests = int(m.group(1))
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # The event loop's CPU per answered request: what the machine's noise does not change much.
    cpu_us = (main_thread_cpu(pid) - cpu0) / max(1, requests) * 1e6 if pid else 0.0
    return {
        "cpu_us": cpu_us,
        "rps": rps,
        "p50": _ms(out, "50%"),
        "p99": _ms(out, "99%"),
        "ok": requests - non2xx,
        "non2xx": non2xx,
        "errors": errors,
    }


def _ms(out: str, pct: str) -> float:
    m = re.search(rf"^\s*{re.escape(pct)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    assert m, out
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def collector_round(wrk: str, lua: Path, tmp: Path, n: int, seconds: float, connections: int) -> dict[str, float]:
    db = tmp / f"round{n}" / "cartback.db"
    db.parent.mkdir()
    port = free_port()
    env = bench_env(db, f"http://127.0.0.1:{port}")
    cartback(env, "migrate")
    key = create_site(env, ORIGIN)["key"]
    log = open(tmp / f"collector{n}.log", "wb")
    proc = subprocess.Popen(
        [PY, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/c/{key}/cart"
        warm = run_wrk(wrk, url, lua, 2, connections)
        res = run_wrk(wrk, url, lua, seconds, connections, proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown, no flush: only committed writes remain
        proc.wait()
        log.close()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    stored = conn.execute("SELECT COUNT(*) FROM carts").fetchone()[0]
    conn.close()
    acked = warm["ok"] + res["ok"]
    res["acked"], res["stored"] = acked, stored
    res["lost"] = max(0, acked - stored)
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--serve-bare", type=int, metavar="PORT")
    args = ap.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    wrk = ensure_apt("wrk", "wrk")
    with tempfile.TemporaryDirectory(prefix="cartback-bench-ingest-") as t:
        tmp = Path(t)
        lua = tmp / "cart.lua"
        lua.write_text(cart_update_lua(ORIGIN, "bench"))
        bare_port = free_port()
        bare = subprocess.Popen([PY, __file__, "--serve-bare", str(bare_port)], cwd=ROOT)
        bares, carts = [], []
        try:
            wait_http(f"http://127.0.0.1:{bare_port}/healthz", bare)
            bare_url = f"http://127.0.0.1:{bare_port}/c/bench/cart"
            for n in range(args.rounds):
                run_wrk(wrk, bare_url, lua, 2, args.connections)
                b = run_wrk(wrk, bare_url, lua, args.seconds, args.connections, bare.pid)
                c = collector_round(wrk, lua, tmp, n, args.seconds, args.connections)
                bares.append(b)
                carts.append(c)
                print(
                    f"round {n + 1}: bare {b['rps']:.0f} req/s (p99 {b['p99']:.2f} ms, loop CPU {b['cpu_us']:.0f} us/req) | "
                    f"cartback {c['rps']:.0f} req/s (loop CPU {c['cpu_us']:.0f} us/req, "
                    f"p50 {c['p50']:.2f} ms, p99 {c['p99']:.2f} ms, non-2xx {c['non2xx']}, socket errors {c['errors']}) "
                    f"ratio {c['rps'] / b['rps']:.2f} | 2xx {c['acked']}, carts on disk after kill -9 {c['stored']}",
                    flush=True,
                )
        finally:
            bare.terminate()
            bare.wait()

    ratio = median([c["rps"] / b["rps"] for b, c in zip(bares, carts, strict=False)])
    p99 = median([c["p99"] for c in carts])
    lost = sum(c["lost"] for c in carts)
    bad = sum(c["non2xx"] + c["errors"] for c in carts)
    crps, brps = median([c["rps"] for c in carts]), median([b["rps"] for b in bares])
    cpu_ratio = median([b["cpu_us"] / c["cpu_us"] for b, c in zip(bares, carts, strict=False)])
    print(
        f"median event-loop CPU per request: cartback {median([c['cpu_us'] for c in carts]):.0f} us, "
        f"bare {median([b['cpu_us'] for b in bares]):.0f} us: bare/cartback {cpu_ratio:.2f} "
        "(the throughput ratio the loop's CPU allows, less sensitive to other load on the machine)"
    )
    print(
        f"median: cartback {crps:.0f} req/s, bare {brps:.0f} req/s, ratio {ratio:.2f}, p99 {p99:.2f} ms, "
        f"lost after kill -9: {lost}, non-2xx or socket errors: {bad}"
    )
    report(
        [
            row(
                "ingest: cart update, 1 process, 32 conns (req/s)",
                f"{crps:.0f}",
                f"{brps:.0f} (bare route)",
                ratio,
                ">= 0.80",
                ratio >= 0.8,
            ),
            row(
                "ingest: event-loop CPU per request",
                f"{median([c['cpu_us'] for c in carts]):.0f} us",
                f"{median([b['cpu_us'] for b in bares]):.0f} us (bare route)",
                cpu_ratio,
                ">= 0.80 (bare/cartback)",
                cpu_ratio >= 0.8,
            ),
            row("ingest: p99 latency", f"{p99:.2f} ms", "", None, "< 10 ms", p99 < 10),
            row(
                "ingest: 2xx lost after kill -9",
                f"{lost} of {sum(c['acked'] for c in carts)}",
                "",
                None,
                "0, no errors",
                lost == 0 and bad == 0,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
