"""What every `cartback` command shares: the parser, bad-usage errors, site lookup, input and output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TextIO

from pydantic import ValidationError

from collector.addresses import check_email, normalize_email
from collector.config import Config
from collector.httputil import TimeRangeError, parse_time_range
from collector.schemas import SiteSettings, format_validation_error
from collector.store import Site, Store
from collector.store.sites import normalize_origin


class UsageError(Exception):
    """Bad usage or bad input: exit status 2 with a one-line reason."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every other bad-input answer of the command.
        raise UsageError(message)


Command = Callable[[argparse.Namespace, Store, Config], Awaitable[int]]


def origin(value: str) -> str:
    """The origin as the store keeps it (`https://shop.example:443` is `https://shop.example`)."""
    try:
        return normalize_origin(value)
    except ValueError:
        raise UsageError(f"--origin {value!r}: give scheme, host and port only, like https://shop.example") from None


def email_arg(value: str, flag: str = "--email") -> str:
    """A valid address, normalised as the store compares them."""
    try:
        checked = check_email(value)
    except ValueError as exc:
        raise UsageError(f"{flag} {value!r}: {exc}") from None
    # email-validator's form (an IDN domain in Unicode), lowercased as the store compares.
    return normalize_email(checked)


def load_settings_file(path: str) -> SiteSettings:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    try:
        return SiteSettings.model_validate(doc)
    except ValidationError as exc:
        raise UsageError(f"{path}: {format_validation_error(exc)}") from None


def read_input(path: str) -> tuple[str, str]:
    """The text of a file, or of standard input for `-`, and the name to report it by."""
    if path == "-":
        return sys.stdin.read(), "standard input"
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read(), path
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


async def require_site(store: Store, key: str) -> Site:
    site = await store.sites.get(key, fresh=True)
    if site is None:
        raise UsageError(f"no site with key {key!r}")
    return site


@contextmanager
def output(path: str | None) -> Iterator[TextIO]:
    """The file --output names, or standard output (flushed, never closed)."""
    if path is None:
        try:
            yield sys.stdout
        finally:
            sys.stdout.flush()
        return
    try:
        f = open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror}") from None
    with f:
        yield f


def time_range(args: argparse.Namespace) -> tuple[float | None, float | None]:
    try:
        return parse_time_range(args.since, args.until)
    except TimeRangeError as exc:
        raise UsageError(f"--since and --until: {exc}") from None
