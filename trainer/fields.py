"""The constrained types every section of a config or a spec is built from."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from trainer.messages import ParameterError


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types an annotation is made of, through unions, containers, Annotated
    and Literal (a literal contributes its values' types); ``Any`` stands for itself."""
    if annotation is Any or (isinstance(annotation, type) and not typing.get_args(annotation)):
        return {annotation}
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin is Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    out: set[Any] = set()
    for arg in typing.get_args(annotation):
        out |= _leaf_types(arg)
    if origin is not None and origin not in (typing.Union, types.UnionType):
        out.add(origin)
    return out


def _numbers_only(annotation: Any) -> bool:
    """Whether a field takes numbers and no booleans (or anything)."""
    leaves = _leaf_types(annotation)
    return bool(leaves & {int, float}) and not leaves & {bool, Any, object}


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default. And a
    boolean is never a number: YAML's ``true`` where a count, a rate or a size goes is a
    mistake that pydantic would read as 1 (``optim.lr: true`` trained at lr 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _numbers_only(field.annotation):
            return value
        if isinstance(value, bool):
            raise ParameterError("must be a number, not a boolean")
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, bool):
                    raise ParameterError("must be a number, not a boolean", key=(i,), value=item)
        return value


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
