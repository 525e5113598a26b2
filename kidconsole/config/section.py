"""The base of every section of the run config: strict, closed, finite (schema.py and the sections kept in
their own modules, such as mirror.py, build on it)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Unknown keys are errors, types are exact (YAML gives real ints, floats and booleans),
    every number is finite: no key of a run config has a use for inf or nan. A value set in code
    (the launcher's run name) is checked as one read from a file."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True,
                              validate_assignment=True)


def _section(help: str) -> Any:
    return Field(default_factory=dict, description=help)  # validated: {} gets the defaults
