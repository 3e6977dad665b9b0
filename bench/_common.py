"""Helpers shared by the bench scripts: tools, free ports, servers, medians, the result line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
# run_all.py reads the last line that starts with this and carries this JSON.
RESULT_PREFIX = "BENCH-RESULT "


def ensure_apt(binary: str, package: str) -> str:
    """The path of a Debian tool, installed with apt-get when missing (as root)."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which(binary)
    if not found:
        raise SystemExit(f"{binary} is missing: apt-get install {package}")
    return found


def ensure_pip(module: str, package: str | None = None) -> None:
    """A Python module, pip-installed into this interpreter's environment when missing."""
    try:
        __import__(module)
    except ImportError:
        subprocess.run([PY, "-m", "pip", "install", "-q", package or module], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except Exception:  # noqa: BLE001 - not up yet: try again
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def bench_env(db_path: Path, public_url: str = "http://127.0.0.1:1", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
    env.update(
        {
            "CARTBACK_DATABASE_URL": f"sqlite:///{db_path}",
            "CARTBACK_SECRET_KEY": SECRET,
            "CARTBACK_PUBLIC_URL": public_url,
            "CARTBACK_SWEEP_SECONDS": "0",
            "CARTBACK_DATA_DIR": str(db_path.parent / "data"),
        }
    )
    env.update(extra)
    return env


def cartback(env: dict[str, str], *args: str, input: str | None = None) -> str:
    r = subprocess.run([PY, "-m", "collector", *args], env=env, cwd=ROOT, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cartback {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def create_site(env: dict[str, str], origin: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    args = ["sites", "create", "--name", "Bench shop", "--origin", origin, "--json"]
    if settings is not None:
        path = Path(env["CARTBACK_DATA_DIR"]).parent / f"settings-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(settings))
        args += ["--settings", str(path)]
    return json.loads(cartback(env, *args))


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}"


def report(rows: list[dict[str, Any]]) -> None:
    """Prints the rows for run_all.py: what, figure, baseline, ratio, target, met."""
    print(RESULT_PREFIX + json.dumps(rows), flush=True)


def row(what: str, figure: str, baseline: str, ratio: float | None, target: str, met: bool | None) -> dict[str, Any]:
    return {"what": what, "figure": figure, "baseline": baseline, "ratio": ratio, "target": target, "met": met}


# One cart update as the snippet's outbox sends it ({items, currency, id, vid}), with ids unique
# to each wrk invocation, thread and request: a script reused for a warm-up and a measured run
# must not resend ids (the collector would answer its retries without writing). Fill __RUN__ and
# __ORIGIN__ with cart_update_lua().
CART_UPDATE_LUA = r"""
local counter = 0
local threads = 0
local f = io.open("/proc/sys/kernel/random/uuid")
local run = "__RUN__-" .. string.sub(f:read("*l"), 1, 8)
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["Origin"] = "__ORIGIN__"

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  local suffix = run .. "-" .. tid .. "-" .. counter
  local body = '{"items":[{"id":"sku-1042","name":"Blue enamel mug","price":12.5,"quantity":2,'
    .. '"image":"https://shop.example/img/mug.jpg","url":"https://shop.example/p/blue-mug"},'
    .. '{"id":"sku-2210","name":"Linen tea towel","price":7.9,"quantity":1,'
    .. '"image":"https://shop.example/img/towel.jpg","url":"https://shop.example/p/tea-towel"}],'
    .. '"currency":"EUR","id":"evt-' .. suffix .. '","vid":"vis-' .. suffix .. '"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def cart_update_lua(origin: str, run: str) -> str:
    return CART_UPDATE_LUA.replace("__ORIGIN__", origin).replace("__RUN__", run)
