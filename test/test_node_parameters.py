"""The parameter table, config/fer.yaml and the README agree, and every bad value is refused with a reason."""
from __future__ import annotations

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
    flat = _flatten(config["fer_node"]["ros__parameters"])
    assert flat == defaults()


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
