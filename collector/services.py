"""What every route and command works with: the configuration, the store and the signer, typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from starlette.requests import HTTPConnection

from collector.config import Config
from collector.security import Signer
from collector.store import Store, open_database


@dataclass(frozen=True)
class Services:
    config: Config
    store: Store
    signer: Signer

    @classmethod
    def from_config(cls, config: Config, store: Store | None = None) -> Services:
        return cls(
            config=config, store=store or Store(open_database(config.database_url)), signer=Signer(config.secret_key)
        )


def services(conn: HTTPConnection) -> Services:
    """The app's services, as create_app put them on its state."""
    return cast(Services, conn.app.state.services)
