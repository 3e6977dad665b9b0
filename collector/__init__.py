"""Cartback's collector: stores carts and leads, sends recovery emails, shows the results."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
