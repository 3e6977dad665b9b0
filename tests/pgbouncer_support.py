"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling, on a free port in front of the test PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """`pgbouncer` with pool_mode = transaction, trusting the local user, pointed at `server_url`'s host."""

    def __init__(self, server_url: str, port: int, pool_size: int = 8) -> None:
        self.server = urlsplit(server_url)
        self.port = port
        self.pool_size = pool_size
        # Its own folder, readable by the user it runs as (it refuses to run as root).
        self.dir = Path(tempfile.mkdtemp(prefix="cb-pgbouncer-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str, query: str = "") -> str:
        """The URL of `database` through the bouncer."""
        netloc = f"{self.server.username or 'postgres'}@127.0.0.1:{self.port}"
        return urlunsplit(("postgresql", netloc, "/" + database, query, ""))

    def start(self) -> None:
        if not os.path.exists(PGBOUNCER):
            raise AssertionError("pgbouncer is missing: `make test` installs Debian's pgbouncer (browser-deps)")
        user = self.server.username or "postgres"
        (self.dir / "users.txt").write_text(f'"{user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.server.hostname or '127.0.0.1'} port={self.server.port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'users.txt'}\n"
            # The set-up docs/postgres.md recommends, and the one that breaks named prepared statements.
            "pool_mode = transaction\n"
            "max_client_conn = 400\n"
            f"default_pool_size = {self.pool_size}\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        os.chmod(self.dir, 0o777)
        for f in self.dir.iterdir():
            os.chmod(f, 0o666)
        args = [PGBOUNCER]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.proc = subprocess.Popen(
            [*args, str(self.dir / "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pgbouncer exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("pgbouncer did not listen in 10 s")

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
