"""Money as shoppers and owners read it: the one formatter of amounts with their currency, by CLDR (Babel)."""

from __future__ import annotations

from babel.numbers import UnknownCurrencyError, format_currency, format_decimal


def format_money(amount: float | None, currency: str | None = None, locale: str = "en") -> str:
    """CLDR's pattern for the locale: en "€1,234.50", de "1.234,50 €", fr "1 234,50 €"; "¥1,400" (no decimals where
    the currency has none); a plain "1,234.50" without a currency, "" without an amount."""
    if amount is None:
        return ""
    code = (currency or "").upper()
    if not code:
        return str(format_decimal(amount, format="#,##0.00", locale=locale))
    try:
        return str(format_currency(amount, code, locale=locale))
    except UnknownCurrencyError:
        # A made-up code still shows, plainly: "14.00 XYZ".
        return f"{format_decimal(amount, format='#,##0.00', locale=locale)} {code}"
