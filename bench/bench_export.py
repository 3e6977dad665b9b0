"""`cartback leads export` of 1,000,000 leads vs Python's csv module writing the same rows from a list.

The leads go straight into a fresh database made by `cartback migrate` (sqlite3 executemany).
The baseline writes the very rows of the export (read back from the exported file) with
csv.writer from a list in memory, to a file in the same folder. The export runs as the
`cartback leads export --output FILE` process a user runs (start-up included); its peak memory
is that process's max RSS (os.wait4). A second site with a tenth of the leads shows that the
memory does not grow with the row count. Three rounds; medians.

    .venv/bin/python bench/bench_export.py [--leads 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, ROOT, bench_env, cartback, create_site, median, report, row


def fill(db: Path, site_id: int, n: int, start: int) -> None:
    rng = random.Random(site_id)
    t0 = 1_760_000_000.0
    codes = [None, None, "SAVE10", "WELCOME-5", "=cmd|' /C calc'!A0"]  # one in five a formula to escape
    variants = [None, None, '{"headline":"B"}', '{"discount":"A","headline":"A"}']
    sources = ["popup", "popup", "popup", "identify"]

    def rows():
        for i in range(start, start + n):
            value = round(rng.uniform(5, 500), 2) if i % 3 else None
            yield (
                site_id,
                f"shopper{i}@example.com",
                f"vis-{i:08d}",
                sources[i % 4],
                i % 2,
                codes[i % 5],
                variants[i % 4],
                value,
                "EUR" if value is not None else None,
                t0 + i * 0.731,
            )

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO leads (site_id, email, visitor_id, source, consent, discount_code, variants, cart_value, currency,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.close()


def export(env: dict[str, str], key: str, out: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one `cartback leads export` process."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "collector", "leads", "export", "--site", key, "--output", str(out)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"export failed: {proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


BASELINE = """
import csv, sys, time
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    rows = list(csv.reader(f))
t = time.perf_counter()
with open(sys.argv[2], "w", encoding="utf-8", newline="") as f:
    csv.writer(f, lineterminator="\\r\\n").writerows(rows)
print(time.perf_counter() - t, len(rows))
"""


def baseline(source: Path, out: Path) -> tuple[float, int]:
    """Seconds to write the rows of source (held in a list) with csv.writer; in a process of its
    own, so that this one stays small (a fork would count its memory in the next export's RSS)."""
    seconds, rows = subprocess.run(
        [PY, "-c", BASELINE, str(source), str(out)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(seconds), int(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, small = args.leads, max(1, args.leads // 10)
    with tempfile.TemporaryDirectory(prefix="cartback-bench-export-") as t:
        tmp = Path(t)
        db = tmp / "cartback.db"
        env = bench_env(db)
        cartback(env, "migrate")
        big_key = create_site(env, "https://shop.example")["key"]
        small_key = create_site(env, "https://other.example")["key"]
        conn = sqlite3.connect(db)
        ids = dict(conn.execute("SELECT key, id FROM sites").fetchall())
        conn.close()
        t0 = time.perf_counter()
        fill(db, ids[big_key], n, 0)
        fill(db, ids[small_key], small, n)
        print(f"inserted {n + small} leads in {time.perf_counter() - t0:.1f} s", flush=True)

        out = tmp / "leads.csv"
        secs, rss, ratios = [], [], []
        small_rss = []
        for r in range(args.rounds):
            s, m = export(env, big_key, out)
            b, lines = baseline(out, tmp / "baseline.csv")
            assert lines == n + 1, f"{lines - 1} rows exported, {n} expected"
            # Compared in chunks: reading both files whole would swell this process, and the
            # next export, forked from it, would count that memory as its own.
            assert filecmp.cmp(tmp / "baseline.csv", out, shallow=False), "the baseline wrote other bytes"
            _, sm = export(env, small_key, tmp / "small.csv")
            secs.append(s)
            rss.append(m)
            small_rss.append(sm)
            ratios.append((n / s) / (n / b))
            print(
                f"round {r + 1}: export {n / s:,.0f} rows/s ({s:.2f} s, peak RSS {m:.0f} MB; {small:,} leads: {sm:.0f} MB)"
                f" | csv module from a list {n / b:,.0f} rows/s ({b:.2f} s) | ratio {ratios[-1]:.2f}",
                flush=True,
            )

    ratio, s = median(ratios), median(secs)
    peak, peak_small = max(rss), max(small_rss)
    print(
        f"median: export {n / s:,.0f} rows/s, ratio {ratio:.2f}; peak RSS {peak:.0f} MB ({small:,} leads: {peak_small:.0f} MB)"
    )
    report(
        [
            row(
                f"leads export, {n:,} leads (rows/s)",
                f"{n / s:,.0f}",
                f"{n / s / ratio:,.0f} (csv module, list)",
                ratio,
                ">= 0.50",
                ratio >= 0.5,
            ),
            row(
                "leads export: peak memory",
                f"{peak:.0f} MB",
                f"{peak_small:.0f} MB at {small:,} leads",
                None,
                "< 100 MB",
                peak < 100,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
