"""Hyper-parameter sensitivity study: train one config over a grid of values, tabulate and plot the outcome.

A sweep is a base training config plus ``{dotted.key: [values]}`` (YAML ``sweep:`` section of a sweep file, or
``--param optimizer.lr=0.1,0.01`` on the command line). Every combination trains into its own run folder; the data
is prepared once and shared when no swept key touches data, input or crop. Outputs: ``sweep.csv``, ``sweep.md`` and
``sweep.png`` (validation and test accuracy against the first swept key, one line per value of the second).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from fer_ros.errors import ConfigError  # noqa: E402
from fer_ros.tables import write_table  # noqa: E402
from fer_ros_training.train_config import config_from_dict, resolve_config_path  # noqa: E402

LOG = logging.getLogger("fer_ros_training.sweep")
DATA_KEYS = ("data", "input", "crop", "labels", "seed")  # swept keys under these re-prepare the data per run
MAX_RUNS = 64  # a larger grid is almost certainly a typo in the values (and days of training)


@dataclass
class SweepResult:
    out_dir: Path
    rows: list[dict[str, Any]]
    table: Path
    plot: Path


def grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept values, first key varying slowest."""
    if not params:
        raise ConfigError("a sweep needs at least one parameter with values (e.g. optimizer.lr: [0.1, 0.01])")
    for k, v in params.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"sweep parameter {k} needs a non-empty list of values, got {v!r}")
    combos = [dict(zip(params, values)) for values in itertools.product(*params.values())]
    if len(combos) > MAX_RUNS:
        raise ConfigError(f"the sweep has {len(combos)} runs, more than {MAX_RUNS}; narrow the grid")
    return combos


def _label(combo: dict[str, Any]) -> str:
    return "_".join(f"{k.split('.')[-1]}={v}" for k, v in combo.items()).replace("/", "-")


def run_sweep(base: dict[str, Any], params: dict[str, list[Any]], out_dir: Path | str, progress: bool = True
              ) -> SweepResult:
    """Train ``base`` with each combination of ``params`` under ``out_dir`` and write the table and the plot."""
    from fer_ros_training.trainer import load_data, train

    out = Path(out_dir)
    combos = grid(params)
    configs = [config_from_dict(base, combo) for combo in combos]  # every bad value refused before any work
    out.mkdir(parents=True, exist_ok=True)
    shared_data = None
    if not any(k.split(".")[0] in DATA_KEYS for k in params):
        shared_data = load_data(config_from_dict(base), progress=progress)
    rows = []
    for i, (combo, cfg) in enumerate(zip(combos, configs), start=1):
        LOG.info("sweep run %d/%d: %s", i, len(combos), combo)
        result = train(cfg, run_dir=out / _label(combo), progress=progress, data=shared_data)
        best_row = next((r for r in result.history if r["epoch"] == result.best_epoch), {})
        rows.append({**{k: v for k, v in combo.items()},
                     "best_epoch": result.best_epoch,
                     "val_accuracy": float(best_row.get("val_accuracy", float("nan"))),
                     "val_macro_f1": float(best_row.get("val_macro_f1", float("nan"))),
                     "test_accuracy": float(result.test.get("accuracy", float("nan"))),
                     "test_macro_f1": float(result.test.get("macro_f1", float("nan"))),
                     "epochs_run": result.epochs_run,
                     "seconds": float(sum(r.get("seconds", 0.0) for r in result.history))})
    write_table(rows, out / "sweep.csv", out / "sweep.md")
    plot = plot_sweep(rows, list(params), out / "sweep.png", base.get("name", "sweep"))
    return SweepResult(out, rows, out / "sweep.csv", plot)


def plot_sweep(rows: list[dict[str, Any]], keys: list[str], path: Path, title: str) -> Path:
    """Accuracy against the first swept key (log axis when its values are positive numbers spanning > 10x)."""
    x_key = keys[0]
    group_key = keys[1] if len(keys) > 1 else None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r[group_key] if group_key else None, []).append(r)
    xs_all = [r[x_key] for r in rows]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
    for g, rs in groups.items():
        xs = [r[x_key] for r in rs] if numeric else list(range(len(rs)))
        suffix = f" ({group_key.split('.')[-1]}={g})" if group_key else ""
        ax.plot(xs, [r["val_accuracy"] for r in rs], "o-", label="val" + suffix)
        ax.plot(xs, [r["test_accuracy"] for r in rs], "s--", label="test" + suffix)
        if not numeric:
            ax.set_xticks(xs, [str(r[x_key]) for r in rs])
    if numeric and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(x_key)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}: sensitivity to {', '.join(keys)}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_sweep_file(path: Path | str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A sweep YAML: ``base:`` (a config file name or an inline config) and ``sweep: {dotted.key: [values]}``.

    A plain training config with a ``sweep:`` section works too (the section is taken out of the base).
    """
    raw = yaml.safe_load(resolve_config_path(path).read_text()) or {}
    params = raw.pop("sweep", None) or {}
    base = raw.get("base", raw)
    if isinstance(base, str):
        base = yaml.safe_load(resolve_config_path(base).read_text())
    return dict(base), dict(params)


def parse_params(pairs: list[str]) -> dict[str, list[Any]]:
    """``["optimizer.lr=0.1,0.01"]`` -> {"optimizer.lr": [0.1, 0.01]} (values parsed as YAML)."""
    out: dict[str, list[Any]] = {}
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        if not sep:
            raise ConfigError(f"--param '{pair}' must look like section.key=v1,v2")
        out[key.strip()] = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    return out
