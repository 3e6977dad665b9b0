"""The SQLite store side by side with the last release's, in one run: ingest, p99, event-loop stalls.

Both stores serve the real collector (`collector.app:create_app` on uvicorn, one process) on a copy
of the same database (PRELOAD carts and twice as many events, so the heavy read has work to do),
in turn, ROUNDS times. wrk sends cart updates as the snippet does (32 connections) while a
client thread asks for the all-time stats API in a loop (the dashboard's heaviest read). The
served process times every callback its event loop runs: the longest is the worst stall (the
time the loop answered nothing else, waiting for the GIL included). The last release's store is its own file, taken from git
(`git show 2f5d3c7:collector/store/sqlite.py`) and put in place of the new one in the served
process only.

    .venv/bin/python bench/bench_sqlite_store.py [--seconds 6] [--rounds 5] [--preload 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

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
from bench_ingest import run_wrk

ORIGIN = "https://shop.example"
LAST_RELEASE = "2f5d3c7"


def serve(engine: str, port: int, stats_file: str, old_source: str | None) -> None:
    """Runs in the served process: the collector with the chosen store and a stall monitor."""
    import importlib.util

    import uvicorn

    import collector.store as store_pkg

    if engine == "old":
        assert old_source
        spec = importlib.util.spec_from_file_location("cartback_last_release_sqlite", old_source)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        store_pkg.SqliteDatabase = module.SqliteDatabase  # type: ignore[attr-defined]
    from collector.app import create_app

    if os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))

    # How long each callback of the event loop runs (a request's step, a task's step, a timer):
    # the longest is the worst stall, the time during which the loop answered nothing else.
    durations: list[tuple[float, float, str]] = []
    run = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        t = time.perf_counter()
        run(handle)
        d = time.perf_counter() - t
        durations.append((time.time(), d, repr(handle)[:200] if d > 0.003 else ""))

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]

    async def main() -> None:
        server = uvicorn.Server(
            uvicorn.Config(create_app(), host="127.0.0.1", port=port, access_log=False, log_level="warning")
        )
        # uvicorn re-raises a caught SIGTERM once it has stopped, which would end this process
        # before it writes its figures: stop it by hand instead.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
        await server.serve()
        Path(stats_file).write_text(json.dumps(durations))

    asyncio.run(main())


def preload(db: Path, n: int) -> None:
    """n abandoned carts with an email and 2n `shown` events over 90 days, for site 1."""
    conn = sqlite3.connect(db)
    now = time.time()
    conn.execute(
        "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status,"
        " created_at, updated_at, abandoned_at)"
        " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)"
        " SELECT 1, 'pre-' || i, 'p' || i || '@shop.example', '[]', 'EUR', 20 + i % 50, 1,"
        " CASE WHEN i % 3 = 0 THEN 'abandoned' ELSE 'open' END, :now - i * 38.0, :now - i * 38.0, :now - i * 37.0"
        " FROM n",
        {"n": n, "now": now},
    )
    conn.execute(
        "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at)"
        " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " SELECT 1, 'pre-' || i, 'pre-' || (i / 2), 'shown', NULL, ? - i * 19.0 FROM n",
        (2 * n, now),
    )
    conn.commit()
    conn.close()


def process_cpu(pid: int) -> float:
    """Seconds of CPU the whole process (every thread) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heavy_reads(url: str, token: str, stop: threading.Event, times: list[float]) -> None:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    while not stop.is_set():
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        times.append(time.perf_counter() - t)


