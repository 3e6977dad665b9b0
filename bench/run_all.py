"""`make bench`: runs every bench script in turn and prints one table of what, figure, baseline, ratio, target, met.

Each script measures its own baseline in the same run (these machines are noisy: ratios and
medians, never a figure from another day). Scripts install what they need (wrk, chromium from
Debian; aiosmtpd, playwright from PyPI). bench_ingest_backends.py (PostgreSQL) needs a
PostgreSQL server on this machine (see its --postgres); without one its row says it failed.

    .venv/bin/python bench/run_all.py [--only ingest,export,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import PY, RESULT_PREFIX, ROOT, machine  # noqa: E402

BENCHES = ["ingest", "ingest_backends", "export", "sweep", "send", "snippet", "dashboard"]


def run(name: str) -> tuple[list[dict], float]:
    script = HERE / f"bench_{name}.py"
    t = time.monotonic()
    rows: list[dict] = []
    print(f"\n=== {script.relative_to(ROOT)} ===", flush=True)
    proc = subprocess.Popen([PY, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            rows = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    proc.wait()
    if proc.returncode != 0 or not rows:
        rows = [
            {
                "what": f"bench_{name}.py",
                "figure": f"did not finish (exit {proc.returncode}): see its output",
                "baseline": "",
                "ratio": None,
                "target": "",
                "met": False,
            }
        ]
    return rows, time.monotonic() - t


def table(rows: list[dict]) -> str:
    head = ["what", "figure", "baseline (same run)", "ratio", "target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['what']} | {r['figure']} | {r['baseline']} | {ratio} | {r['target']} | {met} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated: " + ", ".join(BENCHES))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else BENCHES
    all_rows: list[dict] = []
    started = time.monotonic()
    for name in names:
        if not (HERE / f"bench_{name}.py").exists():
            print(f"\n=== bench/bench_{name}.py: not there, skipped ===")
            continue
        rows, seconds = run(name)
        print(f"({seconds:.0f} s)")
        all_rows += rows
    load = os.getloadavg()
    print(
        f"\nMachine: {machine()}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f};"
        f" {time.monotonic() - started:.0f} s in all. Rerun: make bench\n"
    )
    print(table(all_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
