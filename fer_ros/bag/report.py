"""The evaluation report of a run over a bag: ``report.json``, ``report.md`` and PNG figures in one folder.

``report.json`` keys (docs/evaluation.md explains each):
``messages`` {total, processed, dropped, unreadable, dropped_reasons, unreadable_reasons, examples};
``accuracy``, ``macro_f1``, ``per_class_accuracy``, ``confusion_matrix`` (null without labels) and ``scoring``
(labelled faces, how many had a prediction, why the others had none); ``latency_ms`` (distribution per stage);
``faces_per_frame``; ``frames_without_face``; ``flicker`` (label changes per second per track, with and without
smoothing); ``labels`` (what the label source held, unknown names, unmatched rows); ``throughput``; run metadata.
Offline runs and live replays produce the same keys, so the two can be compared directly.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.bag.evaluate import EvalRun
from fer_ros.bag.metrics import TrackLabels, classification, distribution, flicker, histogram
from fer_ros.confusion_plot import plot_confusion
from fer_ros.datatypes import StageTimings
from fer_ros.tables import format_cell, markdown_table

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
# The stages in the order a frame goes through them (StageTimings), the sum, then what the bag tools add.
STAGE_ORDER = ("decode_ms", *StageTimings().as_dict(), "round_trip_ms")
FIGURE_DPI = 100  # PNGs are for a quick look in a browser or a PR, not for print


def _label_index(labels: tuple[str, ...]) -> dict[str, int]:
    return {name.lower(): i for i, name in enumerate(labels)}


def score(run: EvalRun) -> dict[str, Any]:
    """Classification metrics against the run's labels (all null when there are none)."""
    empty = {"accuracy": None, "macro_f1": None, "per_class_accuracy": None, "confusion_matrix": None,
             "scoring": None}
    if run.label_set is None:
        return empty
    assigned = run.label_set.assign(run.frame_stamps)
    index = _label_index(run.labels)
    truth: list[int] = []
    predicted: list[int] = []
    missing = {"frame_not_processed": 0, "no_face_in_frame": 0, "face_id_not_in_frame": 0,
               "face_below_min_face_size": 0, "prediction_not_in_labels": 0}
    for frame_index, frame_labels in assigned.items():
        record = run.frame_records[frame_index]
        for fl in frame_labels:
            if record is None:
                missing["frame_not_processed"] += 1
                continue
            face = record.target_face(fl.face)
            if face is None:
                missing["no_face_in_frame" if not record.faces else "face_id_not_in_frame"] += 1
                continue
            if not face.label:  # tracked, but smaller than detector.min_face_size: no expression was estimated
                missing["face_below_min_face_size"] += 1
                continue
            p = index.get(face.label.lower())
            if p is None:
                missing["prediction_not_in_labels"] += 1
                continue
            truth.append(fl.label)
            predicted.append(p)
    metrics = classification(truth, predicted, run.labels)
    targets = len(truth) + sum(missing.values())
    correct = int(np.trace(np.asarray(metrics["confusion_matrix"]["rows_truth_columns_predicted"])))
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "per_class_accuracy": {k: v["accuracy"] for k, v in metrics["per_class"].items()},
        "confusion_matrix": metrics["confusion_matrix"],
        "scoring": {
            "labelled_faces": targets,
            "scored": len(truth),
            "not_scored": missing,
            "accuracy_counting_unscored_as_wrong": correct / targets if targets else None,
            "per_class": metrics["per_class"],
        },
    }


def _tracks(frames: list, raw: bool) -> dict[int, TrackLabels]:
    tracks: dict[int, TrackLabels] = {}
    for record in frames:
        for face in record.faces:
            label = face.raw_label if raw else face.label
            if not label:  # below min_face_size: no label to flicker
                continue
            t = tracks.setdefault(face.face_id, TrackLabels([], []))
            t.stamps.append(record.stamp)
            t.labels.append(str(label))
    return tracks


def latency(frames: list) -> dict[str, Any]:
    """Distribution of every per-stage timing present, in pipeline order, plus the per-message processing latency."""
    present = {k for r in frames for k in r.stage_ms}
    keys = [k for k in STAGE_ORDER if k in present] + sorted(present - set(STAGE_ORDER))
    out = {k: distribution(r.stage_ms[k] for r in frames if k in r.stage_ms) for k in keys}
    out["processing_latency_ms"] = distribution(r.latency_ms for r in frames)
    return out


