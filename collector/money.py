"""Money as shoppers and owners read it: the one formatter of amounts with their currency."""

from __future__ import annotations

# Symbol, decimals, and whether the symbol goes first. Currencies not listed are shown as
# "14.00 XYZ": correct everywhere, if plain. No locale data needed (and no Babel).
CURRENCIES: dict[str, tuple[str, int]] = {
    "EUR": ("€", 2),
    "USD": ("$", 2),
    "GBP": ("£", 2),
    "JPY": ("¥", 0),
    "CNY": ("CN¥", 2),
    "INR": ("₹", 2),
    "KRW": ("₩", 0),
    "CAD": ("CA$", 2),
    "AUD": ("A$", 2),
    "NZD": ("NZ$", 2),
    "BRL": ("R$", 2),
    "MXN": ("MX$", 2),
    "CHF": ("CHF ", 2),
    "SEK": ("SEK ", 2),
    "NOK": ("NOK ", 2),
    "DKK": ("DKK ", 2),
    "PLN": ("PLN ", 2),
}
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF"}


def format_money(amount: float | None, currency: str | None = None) -> str:
    """ "€14.00", "$1,234.50", "¥1,400", else "14.00 XYZ"; a plain "1,234.50" without a currency, "" without an amount."""
    if amount is None:
        return ""
    currency = (currency or "").upper()
    symbol, decimals = CURRENCIES.get(currency, ("", 0 if currency in ZERO_DECIMAL else 2))
    number = f"{amount:,.{decimals}f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}".strip()
