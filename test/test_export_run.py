"""Export of a trained run (issue 14.4): the card carries the run's test metrics from summary.yaml, and an existing
model folder is refused (as eval-bag refuses an existing output), never overwritten silently."""
from __future__ import annotations

import pytest
import yaml

from fer_ros.cli import main as cli_main
from fer_ros.errors import ConfigError
from fer_ros.model_card import load_card
from fer_ros_training.tiny import tiny_checkpoint


@pytest.fixture(scope="module")
def best(tmp_path_factory):
    return tiny_checkpoint("rmn", quick=True, root=tmp_path_factory.mktemp("tiny"))


def test_card_holds_the_runs_test_metrics_and_an_existing_folder_is_refused(best, tmp_path, capsys):
    out = tmp_path / "model"
    assert cli_main(["export", "--checkpoint", str(best), "--out", str(out)]) == 0
    test = yaml.safe_load((best.parent / "summary.yaml").read_text())["test"]
    metrics = load_card(out).extra["metrics"]
    assert metrics["test_accuracy"] == pytest.approx(test["accuracy"])
    assert metrics["test_macro_f1"] == pytest.approx(test["macro_f1"])
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    try:  # the CLI's top-level handler turns a ConfigError into one line and exit 2
        code, message = cli_main(["export", "--checkpoint", str(best), "--out", str(out)]), capsys.readouterr().err
    except ConfigError as exc:
        code, message = 2, str(exc)
    assert code == 2 and f"{out} already exists" in message
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
