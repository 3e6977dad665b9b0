"""WCAG 2.x colour contrast: the ratio of two colours, and the text colour that reads on a background."""

from __future__ import annotations

WHITE = "#ffffff"
NEAR_BLACK = "#111827"
BLACK = "#000000"
AA = 4.5  # WCAG 2.1 SC 1.4.3 for body text


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    if len(h) != 6:
        raise ValueError(f"not a #rgb or #rrggbb colour: {color!r}")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def luminance(color: str) -> float:
    """Relative luminance as WCAG defines it (sRGB, linearised)."""

    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else float(((s + 0.055) / 1.055) ** 2.4)

    r, g, b = _rgb(color)
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def ratio(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """White or near-black, whichever contrasts more with the background; on the mid greys where neither
    reaches AA, black (white or black always reaches 4.58:1 at least)."""
    best = WHITE if ratio(WHITE, background) >= ratio(NEAR_BLACK, background) else NEAR_BLACK
    return best if passes_aa(best, background) else BLACK


def passes_aa(text: str, background: str) -> bool:
    return ratio(text, background) >= AA
