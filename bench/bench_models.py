"""Size and speed of every model family: parameters, ONNX size, CPU onnxruntime ms per face at batch 1 and 8, and
torch eager / onnxruntime time ratio. Prints a table and writes it to ``models/benchmarks.md``.

    python bench/bench_models.py                       # every family at its real input size (minutes: RMN is big)
    python bench/bench_models.py --families mini_xception rmn_tiny fan_tiny --repeats 5

Every network is exported through ``fer_ros_training.export.export_model`` (so the ONNX parity check runs too) with
its architecture's default width and input size; weights are random (speed does not depend on their values). Both
runtimes get ONE thread (``--threads``) so the ratio compares the runtimes, not how many cores each grabs on a
machine shared with the node. FAN is timed per face as its embedder (one pass per frame) plus the aggregator over a
full window per face, which is what the node pays per frame and tracked face.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "training")]

from fer_ros_training.export.card_fields import card_template  # noqa: E402
from fer_ros_training.export.face_samples import builtin_faces  # noqa: E402
from fer_ros_training.export.onnx_export import export_model  # noqa: E402
from fer_ros_training.networks import build_network, count_parameters, network_spec  # noqa: E402

DEFAULT_FAMILIES = ("mini_xception", "deep_emotion", "fusion", "resnet18", "resnet34", "vgg16", "densenet121",
                    "rmn_tiny", "rmn", "fan_tiny", "fan")
BATCHES = (1, 8)  # one face (the common case) and a crowded frame
FAN_BENCH_WINDOW = 16  # frames the FAN aggregator attends over per face (the shipped default window)


@dataclass
class Row:
    family: str
    input: str
    params: int
    onnx_mb: float
    ort_ms: dict[int, float]  # batch -> ms per face
    torch_ms: dict[int, float]
    parity: float

    def cells(self) -> list[str]:
        ratio = [self.torch_ms[b] / self.ort_ms[b] for b in BATCHES]
        return [self.family, self.input, f"{self.params / 1e6:.2f} M", f"{self.onnx_mb:.1f}",
                *(f"{self.ort_ms[b]:.2f}" for b in BATCHES), *(f"{r:.2f}" for r in ratio), f"{self.parity:.1e}"]


HEADER = ["family", "input", "parameters", "ONNX MB", "ORT ms/face b1", "ORT ms/face b8", "torch/ORT b1",
          "torch/ORT b8", "parity max abs diff"]


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_family(family: str, repeats: int, threads: int, workdir: Path) -> Row:
    spec = network_spec(family)
    side = spec.input_size
    color = "gray" if spec.channels == 1 else "rgb"
    kind = spec.kind
    window = FAN_BENCH_WINDOW if kind == "clip" else 1
    model = build_network(family, **({"window": window} if kind == "clip" else {})).eval()
    card = card_template(family, family, side, side, color, window=window)
    faces = builtin_faces(card, 8).inputs
    extra = None
    if kind == "multimodal":
        from fer_ros_training.features import hog_dim, hog_features

        gray = np.clip(faces[:, 0] * 255, 0, 255).astype(np.uint8)
        extra = {"landmarks": torch.randn(8, 68, 2), "hog": torch.from_numpy(np.stack([hog_features(g) for g in gray]))}
        assert extra["hog"].shape[1] == hog_dim(side)
    result = export_model(model, card, workdir / family, faces, extra_inputs=extra)
    onnx_mb = sum(p.stat().st_size for p in result.files.values()) / 1e6
    ort_ms, torch_ms = {}, {}
    if kind == "clip":
        emb_s, agg_s = _session(result.files["embedder"], threads), _session(result.files["aggregator"], threads)
        with torch.no_grad():
            dim = model.embedder(torch.from_numpy(faces[:1])).shape[-1]
        for b in BATCHES:
            x = faces[:b]
            clips = np.random.default_rng(0).standard_normal((b, window, dim)).astype(np.float32)
            mask = np.ones((b, window), np.float32)
            ort_ms[b] = _median_ms(lambda: (emb_s.run(None, {"input": x}),
                                            agg_s.run(None, {"embeddings": clips, "mask": mask})), repeats) / b
            xt, ct, mt = torch.from_numpy(x), torch.from_numpy(clips), torch.from_numpy(mask) > 0.5
            with torch.no_grad():
                torch_ms[b] = _median_ms(lambda: (model.embedder(xt), model.aggregator(ct, mt)), repeats) / b
    else:
        session = _session(result.files["model"], threads)
        for b in BATCHES:
            feeds = {"input": faces[:b]}
            targs = [torch.from_numpy(faces[:b])]
            if extra:
                feeds.update({k: v[:b].numpy() for k, v in extra.items()})
            ort_ms[b] = _median_ms(lambda: session.run(None, feeds), repeats) / b
            with torch.no_grad():
                if extra:
                    kw = {"image": targs[0], **{k: v[:b] for k, v in extra.items()}}
                    torch_ms[b] = _median_ms(lambda: model(**kw), repeats) / b
                else:
                    torch_ms[b] = _median_ms(lambda: model(targs[0]), repeats) / b
    parity = max(r.max_abs_diff for r in result.parity)
    for path in result.files.values():
        path.unlink()
    return Row(family, f"{side}x{side} {color}", count_parameters(model), onnx_mb, ort_ms, torch_ms, parity)


def markdown(rows: list[Row], threads: int) -> str:
    import platform

    import onnxruntime

    lines = [
        "# Model sizes and CPU speed", "",
        f"Written by `python bench/bench_models.py` on {platform.processor() or platform.machine()} "
        f"({platform.system()}), {threads} thread(s) per runtime, onnxruntime {onnxruntime.__version__}, "
        f"torch {torch.__version__}. Medians; ms per face (a batch's time divided by its size). FAN: embedder + "
        f"aggregator over a {FAN_BENCH_WINDOW}-frame window per face. Ratio > 1: onnxruntime is faster than torch "
        f"eager. Random weights (speed does not depend on them); parity is the export's onnxruntime-vs-torch check. "
        f"Other processes on the machine add noise: re-run before comparing.",
        "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "models" / "benchmarks.md"), help="markdown file ('' = none)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    print(" | ".join(HEADER))
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            row = bench_family(family, args.repeats, args.threads, Path(tmp))
            rows.append(row)
            print(" | ".join(row.cells()), flush=True)
    if args.out:
        Path(args.out).write_text(markdown(rows, args.threads))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