def one_round(
    engine: str, template: Path, tmp: Path, n: int, args: argparse.Namespace, wrk: str, lua: Path, old: Path
) -> dict[str, Any]:
    folder = tmp / f"{engine}{n}"
    folder.mkdir()
    db = folder / "cartback.db"
    shutil.copy(template, db)
    port = free_port()
    env = bench_env(db, f"http://127.0.0.1:{port}")
    env["CARTBACK_DATA_DIR"] = str(tmp / "data")  # the same secret key, hence the same token, for every round
    stats_file = folder / "stalls.json"
    proc = subprocess.Popen(
        [PY, __file__, "--serve", engine, str(port), str(stats_file), str(old)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "log", "wb"),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        key, token = args.key, args.token
        url = f"http://127.0.0.1:{port}/c/{key}/cart"
        run_wrk(wrk, url, lua, 2, args.connections)
        stop, read_times = threading.Event(), []
        reader = threading.Thread(
            target=heavy_reads, args=(f"http://127.0.0.1:{port}/api/v1/sites/{key}/stats", token, stop, read_times)
        )
        if not args.no_read:
            reader.start()
        window = (time.time(), 0.0)
        cpu0 = process_cpu(proc.pid)
        res = run_wrk(wrk, url, lua, args.seconds, args.connections, proc.pid)
        res["all_cpu_us"] = (process_cpu(proc.pid) - cpu0) / max(1, res["ok"]) * 1e6
        window = (window[0], time.time())
        stop.set()
        if not args.no_read:
            reader.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    if not stats_file.exists():
        raise SystemExit(f"{engine} collector left no stall figures: " + (folder / "log").read_text()[-2000:])
    # The callbacks of the measured run only (not start-up, not the warm-up).
    timed = [(d, what) for t, d, what in json.loads(stats_file.read_text()) if window[0] <= t <= window[1]]
    timed.sort()
    measured = [d for d, _ in timed] or [0.0]
    res["worst_what"] = timed[-1][1] if timed else ""
    res["worst_ms"] = measured[-1] * 1000
    res["stall_p999_ms"] = measured[int(len(measured) * 0.999) - 1] * 1000
    res["reads"] = len(read_times)
    res["read_ms"] = median(read_times) * 1000 if read_times else float("nan")
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--preload", type=int, default=200_000)
    ap.add_argument("--no-read", action="store_true", help="ingest alone, without the heavy read beside it")
    ap.add_argument("--verbose", action="store_true", help="name the worst callback of each round")
    ap.add_argument("--serve", nargs=4, metavar=("ENGINE", "PORT", "STATS", "OLD"))
    args = ap.parse_args()
    if args.serve:
        engine, port, stats, old = args.serve
        serve(engine, int(port), stats, old)
        return 0

    wrk = ensure_apt("wrk", "wrk")
    with tempfile.TemporaryDirectory(prefix="cartback-bench-sqlite-") as t:
        tmp = Path(t)
        print(f"work folder {tmp}", flush=True)
        old = tmp / "last_release_sqlite.py"
        old.write_text(
            subprocess.run(
                ["git", "show", f"{LAST_RELEASE}:collector/store/sqlite.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        template = tmp / "template.db"
        env = bench_env(template)
        env["CARTBACK_DATA_DIR"] = str(tmp / "data")
        cartback(env, "migrate")
        args.key = create_site(env, ORIGIN)["key"]
        args.token = cartback(env, "tokens", "create", "--name", "bench").strip().split()[-1]
        preload(template, args.preload)
        lua = tmp / "cart.lua"
        lua.write_text(cart_update_lua(ORIGIN, "store"))
        results: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for n in range(args.rounds):
            for engine in ("old", "new") if n % 2 == 0 else ("new", "old"):
                r = one_round(engine, template, tmp, n, args, wrk, lua, old)
                results[engine].append(r)
                print(
                    f"round {n + 1} {engine:>3}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                    f"worst loop stall {r['worst_ms']:.2f} ms (p99.9 of callbacks {r['stall_p999_ms']:.2f} ms), "
                    f"CPU per request: loop {r['cpu_us']:.0f} us, all threads {r['all_cpu_us']:.0f} us, "
                    f"{r['reads']} stats reads beside (median {r['read_ms']:.0f} ms), non-2xx {r['non2xx']}"
                    + (f"; the worst: {r['worst_what']}" if args.verbose else ""),
                    flush=True,
                )

    def med(engine: str, k: str) -> float:
        return median([r[k] for r in results[engine]])

    ratio = median([n["rps"] / o["rps"] for n, o in zip(results["new"], results["old"], strict=True)])
    print(
        f"median: new {med('new', 'rps'):.0f} req/s vs last release {med('old', 'rps'):.0f} (ratio {ratio:.2f}); "
        f"p99 {med('new', 'p99'):.2f} vs {med('old', 'p99'):.2f} ms; worst stall {med('new', 'worst_ms'):.2f} vs "
        f"{med('old', 'worst_ms'):.2f} ms; event-loop CPU per request {med('new', 'cpu_us'):.0f} vs "
        f"{med('old', 'cpu_us'):.0f} us, all threads {med('new', 'all_cpu_us'):.0f} vs {med('old', 'all_cpu_us'):.0f} us; stats read {med('new', 'read_ms'):.0f} vs {med('old', 'read_ms'):.0f} ms"
    )
    worst = max(r["worst_ms"] for r in results["new"])
    report(
        [
            row(
                "sqlite store: ingest beside a heavy read (req/s)",
                f"{med('new', 'rps'):.0f}",
                f"{med('old', 'rps'):.0f} (last release's store)",
                ratio,
                ">= 0.90",
                ratio >= 0.9,
            ),
            row(
                "sqlite store: ingest p99 beside a heavy read",
                f"{med('new', 'p99'):.2f} ms",
                f"{med('old', 'p99'):.2f} ms (last release's store)",
                med("old", "p99") / max(med("new", "p99"), 1e-9),
                "",
                None,
            ),
            row(
                "sqlite store: event-loop CPU per ingest request",
                f"{med('new', 'cpu_us'):.0f} us",
                f"{med('old', 'cpu_us'):.0f} us (last release's store)",
                med("old", "cpu_us") / max(med("new", "cpu_us"), 1e-9),
                "",
                None,
            ),
            row(
                "sqlite store: worst event-loop stall (median of rounds)",
                f"{med('new', 'worst_ms'):.2f} ms (max {worst:.2f})",
                f"{med('old', 'worst_ms'):.2f} ms (last release's store)",
                med("old", "worst_ms") / max(med("new", "worst_ms"), 1e-9),
                "< 3 ms",
                med("new", "worst_ms") < 3,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
