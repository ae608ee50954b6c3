"""``fer-ros compare``: train (or load) several models on one data set and compare them side by side.

    fer-ros compare --data DIR --configs a.yaml b.yaml ... --out DIR [--epochs N] [--retrain]

For every training config (the ``fer-ros train`` format; ``--data`` replaces its ``data.root``) the command trains
the network with the project's trainer into ``OUT/runs/<name>`` (or loads the run already there when its config is
the same), scores the best checkpoint on the test split and measures its cost. It writes:

- ``comparison.md`` and ``comparison.csv``: one row per model with parameters, FLOPs per face, ONNX size, CPU
  onnxruntime ms per face at batch 1 and 8, GPU ms per face where a GPU is present (else "n/a (no GPU)"), training
  seconds per epoch, accuracy, macro-F1, per-class accuracy, and accuracy under eye occlusion, mouth occlusion, a
  darker and a brighter image;
- ``cost.png``, ``accuracy.png``, ``robustness.png``, ``tradeoff.png``;
- ``compare.yaml`` (the command, versions, and what was compared) and ``configs/<name>.yaml`` (each config exactly as
  run), so ``fer-ros compare --configs OUT/configs/*.yaml --out OTHER`` reproduces the study;
- ``models/<name>/``: the ONNX export and its model card (the export's parity check runs, as for any export).

Robustness perturbations act on the aligned uint8 test crops, before the runtime's normalisation: a black bar over
both eyes or over the mouth (placed from the face's five landmarks; faces without landmarks are left out of these two
columns and counted), and every pixel scaled by ``DARK_GAIN`` or ``BRIGHT_GAIN``. Training seconds per epoch are the
trainer's own epoch times (training pass plus the validation pass), the median over the epochs run (robust to a
machine shared with other jobs).
"""
from __future__ import annotations

import argparse
import logging
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from fer_ros.errors import ConfigError
from fer_ros.tables import markdown_table, write_csv

LOG = logging.getLogger("fer_ros_training.compare")
BENCH_BATCHES = (1, 8)  # one face (the common case) and a crowded frame
DARK_GAIN, BRIGHT_GAIN = 0.5, 1.5  # pixel gains of the brightness perturbations (a dim room, an over-exposed face)
EYE_BAR = (0.45, 0.3)  # eye bar half-width beyond each eye and half-height, in inter-ocular distances
MOUTH_BAR = (0.3, 0.3)  # mouth bar half-width beyond each corner and half-height, in inter-ocular distances
PERTURBATIONS = ("eyes_occluded", "mouth_occluded", "darker", "brighter")
EVAL_CHUNK = 64  # faces per torch forward when scoring
NO_GPU = "n/a (no GPU)"


@dataclass
class ModelResult:
    """One row of the comparison."""

    name: str
    network: str
    input: str
    parameters: int
    gflops: float  # per face, 2 FLOPs per multiply-accumulate
    onnx_mb: float
    cpu_ms: dict[int, float]  # batch -> ms per face
    gpu_ms: dict[int, float] | None  # None when no GPU is present
    train_seconds_per_epoch: float
    epochs: int
    loss: str
    accuracy: float
    macro_f1: float
    per_class: dict[str, float]
    robustness: dict[str, float]
    test_faces: int
    without_landmarks: int
    checkpoint: str
    extra: dict[str, Any] = field(default_factory=dict)


# --- perturbations -------------------------------------------------------------------------------------------------
def _bar(crop: np.ndarray, left: np.ndarray, right: np.ndarray, spec: tuple[float, float]) -> np.ndarray:
    d = max(float(np.hypot(*(right - left))), 1.0)
    x0, x1 = min(left[0], right[0]) - spec[0] * d, max(left[0], right[0]) + spec[0] * d
    yc = (left[1] + right[1]) / 2
    y0, y1 = yc - spec[1] * d, yc + spec[1] * d
    out = crop.copy()
    h, w = crop.shape[:2]
    out[max(0, int(y0)):min(h, int(np.ceil(y1))), max(0, int(x0)):min(w, int(np.ceil(x1)))] = 0
    return out


