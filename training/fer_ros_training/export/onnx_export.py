"""Export a trained network to ONNX, prove the file computes what torch computes, and write its model card.

One function, ``export_model``, handles every family:
- single-image classifiers (RMN, ResNet/VGG/DenseNet baselines, mini-Xception, ensembles): one graph ``model.onnx``
  with input ``input`` (N, C, H, W) and output ``probabilities`` (or ``logits``), N dynamic;
- networks with extra per-face inputs (the multimodal fusion: image + landmarks + HOG): one graph whose inputs are
  named after the network's ``forward`` parameters, all with a dynamic batch;
- the Frame Attention Network: two graphs, ``embedder.onnx`` (N, C, H, W) -> ``embedding`` (N, D) and
  ``aggregator.onnx`` (``embeddings`` (N, T, D), ``mask`` (N, T) float32, 1 = frame present) -> clip output, N and T
  dynamic, referenced from one card (``files: {embedder, aggregator}``, ``temporal.window``).

Softmax decision: graphs output probabilities by default (the softmax is part of the graph). Backends then read the
vector as is, TensorRT validation compares the numbers the node publishes, and ensembles (which average
probabilities) look like every other model. ``output="logits"`` keeps raw scores for users who need them; the card's
``output`` field always says which one the file holds.

Every export is checked twice before it counts: ``onnx.checker.check_model`` on the file, then ONNX Runtime against
torch on real faces at batch 1 and batch N; the maximum absolute difference must be <= ``PARITY_ATOL`` (fp32) or the
export fails with ``ExportError`` and no card is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_ros.cli_options import output_taken
from fer_ros.errors import ConfigError, FerRosError
from fer_ros.model_card import ModelCard

OPSET = 17  # ONNX opset of every export: supported by TensorRT 8.6+ and onnxruntime >= 1.14
PARITY_ATOL = 1e-4  # fp32 max |onnxruntime - torch| an export may show; above it the export is wrong, not noisy
OUTPUTS = ("probabilities", "logits")
EMBEDDING_OUTPUT = "embedding"  # output name of a FAN embedder graph
IMAGE_INPUT = "input"  # input name of every image graph (backends feed it by position, TensorRT profiles by name)


class ExportError(FerRosError):
    """The ONNX file is invalid or does not reproduce the torch network; the message says by how much."""


class _Softmax(nn.Module):
    """Appends a softmax over the classes so the graph outputs probabilities."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.inner(*args), dim=-1)


class _KeywordCall(nn.Module):
    """Calls a multimodal network with keywords (``model(image=..., landmarks=..., hog=...)``) from positions."""

    def __init__(self, inner: nn.Module, image_key: str, extra_keys: list[str]) -> None:
        super().__init__()
        self.inner, self.keys = inner, [image_key] + extra_keys

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.inner(**dict(zip(self.keys, args)))


class _FloatMaskAggregator(nn.Module):
    """FAN aggregator with a float32 mask input (TensorRT and every runtime take float inputs; bool I/O is patchy)."""

    def __init__(self, aggregator: nn.Module) -> None:
        super().__init__()
        self.aggregator = aggregator

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.aggregator(embeddings, mask > 0.5)


@dataclass
class GraphSpec:
    """One ONNX graph to write: the module, named example inputs and which axes are dynamic."""

    role: str  # card file role: model | embedder | aggregator
    module: nn.Module
    inputs: dict[str, torch.Tensor]  # ordered as the module's forward takes them
    output_name: str
    dynamic_axes: dict[str, dict[int, str]]
    filename: str


@dataclass
class ParityReport:
    """ONNX Runtime vs torch on real inputs for one graph."""

    role: str
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    atol: float = PARITY_ATOL

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff) and self.max_abs_diff <= self.atol)

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"{self.role}: max |onnxruntime - torch| = {self.max_abs_diff:.2e} over batches "
                f"{list(self.batch_sizes)} (limit {self.atol:.0e}) {verdict}")


@dataclass
class ExportResult:
    """Where the export went and the evidence that it is right."""

    card: ModelCard
    card_path: Path
    files: dict[str, Path]
    parity: list[ParityReport] = field(default_factory=list)


def is_fan(model: nn.Module) -> bool:
    """A Frame Attention Network: exported as a per-frame embedder and a window aggregator."""
    return isinstance(getattr(model, "embedder", None), nn.Module) and \
        isinstance(getattr(model, "aggregator", None), nn.Module)


def outputs_probabilities(model: nn.Module) -> bool:
    """True when the network's forward already returns probabilities (ensembles, a mini-Xception built so)."""
    kind = str(getattr(model, "output_kind", "logits"))
    return kind == "probabilities" or getattr(model, "probabilities", False) is True


