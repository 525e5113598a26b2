"""Subset options as typed by people (CLI flags, console form fields)."""

from __future__ import annotations

from kidconsole.errors import KidconsoleError


def parse_numbers(text: str, *, what: str) -> tuple[float, ...]:
    """``"0.915/0.052/0.033"`` or ``"2,4,8"`` -> a tuple of floats; an error names the option."""
    parts = [p for p in text.replace(",", "/").split("/") if p.strip()]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise KidconsoleError(f"{what}: expected numbers separated by '/' or ',', got {text!r}") from None


def parse_max_val_samples(text: str, *, what: str = "max_val_samples") -> int | None:
    """A whole number, or ``none``/``all``/``0``/empty for the whole validation split."""
    text = text.strip()
    if text.lower() in ("", "none", "all", "0"):
        return None
    try:
        n = int(text)
    except ValueError:
        raise KidconsoleError(f"{what}: expected a whole number or 'none', got {text!r}") from None
    if n < 0:
        raise KidconsoleError(f"{what}: expected a whole number or 'none', got {text!r}")
    return n
