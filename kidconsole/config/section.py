"""The base of every model of the run config's schema (its sections, phases, augmentations)."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Unknown keys are errors, types are exact (YAML gives real ints, floats and booleans),
    every number is finite: no key of a run config has a use for inf or nan. A value set in code
    (the launcher's run name) is checked as one read from a file."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True,
                              validate_assignment=True)