def occlude_eyes(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A black bar over both eyes (landmarks in crop pixels, fer_ros order)."""
    d = landmarks[1] - landmarks[0]
    return _bar(crop, landmarks[0], landmarks[1], (EYE_BAR[0], EYE_BAR[1])) if np.hypot(*d) > 0 else crop


def occlude_mouth(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A black bar over the mouth, sized by the eye distance."""
    d_eye = max(float(np.hypot(*(landmarks[1] - landmarks[0]))), 1.0)
    d_mouth = max(float(np.hypot(*(landmarks[4] - landmarks[3]))), 1.0)
    scale = d_eye / d_mouth  # MOUTH_BAR is in eye distances; _bar measures in mouth widths
    return _bar(crop, landmarks[3], landmarks[4], (MOUTH_BAR[0] * scale, MOUTH_BAR[1] * scale))


def scale_brightness(crop: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(np.round(crop.astype(np.float32) * gain), 0, 255).astype(np.uint8)


# --- scoring -------------------------------------------------------------------------------------------------------
def predict_crops(model: torch.nn.Module, crops: np.ndarray, transform) -> np.ndarray:
    """Predicted class per uint8 crop (N, H, W, C), through the runtime's normalisation."""
    preds = []
    with torch.no_grad():
        for i in range(0, len(crops), EVAL_CHUNK):
            x = torch.from_numpy(transform(crops[i:i + EVAL_CHUNK]))
            preds.append(model(x).argmax(1).numpy())
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def score(model: torch.nn.Module, faces: list, labels: list[int], transform, names: tuple[str, ...]
          ) -> tuple[Any, dict[str, float], int]:
    """Classification report on the clean test faces, accuracy under each perturbation, faces without landmarks."""
    from fer_ros_training.metrics import classification_report

    y = np.asarray(labels, np.int64)
    crops = np.stack([f.crop for f in faces])
    report = classification_report(y, predict_crops(model, crops, transform), len(names))
    robust: dict[str, float] = {}
    marked = [i for i, f in enumerate(faces) if f.landmarks is not None]
    for key, fn in (("eyes_occluded", occlude_eyes), ("mouth_occluded", occlude_mouth)):
        if not marked:
            robust[key] = float("nan")
            continue
        pert = np.stack([fn(faces[i].crop, faces[i].landmarks) for i in marked])
        robust[key] = float((predict_crops(model, pert, transform) == y[marked]).mean())
    for key, gain in (("darker", DARK_GAIN), ("brighter", BRIGHT_GAIN)):
        robust[key] = float((predict_crops(model, scale_brightness(crops, gain), transform) == y).mean())
    return report, robust, len(faces) - len(marked)


# --- cost ----------------------------------------------------------------------------------------------------------
def ms_per_face(session, faces: np.ndarray, batch: int, repeats: int) -> float:
    """Median wall time of one ``session.run`` on ``batch`` faces, divided by ``batch`` (after 3 warm-up runs)."""
    reps = int(np.ceil(batch / len(faces)))
    x = np.ascontiguousarray(np.concatenate([faces] * reps)[:batch])
    name = session.get_inputs()[0].name
    for _ in range(3):
        session.run(None, {name: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / batch


def onnx_timings(path: Path, faces: np.ndarray, repeats: int, threads: int
                 ) -> tuple[dict[int, float], dict[int, float] | None]:
    """CPU ms per face at each ``BENCH_BATCHES`` size; GPU ms too when onnxruntime has a CUDA provider and a GPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    cpu = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    cpu_ms = {b: ms_per_face(cpu, faces, b, repeats) for b in BENCH_BATCHES}
    gpu_ms = None
    if "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available():
        gpu = ort.InferenceSession(str(path), opts, providers=["CUDAExecutionProvider"])
        if gpu.get_providers()[0] == "CUDAExecutionProvider":
            gpu_ms = {b: ms_per_face(gpu, faces, b, repeats) for b in BENCH_BATCHES}
    return cpu_ms, gpu_ms


def loss_kind(model: torch.nn.Module) -> str:
    """What the trainer optimised: the network's own joint loss when both sides support it, else cross-entropy."""
    from fer_ros_training import loops

    weight = getattr(model, "attention_loss_weight", None)
    if hasattr(model, "training_loss") and getattr(loops, "NETWORK_LOSS_HOOK", False) and weight is not None:
        return f"{weight:g}*L_att + CE"
    return "CE"


# --- one model -----------------------------------------------------------------------------------------------------
def train_or_load(cfg, run_dir: Path, retrain: bool, data) -> Path:
    """``run_dir/best.pt``: trained now, or the one already there when it was trained from the same config."""
    from fer_ros_training.trainer import CHECKPOINT_BEST, train

    best = run_dir / CHECKPOINT_BEST
    saved = run_dir / "config.yaml"
    if run_dir.exists() and not retrain:
        if best.is_file() and saved.is_file() and yaml.safe_load(saved.read_text()) == cfg.to_dict():
            LOG.info("%s: loading %s (trained from the same config)", cfg.name, best)
            return best
        raise ConfigError(f"{run_dir} holds a run of another config (or an unfinished one); pass --retrain to "
                          f"replace it or choose another --out")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    train(cfg, run_dir=run_dir, progress=False, data=data)
    if not best.is_file():
        raise ConfigError(f"training {cfg.name} wrote no {best}: did every epoch fail to validate?")
    return best


def evaluate_model(cfg, out: Path, retrain: bool, repeats: int, threads: int) -> ModelResult:
    """Train or load one config, score it on its test split and measure its cost."""
    from fer_ros.model_card import card_from_dict
    from fer_ros_training.data.transforms import eval_preset
    from fer_ros_training.export.onnx_export import export_model
    from fer_ros_training.flops import count_flops
    from fer_ros_training.networks import count_parameters, network_spec
    from fer_ros_training.trainer import CHECKPOINT_LAST, load_checkpoint, load_data, model_from_checkpoint

    kind = network_spec(cfg.network.name).kind
    if kind != "image":
        raise ConfigError(f"compare scores single-image classifiers; '{cfg.network.name}' takes {kind} input "
                          f"(score it with fer-ros evaluate)")
    data = load_data(cfg, progress=False)
    test = data.splits.get("test")
    if test is None or not test.labels:
        raise ConfigError(f"{cfg.name}: the data set has no test split to score on (data.split.test, split.csv)")
    best = train_or_load(cfg, out / "runs" / cfg.name, retrain, data)
    model, _ = model_from_checkpoint(load_checkpoint(best))
    last = best.with_name(CHECKPOINT_LAST)  # best.pt's history stops at the best epoch; last.pt has every epoch
    history = list(load_checkpoint(last if last.is_file() else best).get("history") or [])
    transform = eval_preset(cfg.input)
    report, robust, unmarked = score(model, test.faces, test.labels, transform, cfg.labels)

    faces = transform(np.stack([f.crop for f in test.faces[:max(BENCH_BATCHES)]]))
    flops = count_flops(model, torch.from_numpy(faces[:1]))
    card = card_from_dict({"id": cfg.name, **cfg.card_dict(), "files": {"model": "model.onnx"}})
    model_dir = out / "models" / cfg.name
    if model_dir.exists():  # this study's own export of the run, made again from it (export never overwrites)
        shutil.rmtree(model_dir)
    exported = export_model(model, card, model_dir, faces,
                            extra={"source": {"checkpoint": str(best), "study": str(out / "comparison.md")}})
    path = exported.files["model"]
    cpu_ms, gpu_ms = onnx_timings(path, faces, repeats, threads)
    seconds = [float(r["seconds"]) for r in history if "seconds" in r]
    return ModelResult(
        name=cfg.name, network=cfg.network.name, input=f"{cfg.input.height}x{cfg.input.width} {cfg.input.color}",
        parameters=count_parameters(model), gflops=flops.gflops(), onnx_mb=path.stat().st_size / 1e6,
        cpu_ms=cpu_ms, gpu_ms=gpu_ms, train_seconds_per_epoch=statistics.median(seconds) if seconds else float("nan"),
        epochs=len(history), loss=loss_kind(model), accuracy=report.accuracy, macro_f1=report.macro_f1,
        per_class={n: float(v) for n, v in zip(cfg.labels, report.per_class_accuracy)}, robustness=robust,
        test_faces=len(test.labels), without_landmarks=unmarked, checkpoint=str(best))


# --- the table and the plots ---------------------------------------------------------------------------------------
def table_rows(results: list[ModelResult]) -> tuple[list[str], list[list[Any]]]:
    """Column names and raw values (numbers stay numbers; the GPU columns hold NO_GPU without a GPU)."""
    labels = list(results[0].per_class) if results else []
    header = (["model", "network", "input", "parameters", "GFLOPs/face", "ONNX MB"]
              + [f"CPU ms/face b{b}" for b in BENCH_BATCHES] + [f"GPU ms/face b{b}" for b in BENCH_BATCHES]
              + ["train s/epoch", "epochs", "loss", "test faces", "accuracy", "macro-F1"]
              + [f"acc {n}" for n in labels] + [f"acc {p.replace('_', ' ')}" for p in PERTURBATIONS])
    rows = []
    for r in results:
        gpu = [r.gpu_ms[b] if r.gpu_ms else NO_GPU for b in BENCH_BATCHES]
        rows.append([r.name, r.network, r.input, r.parameters, r.gflops, r.onnx_mb,
                     *(r.cpu_ms[b] for b in BENCH_BATCHES), *gpu, r.train_seconds_per_epoch, r.epochs, r.loss,
                     r.test_faces, r.accuracy, r.macro_f1, *(r.per_class[n] for n in labels),
                     *(r.robustness[p] for p in PERTURBATIONS)])
    return header, rows


def _fmt(value: Any, column: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and column == "parameters":
        return f"{value / 1e6:.3f} M"
    if isinstance(value, (int, np.integer)):
        return str(value)
    if not np.isfinite(value):
        return "n/a"
    if column.startswith("acc") or column == "macro-F1":
        return f"{value:.3f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def write_table(results: list[ModelResult], out: Path, command: str) -> tuple[Path, Path]:
    header, rows = table_rows(results)
    csv_path = write_csv(header, rows, out / "comparison.csv")
    lines = ["# Model comparison", "", f"Command: `{command}`", "", *markdown_table(header, rows, _fmt)]
    lines += ["", f"CPU: onnxruntime, {platform.processor() or platform.machine()}, timed as described in "
              f"`fer_ros_training/commands/compare.py`. Robustness columns are test accuracy with a black bar over "
              f"the eyes or the mouth, or pixels scaled by {DARK_GAIN:g} (darker) / {BRIGHT_GAIN:g} (brighter).", ""]
    for r in results:
        if r.without_landmarks:
            lines.append(f"- {r.name}: {r.without_landmarks} of {r.test_faces} test faces have no landmarks and are "
                         f"left out of the occlusion columns.")
    lines += ["", "![cost](cost.png) ![accuracy](accuracy.png) ![robustness](robustness.png) "
              "![tradeoff](tradeoff.png)", ""]
    md_path = out / "comparison.md"
    md_path.write_text("\n".join(lines))
    return md_path, csv_path


def _grouped_bars(plt, results: list[ModelResult], groups: list[str], values, title: str, path: Path,
                  size: tuple[int, int]) -> Path:
    """One bar per model in each group (values(result) -> one number per group), y from 0 to 1."""
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=size)
    for i, r in enumerate(results):
        ax.bar(np.arange(len(groups)) + i * width, values(r), width, label=r.name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, not on them
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_plots(results: list[ModelResult], out: Path) -> list[Path]:
    """Bar charts of cost, accuracy (overall and per class) and robustness, and accuracy against CPU time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    x = np.arange(len(results))
    paths = []

    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, (title, values) in zip(axes, [("parameters (M)", [r.parameters / 1e6 for r in results]),
                                          ("GFLOPs per face", [r.gflops for r in results]),
                                          ("CPU ms per face (batch 1)", [r.cpu_ms[1] for r in results]),
                                          ("training s per epoch", [r.train_seconds_per_epoch for r in results])]):
        ax.bar(x, values, color="tab:blue")
        ax.set_title(title)
        ax.set_xticks(x, names, rotation=20, ha="right")
    fig.tight_layout()
    paths.append(out / "cost.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)

    labels = list(results[0].per_class)
    paths.append(_grouped_bars(plt, results, ["accuracy", "macro-F1"] + labels,
                               lambda r: [r.accuracy, r.macro_f1] + [r.per_class[n] for n in labels],
                               "test accuracy, macro-F1 and per-class accuracy", out / "accuracy.png", (12, 4)))
    paths.append(_grouped_bars(plt, results, ["clean"] + [p.replace("_", " ") for p in PERTURBATIONS],
                               lambda r: [r.accuracy] + [r.robustness[p] for p in PERTURBATIONS],
                               "test accuracy under occlusion and brightness changes", out / "robustness.png",
                               (10, 4)))

    fig = tradeoff_figure(plt, results)
    paths.append(out / "tradeoff.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return paths


def tradeoff_figure(plt: Any, results: list[ModelResult]) -> Any:
    """Accuracy against CPU cost, one marker per model (area ~ FLOPs), each name inside the axes: written to the
    left of a marker in the right half, below one in the top half, so no label runs off the plot."""
    fig, ax = plt.subplots(figsize=(6, 4))
    xs, ys = [r.cpu_ms[1] for r in results], [r.accuracy for r in results]
    for r in results:
        ax.scatter(r.cpu_ms[1], r.accuracy, s=40 + 200 * r.gflops / max(max(q.gflops for q in results), 1e-9))
    ax.margins(0.2)
    x_mid, y_mid = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    for r, x, y in zip(results, xs, ys):
        right, top = len(results) > 1 and x > x_mid, len(results) > 1 and y > y_mid
        ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(-6 if right else 6, -10 if top else 6),
                    ha="right" if right else "left", va="top" if top else "bottom", fontsize=8)
    ax.set_xlabel("CPU onnxruntime ms per face (batch 1)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy against cost (marker area ~ FLOPs)")
    fig.tight_layout()
    return fig


# --- command -------------------------------------------------------------------------------------------------------
def load_configs(paths: list[str], data: str | None, epochs: int | None) -> list:
    """Training configs (files, or bundled config names) with the command's overrides applied; names must differ
    (they name the run folders)."""
    from fer_ros_training.train_config import load_config

    overrides: dict[str, Any] = {}
    if data:
        overrides["data.root"] = str(data)
    if epochs:
        overrides["epochs"] = int(epochs)
    configs = [load_config(p, overrides) for p in paths]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"config names must differ (they name the run folders), got {names}")
    return configs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data set folder (replaces data.root of every config)")
    parser.add_argument("--configs", nargs="+", required=True,
                        help="training configs (YAML files or bundled names such as compare_feratt), one per model")
    parser.add_argument("--out", required=True, help="output folder: table, plots, runs, exports, configs")
    parser.add_argument("--epochs", type=int, help="override the epochs of every config")
    parser.add_argument("--retrain", action="store_true", help="train again even when OUT/runs/<name> exists")
    parser.add_argument("--repeats", type=int, default=20, help="timed onnxruntime runs per batch size (median)")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime CPU threads (1: compares networks, not how many cores each one grabs)")


def run(args: argparse.Namespace) -> int:
    from fer_ros_training.train_config import config_from_dict

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    configs = load_configs(args.configs, args.data, args.epochs)
    out.mkdir(parents=True, exist_ok=True)
    for cfg in configs:
        cfg.save(out / "configs" / f"{cfg.name}.yaml")
    command = "fer-ros compare " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["compare"] else
                                            [f"--configs {' '.join(args.configs)}", f"--out {args.out}"])
    import onnxruntime

    (out / "compare.yaml").write_text(yaml.safe_dump({
        "command": command, "data": args.data, "configs": [c.name for c in configs], "epochs": args.epochs,
        "repeats": args.repeats, "threads": args.threads,
        "reproduce": f"fer-ros compare --configs {out / 'configs'}/*.yaml --out <new folder>",
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__),
                     "onnxruntime": str(onnxruntime.__version__)}}, sort_keys=False))
    results = []
    for cfg in configs:
        # the saved copy is what runs: a study reloaded from OUT/configs behaves exactly alike
        cfg = config_from_dict(yaml.safe_load((out / "configs" / f"{cfg.name}.yaml").read_text()))
        LOG.info("== %s (%s)", cfg.name, cfg.network.name)
        results.append(evaluate_model(cfg, out, args.retrain, args.repeats, args.threads))
    md, csv_path = write_table(results, out, command)
    write_plots(results, out)
    print(md.read_text())
    print(f"written: {md}, {csv_path}, {out}/*.png")
    return 0
