"""Key checks shared by every section of a training config: a misspelt key is an error, never a silent default.

``section_fields(AugmentConfig, data, "data.augment")`` returns the section as a new dict after checking that it is
a mapping whose keys are all fields of the dataclass; the error names the unknown keys and lists the known ones.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Iterable, Mapping

from fer_ros.errors import ConfigError


def checked_keys(data: Mapping[str, Any] | None, known: Iterable[str], section: str) -> dict[str, Any]:
    """A copy of config section ``data`` (None = empty); ConfigError if it is not a mapping or has unknown keys."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section} must be a mapping of keys to values, got {type(data).__name__} {data!r}")
    names = set(known)
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{section} has unknown keys {sorted(unknown)}; known: {sorted(names)}")
    return dict(data)


def section_fields(cls: type, data: Mapping[str, Any] | None, section: str) -> dict[str, Any]:
    """:func:`checked_keys` against the fields of dataclass ``cls``, each number or flag checked (and converted) by
    :func:`checked_value`: the keyword arguments to build it from."""
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "") for f in fields(cls)}
    out = checked_keys(data, kinds, section)
    return {k: checked_value(v, kinds[k], f"{section}.{k}" if section != "config" else k) for k, v in out.items()}


def checked_value(value: Any, kind: str, key: str) -> Any:
    """``value`` as the scalar type ``kind`` names ("int", "float", "bool"); other kinds pass unchecked.

    YAML reads ``1e-3`` as a string and ``--set optimizer.lr=abc`` gives one: numbers written as text are converted,
    anything else is a ConfigError naming the key."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if kind not in ("int", "float"):
        return value
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ConfigError(f"{key} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    if kind == "int":
        if float(number) != int(number):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(number)
    return float(number)
