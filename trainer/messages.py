"""One shape for every message about a bad setting: "The 'x' parameter must ... Got ... instead."

The shape is scikit-learn's parameter validation: a line names the key as the user wrote
it, what is allowed, and what was given. Pydantic's own reports are rewritten to it by
:func:`format_validation_error`; a check written by hand (a data file's row, a model's
limit) raises :class:`ParameterError` inside a validator, or builds its line with
:func:`parameter_message` where no validator runs.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

# Sentinels of ParameterError.value: show the value pydantic was given / show no value.
_INPUT: Any = object()
NO_VALUE: Any = object()


class ParameterError(ValueError):
    """A validator's refusal that names the key it is about and what that key held.

    Pydantic reports a validator's ``ValueError`` at the validator's own place: a check of
    a whole section (a model validator) would be reported at the section, and the user would
    have to guess which key to fix. Raising this instead says which key (``key``, relative to
    the validated model or field) and what it held (``value``), so the message still reads
    "The '<key>' parameter must ... Got ... instead.". ``requirement`` starts with "must";
    without ``value`` (or ``got``, the value in words), the line shows what the validator
    was given.
    """

    def __init__(
        self,
        requirement: str,
        *,
        key: tuple[str | int, ...] = (),
        value: Any = _INPUT,
        got: str | None = None,
    ) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.key = key
        self.value = value
        self.got = got  # words for the value ("none of them"), shown instead of its repr


def parameter_message(
    key: str, requirement: str, value: Any = NO_VALUE, *, of: str | None = None
) -> str:
    """The one line for a refusal made outside pydantic (a model's limit, a data file, a
    function's argument): ``The '<key>' parameter [of <of>] <requirement>. Got <value!r>
    instead.`` ``requirement`` starts with "must"; ``value`` is left out where the
    requirement already says what was given."""
    owner = f" of {of}" if of else ""
    return f"The '{key}' parameter{owner} {requirement.rstrip('.')}.{_got(value)}"


def requirement_of(err: ValidationError) -> str:
    """The words after "The 'x' parameter" for the first problem of ``err``."""
    return _requirement(err.errors(include_url=False)[0], (), None, None)


# Tags of tagged unions start with this; they are not keys, so errors leave them out.
UNION_TAG_PREFIX = "_shape_"
# Without the input at hand, these loc parts are recognisably pydantic's names for union
# branches ('constrained-int', "literal['all']", 'list[int]', 'function-after[...]').
_BRANCH_NAME = re.compile(r"^(constrained-\w+|[\w-]+\[.*\]|int|float|str|bool|none)$")
_SHOULD = re.compile(r"^(?:Input|Value|String|List|Tuple|Set|Dictionary|Object|Data) should (.*)$")
_LONGEST_SHOWN = 100  # characters of a value's repr in "Got ... instead."


def format_validation_error(
    err: ValidationError,
    where: str,
    source: Mapping[str, Any] | None = None,
    model: type[BaseModel] | None = None,
) -> str:
    """The problems of ``err``, one line each: ``<where>: The '<key>' parameter must ...``.

    The shape is scikit-learn's ("The 'distill.k' parameter must be an int >= 1 or 'all'.
    Got 0 instead."), so every line names the key as the user wrote it, what is allowed and
    what was given. Pydantic's own locations and wording are rewritten to that end:

    - ``source``, the validated input, tells real keys from the parts pydantic adds to a
      location: a union branch's name (``constrained-int``) or a level a before-validator
      made up (a sweep's flat dataset entry is validated as ``{..., data: {...}}``, but the
      key the user knows is ``datasets[0].max_length``, not ``datasets.0.data.max_length``).
    - one line per key: the branches of a union that all failed are one problem, joined
      with "or" ("must be a valid number or 'auto'").
    - ``model`` lists the known keys of a section next to an unknown one.

    Parameters
    ----------
    err : ValidationError
        What pydantic refused.
    where : str
        Starts every line: the file, or "config" / "sweep spec" for a dict.
    source : Mapping, optional
        The input ``err`` is about.
    model : type of BaseModel, optional
        The model that was validated.

    Returns
    -------
    str
        One line per offending key, without a header line.
    """
    groups: dict[tuple[tuple[str | int, ...], bool], list[tuple[str, Any]]] = {}
    branch_only: dict[tuple[tuple[str | int, ...], bool], bool] = {}
    for problem in err.errors(include_url=False):
        loc = tuple(problem["loc"])
        if problem["type"] == "invalid_key":  # a mapping's key that is not a string
            loc += ("[key]",)
        value = problem.get("input", NO_VALUE)
        requirement = _requirement(problem, loc, source, model)
        error = (problem.get("ctx") or {}).get("error")
        extra: tuple[str | int, ...] = ()
        if isinstance(error, ParameterError):
            extra = error.key
            if error.value is not _INPUT:
                value = error.value
        if problem["type"] in ("missing", "extra_forbidden"):
            value = NO_VALUE  # the key is the problem, not a value
        if isinstance(error, ParameterError) and error.got is not None:
            value = _Shown(error.got)
        user_loc, is_key, added = _user_loc(loc, source, problem["type"])
        group = (user_loc + extra, is_key)
        groups.setdefault(group, []).append((requirement, value))
        branch_only[group] = branch_only.get(group, True) and added
    # A union's branch that failed on the value's type ("must be a valid integer") is noise
    # beside a branch that took the value and failed deeper ('seeds[1]' must be >= 0).
    deeper = [key for key, _ in groups]
    for group in list(groups):
        key = group[0]
        if branch_only[group] and any(len(d) > len(key) and d[: len(key)] == key for d in deeper):
            del groups[group]
    return "\n".join(
        f"{where}: {_problem_line(loc, is_key, problems)}"
        for (loc, is_key), problems in groups.items()
    )


class _Shown(str):
    """A value's description given in words (``got``), shown as is rather than as a repr."""

    def __repr__(self) -> str:
        return str(self)


def dotted_key(loc: Sequence[str | int]) -> str:
    """``('datasets', 0, 'max_length')`` -> ``datasets[0].max_length``, as in YAML paths."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem_line(loc: tuple[str | int, ...], is_key: bool, problems: list[tuple[str, Any]]) -> str:
    requirements = list(dict.fromkeys(r for r, _ in problems))
    for lead in ("must be ", "must "):  # a union's branches: "must be a number or 'auto'"
        if all(r.startswith(lead) for r in requirements):
            requirement = lead + " or ".join(r.removeprefix(lead) for r in requirements)
            break
    else:
        requirement = "; ".join(requirements)
    if is_key:  # the key itself is wrong: the line is about the mapping that holds it
        loc = loc[:-1]
    subject = f"The '{dotted_key(loc)}' parameter" if loc else "The top level"
    if is_key:
        subject += "'s keys"
    value = problems[0][1]
    return f"{subject} {requirement.rstrip('.')}.{_got(value)}"


def _got(value: Any) -> str:
    """`` Got <value!r> instead.``, or nothing where the value is none or a big mapping."""
    if value is NO_VALUE:
        return ""
    shown = repr(value)
    if isinstance(value, Mapping) and len(shown) > 60:
        return ""
    if len(shown) > _LONGEST_SHOWN:
        shown = shown[: _LONGEST_SHOWN - 3] + "..."
    return f" Got {shown} instead."


def _user_loc(
    loc: tuple[str | int, ...], source: Mapping[str, Any] | None, kind: str = ""
) -> tuple[tuple[str | int, ...], bool, bool]:
    """The key as the user wrote it, whether the problem is a mapping's key itself, and
    whether pydantic added parts to the location (a union branch's name, a made-up level).

    A part of pydantic's location is a real key when the input has it there, or when it is
    the key a mapping lacks or should not have (``kind`` "missing" / "extra_forbidden").
    Any other part was added by validation, not written by the user, and is left out.
    """
    is_key = bool(loc) and loc[-1] == "[key]"
    parts = loc[:-1] if is_key else loc
    if source is None:
        kept = tuple(
            p
            for p in parts
            if not (
                isinstance(p, str) and (p.startswith(UNION_TAG_PREFIX) or _BRANCH_NAME.match(p))
            )
        )
        return kept, is_key, len(kept) != len(parts)
    node: Any = source
    kept_parts: list[str | int] = []
    for i, part in enumerate(parts):
        if _holds(node, part):
            kept_parts.append(part)
            node = node[part]
        elif (
            i == len(parts) - 1
            and isinstance(node, Mapping)
            and kind in ("missing", "extra_forbidden")
        ):
            kept_parts.append(part)
    return tuple(kept_parts), is_key, len(kept_parts) != len(parts)


def _holds(node: Any, part: str | int) -> bool:
    """Whether the input ``node`` has ``part`` (a mapping's key, a list's index)."""
    if isinstance(node, Mapping):
        return part in node
    if isinstance(part, int) and isinstance(node, (list, tuple)):
        return -len(node) <= part < len(node)
    return False


def _requirement(
    problem: Any,
    loc: tuple[str | int, ...],
    source: Mapping[str, Any] | None,
    model: type[BaseModel] | None,
) -> str:
    """What pydantic's complaint asks for, as the words after "The 'x' parameter"."""
    kind, msg, ctx = problem["type"], str(problem["msg"]), problem.get("ctx") or {}
    error = ctx.get("error")
    if isinstance(error, ParameterError):
        return error.requirement
    if kind in ("value_error", "assertion_error"):
        text = re.sub(r"^(Value error|Assertion failed), ", "", msg)
        return text if text.startswith("must ") else f"is invalid: {text}"
    if kind == "missing":
        return "must be given (it has no default)"
    if kind == "extra_forbidden":
        return "is not a known key" + _known_keys(loc, source, model)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping of keys to values (a YAML section)"
    if kind in ("list_type", "tuple_type", "set_type"):  # YAML has lists, not tuples
        return "must be a list"
    if kind == "path_type":
        return "must be a path (a string)"
    if kind == "invalid_key":
        return "must be strings"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"must have at least {n} item{'s' * (n != 1)}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"must have at most {n} item{'s' * (n != 1)}"
    if kind == "string_pattern_mismatch":
        return f"must match the regular expression {ctx.get('pattern')!r}"
    should = _SHOULD.match(msg)
    if should:
        # "a valid integer, unable to parse string as an integer": the value says the rest
        return "must " + re.sub(r", (unable to|got) .*$", "", should.group(1))
    return f"is invalid: {msg}"


def _known_keys(
    loc: tuple[str | int, ...], source: Mapping[str, Any] | None, model: type[BaseModel] | None
) -> str:
    """The keys an unknown key could have been, with the closest one ("did you mean 'lr'?"),
    found by walking ``model``'s types along the location: a typo is fixed from the message
    alone. Where the section is a level the user did not write (a flat dataset entry), the
    keys of the level above are the user's keys too."""
    if model is None or not loc:
        return ""
    chain: list[type[BaseModel] | None] = [model]
    annotation: Any = model
    for part in loc[:-1]:
        step = _step(annotation, part)
        if step is not None:  # else a union branch's name: not a level of the types
            annotation = step
        chain.append(model_in(annotation))
    section = chain[-1]
    if section is None:
        return ""
    keys = _field_keys(section)
    user_parent = _user_loc(loc, source, "extra_forbidden")[0][:-1]
    if len(loc) >= 2 and len(chain) >= 2 and user_parent != tuple(loc[:-1]):
        above = chain[-2]
        if above is not None and loc[-2] in _field_keys(above):
            keys = list(dict.fromkeys([k for k in _field_keys(above) if k != loc[-2]] + keys))
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    where = f"of '{dotted_key(user_parent)}'" if user_parent else "at the top level"
    listed = f"keys {where} are {', '.join(repr(k) for k in keys)}"
    return f"; did you mean {close[0]!r}? The {listed}" if close else f"; the {listed}"


def _field_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    """The type at ``part`` inside ``annotation`` (a model's field, a list's item, a dict's
    value), or None when ``part`` is not a level of it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _step(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _step(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    return None


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``X | None``, ``Annotated[X, ...]``), if one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Annotated, Union, types.UnionType):
        for arg in get_args(annotation):
            found = model_in(arg)
            if found is not None:
                return found
    return None