def _as_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def export_graph(spec: GraphSpec, path: Path) -> Path:
    """Write one graph with ``torch.onnx.export`` (TorchScript exporter, opset ``OPSET``) and run the ONNX checker."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    spec.module.eval()
    with torch.no_grad():
        torch.onnx.export(spec.module, tuple(spec.inputs.values()), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=list(spec.inputs), output_names=[spec.output_name],
                          dynamic_axes=spec.dynamic_axes, do_constant_folding=True)
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except onnx.checker.ValidationError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the ONNX checker rejects the {spec.role} graph: {exc}") from exc
    tmp.replace(path)
    return path


def ort_session(path: Path | str):
    """A CPU onnxruntime session (parity is checked in fp32 on the CPU, the reference every backend is held to)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_parity(spec: GraphSpec, path: Path, atol: float = PARITY_ATOL) -> ParityReport:
    """Run the graph in onnxruntime and the module in torch on the spec's inputs, whole and as a batch of one."""
    session = ort_session(path)
    n = int(next(iter(spec.inputs.values())).shape[0])
    batches = [slice(0, n)] + ([slice(0, 1)] if n > 1 else [])
    worst = 0.0
    spec.module.eval()
    for sl in batches:
        feeds = {k: v[sl] for k, v in spec.inputs.items()}
        with torch.no_grad():
            expected = _as_numpy(spec.module(*feeds.values())).astype(np.float64)
        got = session.run([spec.output_name], {k: _as_numpy(v) for k, v in feeds.items()})[0].astype(np.float64)
        if got.shape != expected.shape:
            raise ExportError(f"{spec.role}: onnxruntime output shape {got.shape} != torch {expected.shape} "
                              f"at batch {sl.stop - sl.start}")
        diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
        worst = max(worst, diff) if np.isfinite(diff) else float("nan")
        if not np.isfinite(worst):
            break
    return ParityReport(spec.role, worst, tuple(sl.stop - sl.start for sl in batches), atol)


