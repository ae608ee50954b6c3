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
    """:func:`checked_keys` against the fields of dataclass ``cls``: the keyword arguments to build it from."""
    return checked_keys(data, (f.name for f in fields(cls)), section)
