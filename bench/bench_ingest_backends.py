"""Ingest throughput by backend: SQLite with one process, PostgreSQL with one and with two.

The load is what the snippet sends: POST /c/{key}/cart with a text/plain JSON cart, an
Origin header, and a fresh client id and visitor id per request (a wrk Lua script makes
them), so every request is a real cart insert, never a duplicate. 32 connections, a 2 s
warm-up, then --seconds of measurement, against `cartback serve` on 127.0.0.1:

  sqlite-1    CARTBACK_DATABASE_URL=sqlite:///... , one process
  postgres-1  a fresh PostgreSQL database, one process
  postgres-2  the same, `cartback serve --workers 2`

The three run in turn inside each round (--rounds, medians quoted), so the machine's
background load falls on all of them alike. After each run the server is stopped and the
carts in the database are counted: every 2xx that wrk saw must be there. Figures are
req/s, p50/p99 latency, the ratio to sqlite-1, and CPU milliseconds per request spent
by the collector processes and by the PostgreSQL server (when it runs on this machine:
every `postgres` process counts, so other work on the same server shows up there too).

    .venv/bin/python bench/bench_ingest_backends.py [--seconds 10] [--rounds 3] [--connections 32]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

The PostgreSQL server URL comes from --postgres, else CARTBACK_BENCH_POSTGRES_URL, else
CARTBACK_TEST_POSTGRES_URL; each run creates its own database there and drops it after.
Traffic goes to 127.0.0.1 only, and the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
    machine,
    median,
    report,
    row,
    wait_http,
)

ORIGIN = "https://shop.example"
CONFIGS = [("sqlite-1", "sqlite", 1), ("postgres-1", "postgresql", 1), ("postgres-2", "postgresql", 2)]


# -- wrk -----------------------------------------------------------------------------------
def run_wrk(wrk: str, url: str, lua: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    requests = int(m.group(1))
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {
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


# -- CPU accounting from /proc ----------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            for k in kids:
                out += _children(int(k))
    except OSError:
        pass
    return out


def _postgres_pids() -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if Path(f"/proc/{d}/comm").read_text().strip() == "postgres":
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


# -- PostgreSQL databases ---------------------------------------------------------------------
def _pg(server: str, sql: str) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(server)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def create_database(server: str) -> str:
    name = f"cb_bench_{uuid.uuid4().hex[:12]}"
    _pg(server, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def drop_database(server: str, url: str) -> None:
    _pg(server, f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


# -- one run ----------------------------------------------------------------------------------
def cart_script(home: Path, label: str) -> Path:
    """A wrk script whose ids no other run (warm-up or measurement) has used."""
    path = home / f"cart-{label}.lua"
    path.write_text(cart_update_lua(ORIGIN, label))
    return path


def one_run(
    name: str, backend: str, workers: int, wrk: str, tmp: Path, server: str | None, seconds: int, connections: int
) -> dict[str, Any]:
    home = tmp / f"{name}-{time.monotonic_ns()}"
    home.mkdir()
    port = free_port()
    env = bench_env(home / "cartback.db", f"http://127.0.0.1:{port}")
    db_url = None
    if backend == "postgresql":
        assert server
        db_url = create_database(server)
        env["CARTBACK_DATABASE_URL"] = db_url
    log = open(home / "collector.log", "wb")
    proc = None
    try:
        cartback(env, "migrate")
        key = create_site(env, ORIGIN)["key"]
        cmd = [PY, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/c/{key}/cart"
        warm = run_wrk(wrk, url, cart_script(home, "warm"), 2, connections)
        lua = cart_script(home, "run")
        tree = _children(proc.pid)
        pg = _postgres_pids() if backend == "postgresql" else []
        c0, p0 = cpu_seconds(tree), cpu_seconds(pg)
        res = run_wrk(wrk, url, lua, seconds, connections)
        c1, p1 = cpu_seconds(tree), cpu_seconds(pg)
        res["collector_cpu_ms"] = (c1 - c0) / max(1, res["ok"]) * 1000
        res["postgres_cpu_ms"] = (p1 - p0) / max(1, res["ok"]) * 1000 if pg else None
        res["workers_seen"] = len(tree) - 1 if workers > 1 else 1
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    try:
        if db_url:
            stored = int(_pg(db_url, "SELECT COUNT(*) FROM carts"))
        else:
            conn = sqlite3.connect(f"file:{home / 'cartback.db'}?mode=ro", uri=True)
            stored = conn.execute("SELECT COUNT(*) FROM carts").fetchone()[0]
            conn.close()
    finally:
        if db_url:
            drop_database(server, db_url)  # type: ignore[arg-type]
    res["acked"] = warm["ok"] + res["ok"]
    res["stored"] = stored
    res["bad"] = warm["non2xx"] + warm["errors"] + res["non2xx"] + res["errors"]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--postgres",
        default=os.environ.get("CARTBACK_BENCH_POSTGRES_URL")
        or os.environ.get("CARTBACK_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=[c[0] for c in CONFIGS],
        help="run only this set-up (repeatable; the ratios need sqlite-1)",
    )
    args = ap.parse_args()
    configs = [c for c in CONFIGS if not args.only or c[0] in args.only]
    host = urlsplit(args.postgres).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"--postgres must be on this machine (127.0.0.1), not {host}")
    try:
        _pg(args.postgres, "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any reason is reported the same way
        raise SystemExit(f"cannot reach PostgreSQL at {args.postgres}: {exc}") from None
    wrk = ensure_apt("wrk", "wrk")
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    print(
        f"{args.connections} connections, {args.seconds} s per run (after a 2 s warm-up), {args.rounds} round(s)",
        flush=True,
    )

    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="cartback-bench-backends-") as t:
        tmp = Path(t)
        for n in range(args.rounds):
            for name, backend, workers in configs:
                r = one_run(name, backend, workers, wrk, tmp, args.postgres, args.seconds, args.connections)
                results[name].append(r)
                pg_cpu = f", postgres {r['postgres_cpu_ms']:.2f}" if r["postgres_cpu_ms"] is not None else ""
                print(
                    f"round {n + 1} {name:<11} {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
                    f"  cpu ms/req: collector {r['collector_cpu_ms']:.2f}{pg_cpu}"
                    f"  | 2xx {r['acked']}, stored {r['stored']}, non-2xx or errors {r['bad']}",
                    flush=True,
                )

    summary: dict[str, dict[str, float]] = {}
    for name in results:
        cpu = [r["collector_cpu_ms"] + (r["postgres_cpu_ms"] or 0.0) for r in results[name]]
        summary[name] = {
            "rps": median([r["rps"] for r in results[name]]),
            "p99": median([r["p99"] for r in results[name]]),
            "cpu_ms": median(cpu),
        }
    base = summary.get("sqlite-1", {}).get("rps")
    print()
    # CPU ms per request (collector + database server) is what decides how many requests a
    # core can carry; it moves far less with the machine's background load than req/s does.
    print(f"{'':<11} {'req/s':>8} {'p99 ms':>8} {'vs sqlite-1':>12} {'cpu ms/req':>11} {'req/s per core':>15}")
    for name, s in summary.items():
        ratio = f"{s['rps'] / base:12.2f}" if base else f"{'-':>12}"
        print(f"{name:<11} {s['rps']:8.0f} {s['p99']:8.2f} {ratio} {s['cpu_ms']:11.2f} {1000 / s['cpu_ms']:15.0f}")
    lost = sum(max(0, r["acked"] - r["stored"]) for rs in results.values() for r in rs)
    bad = sum(r["bad"] for rs in results.values() for r in rs)
    print(
        f"2xx not in the database: {lost}; non-2xx or socket errors: {bad}; load average after: {os.getloadavg()[0]:.2f}"
    )
    if len(summary) == len(CONFIGS):
        pg1, pg2 = summary["postgres-1"]["rps"], summary["postgres-2"]["rps"]
        report(
            [
                row("ingest by backend: sqlite, 1 process (req/s)", f"{base:.0f}", "", None, "", None),
                row(
                    "ingest by backend: postgres, 1 process (req/s)",
                    f"{pg1:.0f}",
                    f"{base:.0f} (sqlite-1)",
                    round(pg1 / base, 2) if base else None,
                    "",
                    None,
                ),
                row(
                    "ingest by backend: postgres, 2 processes (req/s)",
                    f"{pg2:.0f}",
                    f"{pg1:.0f} (postgres-1)",
                    round(pg2 / pg1, 2) if pg1 else None,
                    "",
                    None,
                ),
                row(
                    "ingest by backend: every 2xx stored",
                    f"{lost} lost",
                    "",
                    None,
                    "0, no errors",
                    lost == 0 and bad == 0,
                ),
            ]
        )
    return 0 if lost == 0 and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
