"""Parameters and CPU time per face of every registered network, torch eager, eval mode.

Each network runs at its own input size (224x224 for RMN, FAN and the ImageNet baselines; 48x48 or 64x64 gray for
the FER2013-sized ones), at batch 1 and batch ``--batch``; the median of ``--repeats`` timed runs after a warm-up
is divided by the batch size. The ratio column compares with the default model (mini-Xception). For FAN the figure
is the streaming cost (one embedder pass per new frame + one aggregator pass over the window) and the recompute
cost of running the whole window through the backbone is shown beside it.

    python bench/bench_networks.py                    # all networks, 1 thread
    python bench/bench_networks.py --networks rmn fan --threads 2 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import torch

from fer_ros_training.networks import NETWORKS, build_network, count_parameters, example_input, network_spec

# The default model every figure is compared with (the node's CPU default).
REFERENCE_NETWORK = "mini_xception"


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench_one(name: str, batch: int, repeats: int) -> dict[str, Any]:
    model = build_network(name).eval()
    spec = network_spec(name)
    row: dict[str, Any] = {"name": name, "params": count_parameters(model), "side": spec.input_size,
                           "channels": spec.channels}
    with torch.inference_mode():
        for b in (1, batch):
            x = example_input(name, batch=b, frames=1)
            if spec.kind == "clip":  # streaming: embed the new frame(s), aggregate the full window
                window = model.window
                emb = torch.randn(b, window, model.aggregator.embedding_dim)
                mask = torch.ones(b, window, dtype=torch.bool)
                frames = x[0][:, 0]
                ms = median_ms(lambda: (model.embedder(frames), model.aggregator(emb, mask)), repeats)
                if b == 1:
                    clips = torch.randn(1, window, spec.channels, spec.input_size, spec.input_size)
                    row["recompute_ms"] = median_ms(lambda: model(clips, mask[:1]), max(1, repeats // 3))
                    row["window"] = window
            else:  # a tensor, or the fusion network's dict of named inputs
                ms = median_ms(lambda: model(x), repeats)
            row[f"ms_b{b}"] = ms / b
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--batch", type=int, default=8, help="second batch size measured (per-face time reported)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per figure (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (this machine has 2 cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = list(dict.fromkeys([REFERENCE_NETWORK] + args.networks))
    rows = []
    for name in names:
        rows.append(bench_one(name, args.batch, args.repeats))
        r = rows[-1]
        print(f"  measured {name}: {r['ms_b1']:.2f} ms/face", flush=True)
    ref = rows[0]["ms_b1"]
    print(f"\ntorch {torch.__version__} eager, CPU, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'network':<24}{'params':>13}{'input':>11}{'ms/face b1':>12}{f'ms/face b{args.batch}':>12}"
          f"{'x default':>11}  note")
    for r in rows:
        note = ""
        if "recompute_ms" in r:
            note = (f"stream: 1 embed + aggregate {r['window']}; recompute window: {r['recompute_ms']:.1f} ms "
                    f"({r['recompute_ms'] / r['ms_b1']:.1f}x)")
        size = f"{r['side']}x{r['side']}x{r['channels']}"
        print(f"{r['name']:<24}{r['params']:>13,}{size:>11}{r['ms_b1']:>12.2f}{r[f'ms_b{args.batch}']:>12.2f}"
              f"{r['ms_b1'] / ref:>10.1f}x  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