def build_report(run: EvalRun, meta: dict[str, Any]) -> dict[str, Any]:
    """The report as a JSON-ready dict; ``meta`` (tool, bag, topic, mode...) is copied in first."""
    frames = run.frames
    counts = [len(r.faces) for r in frames]
    no_face = sum(1 for c in counts if c == 0)
    raw_known = run.raw_labels_known and all(f.raw_label is not None for r in frames for f in r.faces)
    loop_s = run.seconds.get("loop") or 0.0
    report: dict[str, Any] = dict(meta)
    report.update({
        "model": {"id": run.model_id, "labels": list(run.labels), "backend": run.backend, "detector": run.detector},
        "params": run.params,
        "unknown_params": run.unknown_params,
        "messages": run.ledger.as_dict(),
    })
    report.update(score(run))
    report.update({
        "labels": run.label_set.summary() if run.label_set is not None else None,
        "frames_without_face": {"count": no_face, "fraction": no_face / len(frames) if frames else None},
        "faces_per_frame": {"histogram": histogram(counts), **distribution(counts)},
        "latency_ms": latency(frames),
        "flicker": {
            "smoothing": run.smoothing,
            "with_smoothing": flicker(_tracks(frames, raw=False)),
            "without_smoothing": flicker(_tracks(frames, raw=True)) if raw_known else None,
        },
        "throughput": {
            "frames_per_s": run.ledger.total / loop_s if loop_s > 0 else None,
            "seconds": run.seconds,
        },
        "output_bag": str(run.output_bag) if run.output_bag else None,
        "details": run.extra,
    })
    return report


def _fmt(value: Any, digits: int = 3) -> str:
    return format_cell(value, digits)


def counts_text(counts: dict[str, Any]) -> str:
    """``{"a": 2, "b": 1}`` -> ``"a 2, b 1"``: counts as a reader writes them, not as a Python dict."""
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def label_problems(report: dict[str, Any]) -> str:
    """What is wrong with the label file or topic (unknown names, invalid rows, rows matching no frame), or ""."""
    lab = report.get("labels") or {}
    parts = []
    if lab.get("unknown_names"):
        parts.append(f"unknown label names ({counts_text(lab['unknown_names'])})")
    if lab.get("invalid_rows"):
        examples = "; ".join(str(e) for e in lab.get("invalid_examples") or [])
        parts.append(f"{lab['invalid_rows']} invalid rows" + (f" ({examples})" if examples else ""))
    if lab.get("unmatched_rows"):
        parts.append(f"{lab['unmatched_rows']} rows matching no frame")
    return ", ".join(parts)


