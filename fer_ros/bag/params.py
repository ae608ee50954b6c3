"""fer_node's parameters read from a ROS 2 parameters file, exactly as the node would get them, without ROS.

The file is the node's own (``config/fer.yaml``: ``/**/fer_node: ros__parameters: ...``, nested mappings meaning
dotted names); ``/**`` wildcard sections apply first, then the node's section (``/**/fer_node``, ``fer_node``).
Values are checked with the node's own table (``fer_ros.node_parameters``), so a file the node would refuse is refused
here with the same reason.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from fer_ros.errors import ConfigError
from fer_ros.node_parameters import BY_NAME, defaults

NODE_NAME = "fer_node"  # the section fer_node reads in a parameters file
# in order of application: wildcards, then the node's own (/**/fer_node: in any namespace, as config/fer.yaml has it)
_SECTIONS = ("/**", "**", "/**/" + NODE_NAME, NODE_NAME, "/" + NODE_NAME)


def default_params_file() -> Path | None:
    """config/fer.yaml of the source tree, else share/fer_ros/config/fer.yaml of the first ament prefix having it."""
    candidates = [Path(__file__).resolve().parents[2] / "config" / "fer.yaml"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "fer_ros" / "config" / "fer.yaml")
    return next((c for c in candidates if c.is_file()), None)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def read_node_params(path: Path | str | None = None) -> tuple[dict[str, Any], list[str]]:
    """All of fer_node's parameters (defaults overridden by the file) and the names in the file the node does not
    declare (reported, ignored as the node ignores them). ``path`` None: :func:`default_params_file`, or defaults."""
    params = defaults()
    path = Path(path) if path is not None else default_params_file()
    if path is None:
        return params, []
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"parameters file {path} is not valid YAML: {exc}") from exc
    sections = [data[s] for s in _SECTIONS if isinstance(data, dict) and s in data]
    if not sections:
        raise ConfigError(f"parameters file {path} has no '/**/{NODE_NAME}:' (or '{NODE_NAME}:', '/**:') section; "
                          f"top-level keys: "
                          f"{', '.join(map(str, data)) if isinstance(data, dict) else type(data).__name__}")
    unknown: list[str] = []
    problems: list[str] = []
    for section in sections:
        values = (section or {}).get("ros__parameters", {}) if isinstance(section, dict) else {}
        for name, value in _flatten(values or {}).items():
            spec = BY_NAME.get(name)
            if spec is None:
                unknown.append(name)
                continue
            reason = spec.validate(value)
            if reason:
                problems.append(f"'{name}' = {value!r} {reason}")
                continue
            params[name] = float(value) if isinstance(spec.default, float) else value
    if problems:
        raise ConfigError(f"parameters file {path}: " + "; ".join(problems))
    return params, sorted(set(unknown))

