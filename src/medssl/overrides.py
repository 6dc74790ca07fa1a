"""Typed run configs: dataclasses, presets, YAML load/save and dotted overrides.

Overrides are strings ``key=value`` (``heads.proj_hidden=512`` for nested fields)
parsed by the field's declared type, so ``flag=False`` is ``False`` (not
``bool("False")``) and ``x=none`` sets an optional field to ``None``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from medssl.errors import MedsslError

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(MedsslError):
    """An override or config file does not fit the config's fields."""


def _parse_value(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for member in inner:  # the first member that reads the text (bool | "auto")
            try:
                return _parse_value(text, member, key)
            except ConfigError as err:
                errors.append(str(err).removeprefix(f"{key}: "))
        raise ConfigError(f"{key}: " + "; ".join(errors))
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(f"{key}: {text!r} is not one of {list(args)}")
        return text
    if origin is tuple:
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        return tuple(_parse_value(p.strip(), args[0], key) for p in parts)
    if tp is bool:
        low = text.lower()
        if low not in _TRUE | _FALSE:
            raise ConfigError(f"{key}: {text!r} is not a boolean (true/false)")
        return low in _TRUE
    try:
        return tp(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot read {text!r} as {getattr(tp, '__name__', tp)}") from exc


def apply_overrides(cfg: T, overrides: list[str] | dict[str, Any]) -> T:
    """Return a copy of ``cfg`` with ``key=value`` overrides applied (typed parsing)."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in items:
        cfg = _set(cfg, key.split("."), value, key)
    return cfg


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, _, value = item.partition("=")
    return key.strip(), value.strip()


def _set(cfg: Any, path: list[str], value: Any, full: str) -> Any:
    hints = typing.get_type_hints(type(cfg))
    name = path[0]
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise ConfigError(f"unknown config key {full!r} (known: {known})")
    if len(path) > 1:
        return dataclasses.replace(cfg, **{name: _set(getattr(cfg, name), path[1:], value, full)})
    if isinstance(value, str):
        value = _parse_value(value, hints[name], full)
    elif dataclasses.is_dataclass(hints[name]) and isinstance(value, dict):
        value = apply_overrides(getattr(cfg, name), value)
    elif isinstance(value, list):
        value = tuple(value)
    return dataclasses.replace(cfg, **{name: value})


def to_dict(cfg: Any) -> dict:
    """Plain dict (tuples as lists) of a config dataclass."""

    def conv(v: Any) -> Any:
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(dataclasses.asdict(cfg))


def from_dict(cls: type[T], data: dict) -> T:
    """Build a config from a dict; unknown keys are an error, missing keys keep defaults."""
    return apply_overrides(cls(), dict(data))


def save_yaml(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_yaml(cls: type[T], path: str | Path) -> T:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    return from_dict(cls, data)