def markdown(report: dict[str, Any], figures: list[str]) -> str:
    """A human summary of the report (the numbers are those of report.json)."""
    m = report["messages"]
    lines = [f"# fer_ros evaluation: {report.get('bag', '')} {report.get('topic', '')}", "",
             f"Mode: {report.get('mode', '')}; model `{report['model']['id']}` on {report['model']['backend']}, "
             f"detector {report['model']['detector']}.", "",
             "## Messages", "", *markdown_table(("total", "processed", "dropped", "unreadable"),
                                                [(m["total"], m["processed"], m["dropped"], m["unreadable"])]), ""]
    for fate in ("dropped_reasons", "unreadable_reasons"):
        for reason, n in m[fate].items():
            lines.append(f"- {fate.split('_')[0]}: {reason}: {n}")
    read = (report.get("details") or {}).get("bag_read")
    if read and not read["complete"]:
        lines.append(f"- the bag's metadata counts {read['expected']} messages, {read['read']} were read"
                     + (f"; reading stopped at {read['error']}" if read["error"] else ""))
    lines += ["", "## Accuracy", ""]
    if report["accuracy"] is None and report["scoring"] is None:
        lines.append("No labels given (`--labels FILE` or `--label-topic TOPIC`).")
    else:
        s = report["scoring"]
        lines += [f"- accuracy {_fmt(report['accuracy'])}, macro-F1 {_fmt(report['macro_f1'])} over "
                  f"{s['scored']} of {s['labelled_faces']} labelled faces "
                  f"(counting unscored as wrong: {_fmt(s['accuracy_counting_unscored_as_wrong'])})",
                  f"- not scored: {counts_text(s['not_scored'])}", "",
                  *markdown_table(("class", "accuracy", "support"),
                                  [(k, v["accuracy"], v["support"]) for k, v in s["per_class"].items()],
                                  lambda value, _column: _fmt(value))]
        problems = label_problems(report)
        if problems:
            lines += ["", f"Label problems: {problems}."]
    lines += ["", "## Latency (ms)", "",
              *markdown_table(("stage", "p50", "p95", "p99", "max"),
                              [(stage, d["p50"], d["p95"], d["p99"], d["max"])
                               for stage, d in report["latency_ms"].items()],
                              lambda value, _column: _fmt(value, 2))]
    fl = report["flicker"]
    without = fl["without_smoothing"]
    fpf = report["faces_per_frame"]
    lines += ["", "## Faces and flicker", "",
              f"- faces per frame: mean {_fmt(fpf['mean'], 2)}; frames with "
              f"{counts_text({f'{k} faces': v for k, v in fpf['histogram'].items()}) or 'none'}",
              f"- frames without a face: {report['frames_without_face']['count']}",
              f"- label changes per second (all tracks): {_fmt(fl['with_smoothing']['changes_per_s'])} with smoothing "
              f"{fl['smoothing']}, {_fmt(without['changes_per_s']) if without else 'n/a'} without",
              "", f"Throughput: {_fmt(report['throughput']['frames_per_s'], 1)} messages/s.", ""]
    c = report.get("comparison_with_offline")
    if c:
        lines += ["## Live against offline", "",
                  f"- frames both processed: {c['frames_both_processed']}, with the same labels: "
                  f"{c['frames_same_labels']} (faces: {c['faces_same_label']} of {c['faces_compared']}); largest "
                  f"probability difference {_fmt(c['max_probability_difference'], 6)}",
                  f"- live dropped {c['live_dropped']} ({counts_text(c['live_dropped_reasons']) or 'none'}); "
                  f"processed only live "
                  f"{c['processed_live_only']}, only offline {c['processed_offline_only']}", ""]
    lines += [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def write_figures(report: dict[str, Any], run: EvalRun, out_dir: Path) -> list[str]:
    """confusion.png, latency.png, faces_per_frame.png, flicker.png; [] when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    cm = report.get("confusion_matrix")
    if cm is not None:
        title = (f"{report['model']['id']}, {report.get('tool', 'fer-ros')} ({report.get('mode', '')}): accuracy "
                 f"{_fmt(report['accuracy'])}, macro-F1 {_fmt(report['macro_f1'])}")
        written.append(plot_confusion(np.asarray(cm["rows_truth_columns_predicted"]), cm["labels"],
                                      out_dir / "confusion.png", title).name)
    stages = {k: [r.stage_ms[k] for r in run.frames if k in r.stage_ms] for k in report["latency_ms"]
              if k != "processing_latency_ms"}
    stages["processing_latency_ms"] = [r.latency_ms for r in run.frames]
    stages = {k: v for k, v in stages.items() if v}
    if stages:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.boxplot(list(stages.values()), orientation="horizontal")
        ax.set_yticks(range(1, len(stages) + 1), list(stages))
        ax.set_xlabel("ms")
        ax.set_title("latency per stage")
        written.append(_save(fig, out_dir / "latency.png", plt))
    hist = report["faces_per_frame"]["histogram"]
    if hist:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.bar(list(hist), list(hist.values()))
        ax.set_xlabel("faces in frame")
        ax.set_ylabel("frames")
        ax.set_title(f"faces per frame ({report['messages']['processed']} frames processed)")
        written.append(_save(fig, out_dir / "faces_per_frame.png", plt))
    tracks = _tracks(run.frames, raw=False)
    if tracks:
        fig, ax = plt.subplots(figsize=(8, 3))
        index = _label_index(run.labels)
        start = min(run.frame_stamps)  # seconds from the first frame, not raw header stamps
        if run.label_set is not None:  # the ground truth underneath, where the labels say something
            assigned = run.label_set.assign(run.frame_stamps)
            truth = [(run.frame_stamps[i] - start, fl.label) for i, fls in assigned.items() for fl in fls]
            if truth:
                ax.scatter(*zip(*truth), s=40, color="0.8", marker="s", label="label (truth)", zorder=1)
        for tid, t in sorted(tracks.items()):
            ax.step([s - start for s in t.stamps], [index.get(x.lower(), -1) for x in t.labels], where="post",
                    label=f"face {tid}", zorder=2)
        ax.set_yticks(range(len(run.labels)), run.labels)
        ax.set_xlabel("seconds from the first frame")
        ax.set_title("label per track over time (as published)")
        if len(tracks) <= 8:
            ax.legend(fontsize=7, loc="upper right")
        written.append(_save(fig, out_dir / "flicker.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    return path.name


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """NaN/inf -> None so report.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_report(run: EvalRun, out_dir: Path | str, meta: dict[str, Any]) -> dict[str, Any]:
    """Build the report and write report.json, report.md and the figures into ``out_dir``; returns the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _finite(build_report(run, meta))
    figures = write_figures(report, run, out_dir)
    report["figures"] = figures
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=2, default=_json_default, allow_nan=False))
    (out_dir / REPORT_MD).write_text(markdown(report, figures))
    return report
