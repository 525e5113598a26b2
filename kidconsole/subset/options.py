"""Subset options as typed by people (CLI flags, console form fields), and the names errors call them by."""

from __future__ import annotations

from kidconsole.errors import KidconsoleError

# How each caller names the options of ``build_subset``, so that an error says what to change in the
# caller's own terms: the parameter itself from Python, the flag on the command line ("pool" and
# "edges" are the remedies the errors suggest).
PARAMETER_NAMES = {"pool": "use_source_splits=False", "edges": "age_edges, snr_edges, duration_edges"}
CLI_NAMES = {
    "hours": "--hours", "split_hours": "--split-hours", "split_shares": "--split", "fractions": "--fractions",
    "max_val_samples": "--max-val-samples", "age_edges": "--age-edges", "snr_edges": "--snr-edges",
    "duration_edges": "--duration-edges", "pool": "--pool-splits",
    "edges": "--age-edges, --snr-edges, --duration-edges",
}


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
