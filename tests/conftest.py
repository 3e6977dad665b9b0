"""Shared fixtures: a real database per test (SQLite, and PostgreSQL when CARTBACK_TEST_POSTGRES_URL is set), the app with its start-up run, a live collector process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from collector.app import create_app
from collector.config import Config
from collector.schemas import SiteSettings
from collector.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHOP_ORIGIN = "https://shop.test"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


POSTGRES_ENV = "CARTBACK_TEST_POSTGRES_URL"


def _run_async(coro: Any) -> Any:
    """Runs a coroutine to the end on a loop of its own, in a thread, so it never meets the test's loop."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def create_postgres_database() -> str:
    """A fresh, empty database on the test server; returns its URL."""
    import asyncpg

    server = postgres_server_url()
    assert server, f"{POSTGRES_ENV} is not set"
    name = f"cb_{uuid.uuid4().hex[:16]}"

    async def create() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_async(create())
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def drop_postgres_database(url: str) -> None:
    import asyncpg

    server = postgres_server_url()
    assert server
    name = urlsplit(url).path.lstrip("/")

    async def drop() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_async(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that uses the store runs on both backends; PostgreSQL in a fresh database per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cartback.db'}"
        return
    if not postgres_server_url():
        pytest.skip(f"PostgreSQL half: set {POSTGRES_ENV}=postgresql://user@host:port/db to run it")
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return Config(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url="http://collector.test",
        smtp_url=None,
        sweep_seconds=0,
        data_dir=tmp_path / "data",
        # The tests' webhook receivers listen on loopback.
        webhook_allow_private=True,
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[Any]:
    application = create_app(config)
    async with LifespanManager(application):
        yield application


BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def store(app: Any) -> Store:
    return app.state.services.store


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # As a shopper's browser: a recovery link fetched by an HTTP library is a link scanner's, not a click.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://collector.test", headers={"User-Agent": BROWSER_UA}
    ) as c:
        yield c


@pytest.fixture
async def site(store: Store) -> Any:
    return await store.sites.create("Test shop", [SHOP_ORIGIN], SiteSettings())


@pytest.fixture
async def token(store: Store) -> str:
    return await store.users.create_token("tests")


class LiveCollector:
    """`cartback serve` in a real process on a free port, with its own SQLite file."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp / "live.db"
        # The machine's own CARTBACK_* settings must not leak into a test's collector.
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_") or k.startswith("CARTBACK_TEST_")},
            "CARTBACK_DATABASE_URL": f"sqlite:///{self.db_path}",
            "CARTBACK_PUBLIC_URL": self.url,
            "CARTBACK_SECRET_KEY": TEST_SECRET,
            "CARTBACK_SWEEP_SECONDS": "0",
            "CARTBACK_DATA_DIR": str(tmp / "data"),
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "collector.log"

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "collector", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cartback {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("collector did not start in 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def create_site(
        self, origins: list[str], settings: dict[str, Any] | None = None, name: str = "Shop"
    ) -> dict[str, Any]:
        args = ["sites", "create", "--name", name, "--json"]
        for o in origins:
            args += ["--origin", o]
        if settings is not None:
            path = self.tmp / f"settings-{time.monotonic_ns()}.json"
            path.write_text(json.dumps(settings))
            args += ["--settings", str(path)]
        return json.loads(self.cli(*args).stdout)

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()


@pytest.fixture
def live_collector(tmp_path: Path) -> Iterator[LiveCollector]:
    live = LiveCollector(tmp_path)
    live.cli("migrate")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def smtp() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free loopback port, recording what it receives."""
    from tests.recovery_support import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()
