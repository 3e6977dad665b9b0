"""Where a webhook may be sent: the URL's form, checked when the settings are saved, and its address, checked
when connecting.

Webhook URLs are typed by whoever runs a site's settings; without these checks they could point
the collector at the machines around it (a database's port, a cloud metadata address). The
form is checked once, at settings time; the address again on every delivery, after DNS, so a
name that resolves to a private address later is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST = re.compile(
    r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


class BlockedAddress(Exception):
    """The receiver's address is loopback, private, link-local or otherwise not on the internet."""


def check_webhook_url(url: str) -> str:
    """The URL if it is an http(s) URL with a valid host and port; ValueError saying what is wrong."""
    if _CONTROL.search(url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        raise ValueError("not a valid URL") from None
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        raise ValueError("the port must be a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = parts.hostname or ""
    if not host:
        raise ValueError("must name a host")
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (use the signature to authenticate)")
    if not _is_ip(host) and not _HOST.match(host.rstrip(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_public(address: str) -> bool:
    """True for an address on the public internet (not loopback, private, link-local, reserved…)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int, allow_private: bool) -> str:
    """One address of `host` to connect to; BlockedAddress when any of its addresses is not public
    (and private ones are not allowed), OSError when the name does not resolve."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise BlockedAddress("the receiver's address is private, loopback or link-local")
    return addresses[0]
