"""The console's screens, one module each (screens that are not on the first frame load when first opened).

``SCREENS`` lists every screen in the order the help (``?``) and docs/console.md
show their keys; a test fails when a screen is missing from it.
"""

from __future__ import annotations

import importlib

SCREENS = (
    "dashboard:DashboardScreen", "charts:ChartsScreen", "decodes:DecodesScreen", "run_detail:RunDetailScreen",
    "launch:LaunchScreen", "subset:SubsetScreen", "errors:ErrorsScreen", "errors:UtterancesScreen",
    "errors:DecodeScreen", "errors:ConfusionScreen", "confirm:ConfirmScreen", "sweep:SweepScreen",
)


def screen_classes() -> list[type]:
    """Every screen class of ``SCREENS`` (importing its module)."""
    out = []
    for entry in SCREENS:
        module, name = entry.split(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), name))
    return out