def fan_windows(embeddings: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real clip inputs for the aggregator: consecutive embeddings as windows, the last one half masked.

    Returns (embeddings (B, T, D), mask (B, T) float32). The partly empty window checks that masked frames are
    ignored the same way in both runtimes (a tracked face that has been seen for fewer than ``window`` frames).
    """
    n, d = embeddings.shape
    count = max(2, n // window)
    idx = torch.arange(count * window) % n
    clips = embeddings[idx].reshape(count, window, d)
    mask = torch.ones(count, window, dtype=torch.float32)
    mask[-1, (window + 1) // 2:] = 0.0
    return clips.contiguous(), mask


def fan_clip_parity(model: nn.Module, files: dict[str, Path], faces: torch.Tensor, window: int,
                    output: str = "probabilities", atol: float = PARITY_ATOL) -> ParityReport:
    """The two FAN graphs chained in onnxruntime against the whole torch network on real clips.

    Clips are windows of consecutive faces (B, T, C, H, W) with the last one half masked; onnxruntime embeds every
    frame with the embedder graph, then runs the aggregator graph on the embeddings, as the node does per track.
    """
    n = faces.shape[0]
    count = max(2, n // window)
    idx = torch.arange(count * window) % n
    clips = faces[idx].reshape(count, window, *faces.shape[1:])
    mask = torch.ones(count, window, dtype=torch.bool)
    mask[-1, (window + 1) // 2:] = False
    model.eval()
    with torch.no_grad():
        expected = model(clips, mask)
        if output == "probabilities" and not outputs_probabilities(model):
            expected = torch.softmax(expected, dim=-1)
    embedder, aggregator = ort_session(files["embedder"]), ort_session(files["aggregator"])
    emb = embedder.run(None, {IMAGE_INPUT: _as_numpy(clips.flatten(0, 1))})[0].reshape(count, window, -1)
    got = aggregator.run(None, {"embeddings": emb, "mask": _as_numpy(mask).astype(np.float32)})[0]
    diff = float(np.max(np.abs(got.astype(np.float64) - _as_numpy(expected).astype(np.float64))))
    return ParityReport("clip", diff, (count,), atol)


def graph_specs(model: nn.Module, faces: torch.Tensor, window: int = 1, output: str = "probabilities",
                extra_inputs: dict[str, torch.Tensor] | None = None, image_key: str = "image") -> list[GraphSpec]:
    """The graphs a network exports to, with real example inputs (faces: (N, C, H, W) float32, model-ready).

    ``extra_inputs``: per-face tensors a multimodal network takes besides the image (fusion: landmarks, HOG); the
    network is then called with keywords, the image as ``image_key``.
    """
    if output not in OUTPUTS:
        raise ExportError(f"output must be one of {OUTPUTS}, got '{output}'")
    model.eval()
    batch = {0: "batch"}
    if is_fan(model):
        if window < 2:
            raise ExportError("a Frame Attention Network needs temporal window >= 2 (how many frame embeddings the "
                              "aggregator attends over); pass --window")
        embedder = model.embedder.eval()
        with torch.no_grad():
            emb = embedder(faces)
        clips, mask = fan_windows(emb, window)
        aggregator: nn.Module = _FloatMaskAggregator(model.aggregator.eval())
        if output == "probabilities" and not outputs_probabilities(model.aggregator):
            aggregator = _Softmax(aggregator)
        return [
            GraphSpec("embedder", embedder, {IMAGE_INPUT: faces}, EMBEDDING_OUTPUT,
                      {IMAGE_INPUT: batch, EMBEDDING_OUTPUT: batch}, "embedder.onnx"),
            GraphSpec("aggregator", aggregator.eval(), {"embeddings": clips, "mask": mask}, output,
                      {"embeddings": {0: "batch", 1: "frames"}, "mask": {0: "batch", 1: "frames"}, output: batch},
                      "aggregator.onnx"),
        ]
    inputs: dict[str, torch.Tensor] = {IMAGE_INPUT: faces}  # the image is always the first input, named alike
    model_call: nn.Module = model
    if extra_inputs:
        for name, value in extra_inputs.items():
            if value.shape[0] != faces.shape[0]:
                raise ExportError(f"extra input '{name}' has batch {value.shape[0]}, the faces {faces.shape[0]}")
            inputs[name] = value
        model_call = _KeywordCall(model, image_key, list(extra_inputs))
    module: nn.Module = model_call
    if output == "probabilities" and not outputs_probabilities(model):
        module = _Softmax(model_call)
    elif output == "logits" and outputs_probabilities(model):
        raise ExportError(f"{type(model).__name__} outputs probabilities (an ensemble); export it with "
                          f"output='probabilities'")
    dynamic = {name: batch for name in inputs}
    dynamic[output] = batch
    return [GraphSpec("model", module.eval(), inputs, output, dynamic, "model.onnx")]


def export_model(model: nn.Module, card: ModelCard, out_dir: Path | str, faces: np.ndarray | torch.Tensor,
                 output: str = "probabilities", extra_inputs: dict[str, torch.Tensor] | None = None,
                 atol: float = PARITY_ATOL, extra: dict[str, Any] | None = None,
                 image_key: str = "image") -> ExportResult:
    """Export ``model`` into ``out_dir`` with the card, after the checker and the parity check pass.

    ``card`` gives id, architecture, input, crop, labels and window (its files/format/output are replaced);
    ``faces`` are real model-ready inputs (see ``face_samples``); ``extra`` adds provenance fields to the card
    (source checkpoint and hash, training data, metrics, licence). Raises ``ExportError`` when any check fails.
    """
    out_dir = Path(out_dir)
    if output_taken(out_dir):
        # like eval-bag's output: an existing model folder is never overwritten silently (a robot may be using it)
        raise ConfigError(f"export output {out_dir} already exists and is not empty; choose a new --out or remove it")
    faces_t = torch.as_tensor(np.asarray(faces, dtype=np.float32))
    expected = (card.input.channels, card.input.height, card.input.width)
    if faces_t.ndim != 4 or tuple(faces_t.shape[1:]) != expected:
        raise ExportError(f"example faces have shape {tuple(faces_t.shape)}, the card wants (N, {expected[0]}, "
                          f"{expected[1]}, {expected[2]})")
    specs = graph_specs(model, faces_t, card.window, output, extra_inputs, image_key)
    files: dict[str, Path] = {}
    reports: list[ParityReport] = []
    for spec in specs:
        path = export_graph(spec, out_dir / spec.filename)
        report = check_parity(spec, path, atol)
        reports.append(report)
        if not report.ok:
            path.unlink(missing_ok=True)
            raise ExportError(f"ONNX Runtime does not reproduce torch: {report}; the file was removed. Check for "
                              f"ops that behave differently when traced (data-dependent shapes, in-place tricks)")
        files[spec.role] = path
    if is_fan(model):
        report = fan_clip_parity(model, files, faces_t, card.window, output, atol)
        reports.append(report)
        if not report.ok:
            for path in files.values():
                path.unlink(missing_ok=True)
            raise ExportError(f"the two FAN graphs chained do not reproduce the torch clip output: {report}")
    with torch.no_grad():
        embedding_dim = int(specs[0].module(faces_t[:1]).shape[-1]) if is_fan(model) else card.embedding_dim
    provenance = dict(card.extra)
    provenance.update(extra or {})
    provenance["parity"] = {r.role: {"max_abs_diff": float(r.max_abs_diff), "atol": r.atol} for r in reports}
    provenance["onnx"] = {"opset": OPSET, "dynamic_batch": True,
                          "inputs": {s.role: list(s.inputs) for s in specs}}
    final = replace(card, format="onnx", files={role: p.name for role, p in files.items()}, output=output,
                    embedding_dim=embedding_dim, extra=provenance, directory=out_dir)
    card_path = final.save(out_dir)
    return ExportResult(card=final, card_path=card_path, files=files, parity=reports)
