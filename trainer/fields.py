"""The constrained types every section of a config or a spec is built from."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from trainer.messages import ParameterError


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A finite float: NaN passes no comparison and inf passes `gt`, and either would only
# surface as a NaN loss (or a crash inside torch) minutes into a run.
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Seeds feed numpy (which refuses negatives) and torch (64 bits): keep them to 32 bits.
Seed = Annotated[int, Field(ge=0, lt=2**32)]

# Adam's moment decay rates: 1 or more never forgets (torch refuses it only at the first step).
Beta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


def _not_a_boolean(value: Any) -> Any:
    """YAML's ``yes``/``true`` where a number goes is a mistake, not 1: pydantic would
    read it as one."""
    if isinstance(value, bool):
        raise ParameterError("must be a number, not a boolean")
    return value


NotBoolean = BeforeValidator(_not_a_boolean)
# A weight or a scale (λ, γ): a finite float >= 0.
NonNegative = Annotated[float, NotBoolean, Field(ge=0, allow_inf_nan=False)]
