"""Reading a config: YAML files (one line per mistake), ``--set`` overrides, validation."""

from __future__ import annotations

import codecs
import contextlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainer.config import TrainConfig
from trainer.errors import ConfigError
from trainer.messages import format_validation_error


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree[a][b] = value`` for ``dotted`` 'a.b', making the sections on the way."""
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["optim.lr=3e-5", "strategy=sda"]`` into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or "" in (part.strip() for part in key.split(".")):
            raise ConfigError(f"--set expects key.sub=value (no empty key), got {pair!r}")
        try:
            value = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            place, problem = _yaml_problem(exc)
            if isinstance(exc, DuplicateKeyError):
                raise ConfigError(f"--set {pair}: the value has a {problem}") from None
            raise ConfigError(f"--set {pair}: the value is {problem} (at {place})") from None
        if isinstance(value, str):  # YAML 1.1 reads "3e-5" as a string; users mean a number
            with contextlib.suppress(ValueError):
                value = float(value)
        set_dotted(tree, key.strip(), value)
    return tree


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- YAML files ---------------------------------------------------------------------


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice; PyYAML would keep the last silently."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given at line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, at any depth.

    A duplicate is almost always an edit gone wrong (a second ``optim:`` section pasted
    below the first), and with PyYAML's default the first one's values vanish without a
    word. Keys brought in by a merge (``<<: *defaults``) may be overridden, as YAML says.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, first + 1)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """PyYAML's multi-line report as one clause: (where: "line 2, column 1", what)."""
    if isinstance(exc, DuplicateKeyError):
        return (
            f"line {exc.line}",
            f"duplicate key {exc.key!r} (first given at line {exc.first_line})",
        )
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"not valid YAML: {exc.problem}"
        if exc.context:
            context = exc.context
            if exc.context_mark is not None:
                cm = exc.context_mark
                context += f" that starts at line {cm.line + 1}, column {cm.column + 1}"
            text += f" ({context})"
        return f"line {mark.line + 1}, column {mark.column + 1}", _one_line(text)
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.position + 1}", f"not valid YAML: {_one_line(exc.reason)}"
    return "", "not valid YAML: " + _one_line(str(exc))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping a YAML file holds; a missing file, bad YAML or a non-mapping is a
    one-line ``ConfigError`` naming the file (``what`` says what the file should be)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: the {what} path is a directory, not a file.")
    if path.exists() and not path.is_file():  # a FIFO, a device: reading it would block
        raise ConfigError(f"{path}: the {what} path is not a regular file.")
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: the {what} could not be read: {exc.strerror}.") from None
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise ConfigError(
            f"{path} line {line}: the {what} must be UTF-8 text. Got byte "
            f"0x{data[offset]:02x} at byte offset {offset} instead."
        ) from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML gives no line
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path} line {line}: not valid YAML: {_one_line(exc.reason)}") from None
    except yaml.YAMLError as exc:
        place, problem = _yaml_problem(exc)
        raise ConfigError(f"{path} {place}: {problem}" if place else f"{path}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of {what} keys, not {type(raw).__name__}")
    return raw


def load_config(
    source: dict[str, Any] | str | Path, overrides: list[str] | None = None
) -> TrainConfig:
    """Validate a config given as a dict or a YAML file path, with ``--set`` overrides."""
    where = "config"
    if isinstance(source, (str, Path)):
        where = str(source)
        raw = read_yaml_mapping(source, "config file")
    else:
        raw = dict(source)
    if overrides:
        raw = merge(raw, parse_overrides(overrides))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where, raw, TrainConfig)) from None


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (aliases, so it loads back)."""
    return config.model_dump(mode="json", by_alias=True)
