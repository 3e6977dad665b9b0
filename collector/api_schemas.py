"""Pydantic models of the server API's answers: the stats route validates its answer with StatsOut,
the orders route builds OrderOut, and collector/openapi.py publishes both (with OrderIn) as the
OpenAPI document, so the document and the answers cannot drift apart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    # Answers may grow keys (a later release adds some): the document says so (additionalProperties).
    model_config = ConfigDict(extra="allow")


class ErrorOut(Out):
    """Every 4xx (and the rare 5xx) answer of /api/v1: one line that says what is wrong."""

    error: str


class OrderOut(Out):
    """POST /api/v1/orders: the order as stored (the first report of an order id wins)."""

    site: str
    order_id: str
    recovered: bool
    value: float


class VariantCell(Out):
    shown: int = Field(ge=0)
    converted: int = Field(ge=0)
    rate: float
    clicked: int | None = None
    revenue: float | None = None


class Rates(Out):
    abandonment_rate: float
    popup_conversion_rate: float
    open_rate: float
    click_rate: float
    click_to_open_rate: float
    order_per_click_rate: float
    recovery_rate: float


class Opens(Out):
    total: int
    human: int
    proxy: int


class ReasonShare(Out):
    reason: str
    count: int
    share: float


class RevenuePoint(Out):
    date: str
    days: int
    revenue: float
    orders: int


class StepOut(Out):
    step: int = Field(ge=0)
    sent: int
    skipped: int
    skipped_reasons: dict[str, int]
    opened: int
    clicked: int
    recovered_orders: int
    recovered_revenue: float
    in_settings: bool


class CheckoutStep(Out):
    step: str
    visitors: int
    drop: int
    drop_rate: float


class DailyPoint(Out):
    date: str
    days: int
    carts: int
    abandoned: int
    recovered_orders: int
    revenue: float


class Group(Out):
    carts: int
    recovered_orders: int
    recovered_revenue: float
    recovery_rate: float


class StatsOut(Out):
    """GET /api/v1/sites/{key}/stats (docs/reference.md, "the stats fields")."""

    carts: int
    abandoned: int
    popup_shown: int
    leads: int
    emails_sent: int
    emails_opened: int
    emails_clicked: int
    recovered_orders: int
    recovered_revenue: float
    # The part of recovered_revenue the store's server reported (issue 13).
    verified_revenue: float
    recovery_rate: float
    variants: dict[str, dict[str, VariantCell]]
    carts_emailed: int
    rates: Rates
    opens: Opens
    reason_shares: list[ReasonShare]
    revenue_series: list[RevenuePoint]
    recoverable: int
    lost_value: float
    recipients: int
    revenue_per_recipient: float
    steps: list[StepOut]
    checkout_steps: list[CheckoutStep]
    reasons: dict[str, int]
    reasons_by_checkout_step: dict[str, dict[str, int]]
    daily: list[DailyPoint]
    # Only when a holdout is set, or carts of the range were drawn into a group.
    holdout: Group | None = None
    treated: Group | None = None
    incremental_recovery_rate: float | None = None
    interval: list[float] | None = Field(None, min_length=2, max_length=2)
    incremental_revenue: float | None = None
    holdout_percent: float | None = None
    holdout_summary: str | None = None


def checked_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats as computed, after checking them against StatsOut (strictly: no coercion), so the
    answer is what the document promises; a mismatch is a bug and fails loudly here, not in a client."""
    StatsOut.model_validate(stats, strict=True)
    return stats
