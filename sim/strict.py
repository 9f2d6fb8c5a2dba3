"""The base of every validated input model (scenarios, plans, studies): strict where pydantic is lax.

Unknown keys are errors (a typo must not be ignored), NaN and infinities are refused, and a boolean is
not a number: pydantic's lax mode reads ``true`` as 1 for an int field, so ``--set population.users=true``
would simulate one user. Ints still become floats where a float is wanted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from sim import yamlio


class StrictModel(BaseModel):
    """Unknown keys, NaN/infinity and booleans for numbers are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool) and info.field_name and yamlio.wants_number(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a number, got {str(v).lower()}")
        return v
