"""The parameter table, config/fer.yaml and the README agree, and every bad value is refused with a reason."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fer_ros.node_parameters import BY_NAME, PARAMETERS, defaults, markdown_table

REPO = Path(__file__).resolve().parents[1]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_config_file_holds_exactly_the_declared_parameters_with_their_defaults():
    config = yaml.safe_load((REPO / "config" / "fer.yaml").read_text())
    flat = _flatten(config["/**/fer_node"]["ros__parameters"])
    assert flat == defaults()


# rcl applies a section keyed `fer_node:` (or `/fer_node:`) only to a node named exactly /fer_node: under a namespace
# every value in it would be dropped silently. These two keys match fer_node in any namespace (checked with the real
# node in test_node_namespace.py).
NAMESPACE_PROOF_KEYS = {"/**", "/**/fer_node"}


def test_every_shipped_or_documented_parameters_key_applies_under_a_namespace():
    places = [REPO / "README.md", REPO / "launch" / "fer.launch.py", *sorted((REPO / "docs").glob("*.md")),
              *sorted((REPO / "config").glob("*.yaml")), *sorted((REPO / "fer_ros").rglob("*.py"))]
    keys = {}
    for path in places:  # `KEY: ros__parameters` in prose and code, KEY:<newline> ros__parameters: in YAML
        for key in re.findall(r"([\w/*]+):['`\s]*ros__parameters", path.read_text()):
            keys.setdefault(key, []).append(path.relative_to(REPO).as_posix())
    assert "/**/fer_node" in keys, "config/fer.yaml no longer found"
    assert {k: v for k, v in keys.items() if k not in NAMESPACE_PROOF_KEYS} == {}


def test_every_parameter_is_described_and_listed_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for p in PARAMETERS:
        assert len(p.description) > 20, p.name
        assert f"`{p.name}`" in readme, f"README lacks parameter {p.name}"
        assert p.validate(p.default) is None, p.name
    assert markdown_table() in readme, "README's parameter table is stale: paste node_parameters.markdown_table()"


@pytest.mark.parametrize("name,value,reason", [
    ("backend", "cuda", "one of"), ("detector.model", "long", "one of"), ("detector.min_confidence", 1.5, "between"),
    ("smoothing", 1.0, "between"), ("detector.max_faces", 0, "between"),
    ("model", " ", "empty"), ("compressed", "yes", "bool"), ("fan_window", 2.5, "int"),
])
def test_bad_values_are_refused_with_a_reason(name, value, reason):
    assert reason in (BY_NAME[name].validate(value) or "")


def test_integers_are_taken_for_doubles_and_thresholds_must_be_ordered():
    from fer_ros.node_parameters import cross_check

    spec = BY_NAME["detector.min_confidence"]
    assert spec.validate(1) is None and spec.coerce(1) == 1.0 and isinstance(spec.coerce(1), float)
    assert "an int" in BY_NAME["detector.max_faces"].validate(8.0) and "a double" in spec.validate("high")
    values = defaults()
    assert cross_check(values) is None
    values["diagnostics.latency_warn_ms"] = values["diagnostics.latency_error_ms"] + 1
    assert "latency_error_ms" in (cross_check(values) or "")


def test_a_misspelt_name_gets_the_closest_known_one():
    from fer_ros.node_parameters import closest_name, unknown_name_message

    assert closest_name("detector.min_confidense") == "detector.min_confidence"
    assert closest_name("max_rte") == "max_rate"
    assert closest_name("completely.different") is None
    assert "README" in unknown_name_message("completely.different")
