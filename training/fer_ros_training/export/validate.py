"""Compare a built model (TensorRT engine, or any backend) against its ONNX reference on held-out faces.

Both run through ``fer_ros.inference.create_backend``, the code the node runs, on the same model-ready faces. Reported:
accuracy of each on labelled faces and the drop, top-1 agreement, max and mean absolute probability difference.
It fails when the candidate returns NaN/inf for any face (users of the reference RMN report NaN after FP16
conversion), when the max probability difference exceeds ``max_prob_diff``, or when accuracy drops by more than
``max_accuracy_drop``. FAN models are compared on clips (windows of consecutive faces, embed then aggregate).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_ros.errors import ModelOutputError
from fer_ros.model_card import ModelCard

DEFAULT_MAX_PROB_DIFF = 0.05  # FP16 engines of the shipped models stay well inside; INT8 may need --max-prob-diff
DEFAULT_MAX_ACCURACY_DROP = 0.01  # one accuracy point on the held-out set
VALIDATION_BATCH = 8  # faces per backend call (the engines' default profile maximum)


@dataclass
class ValidationReport:
    """Engine (candidate) against ONNX (reference) on the same faces."""

    faces: int
    labelled: int
    max_prob_diff: float
    mean_prob_diff: float
    agreement: float  # fraction of faces with the same top-1 class
    reference_accuracy: float | None
    candidate_accuracy: float | None
    nan_faces: int  # faces for which the candidate returned NaN/inf
    limits: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy_drop(self) -> float | None:
        if self.reference_accuracy is None or self.candidate_accuracy is None:
            return None
        return self.reference_accuracy - self.candidate_accuracy

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        acc = "n/a (no labelled faces)" if self.accuracy_drop is None else \
            f"{self.reference_accuracy:.4f} -> {self.candidate_accuracy:.4f} (drop {self.accuracy_drop:+.4f})"
        out = [f"faces: {self.faces} ({self.labelled} labelled)",
               f"max |p_candidate - p_reference|: {self.max_prob_diff:.2e} (mean {self.mean_prob_diff:.2e})",
               f"top-1 agreement: {self.agreement:.4f}", f"accuracy: {acc}",
               f"NaN/inf faces: {self.nan_faces}"]
        out.append("PASS" if self.ok else "FAIL: " + "; ".join(self.failures))
        return out


def _run(backend: Any, inputs: np.ndarray, card: ModelCard, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, L) with NaN rows where the backend failed, bool mask of failed faces)."""
    labels = len(card.labels)
    out = np.full((len(inputs), labels), np.nan, dtype=np.float32)
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        try:
            out[start:start + len(chunk)] = _predict(backend, chunk, card)
        except ModelOutputError:
            # the backend refuses NaN/inf for the whole call: find the faces one by one
            for i in range(len(chunk)):
                try:
                    out[start + i] = _predict(backend, chunk[i:i + 1], card)[0]
                except ModelOutputError:
                    pass
    return out, ~np.isfinite(out).all(axis=1)


def clip_windows(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (B, T) of consecutive faces (wrapping around) covering all n faces, and an all-true mask."""
    count = max(1, -(-n // window))
    idx = (np.arange(count * window) % n).reshape(count, window)
    return idx, np.ones((count, window), dtype=bool)


def _predict(backend: Any, batch: np.ndarray, card: ModelCard) -> np.ndarray:
    if not card.is_temporal:
        return backend.predict(batch)
    emb = backend.embed(batch)
    idx, mask = clip_windows(len(batch), min(card.window, len(batch)))
    probs = backend.aggregate(emb[idx], mask)
    return np.repeat(probs, idx.shape[1], axis=0)[:len(batch)]  # each face carries its clip's verdict


def compare(reference: Any, candidate: Any, inputs: np.ndarray, labels: np.ndarray,
            max_prob_diff: float = DEFAULT_MAX_PROB_DIFF, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
            batch: int = VALIDATION_BATCH) -> ValidationReport:
    """Run both backends on the faces (labels: card index, -1 = unlabelled) and judge the candidate."""
    card = reference.card
    if card.is_temporal:
        batch = max(batch, card.window)
    ref, ref_bad = _run(reference, inputs, card, batch)
    cand, cand_bad = _run(candidate, inputs, card, batch)
    if ref_bad.any():
        raise ModelOutputError(f"the reference ({reference.name}) itself returned NaN/inf for {int(ref_bad.sum())} "
                               f"faces: the ONNX model or its card is broken, not the engine")
    good = ~cand_bad
    diff = np.abs(cand[good] - ref[good]) if good.any() else np.zeros((0, ref.shape[1]))
    labelled = labels >= 0
    report = ValidationReport(
        faces=len(inputs), labelled=int(labelled.sum()),
        max_prob_diff=float(diff.max()) if diff.size else float("nan"),
        mean_prob_diff=float(diff.mean()) if diff.size else float("nan"),
        agreement=float((cand[good].argmax(1) == ref[good].argmax(1)).mean()) if good.any() else 0.0,
        reference_accuracy=float((ref[labelled].argmax(1) == labels[labelled]).mean()) if labelled.any() else None,
        candidate_accuracy=float((np.nan_to_num(cand[labelled], nan=-1).argmax(1) == labels[labelled]).mean())
        if labelled.any() else None,
        nan_faces=int(cand_bad.sum()),
        limits={"max_prob_diff": max_prob_diff, "max_accuracy_drop": max_accuracy_drop},
    )
    if report.nan_faces:
        report.failures.append(f"{report.nan_faces} of {report.faces} faces gave NaN/inf")
    if diff.size and report.max_prob_diff > max_prob_diff:
        report.failures.append(f"max probability difference {report.max_prob_diff:.3g} > {max_prob_diff}")
    drop = report.accuracy_drop
    if drop is not None and drop > max_accuracy_drop:
        report.failures.append(f"accuracy drops by {drop:.4f} > {max_accuracy_drop}")
    return report


def reference_card(card: ModelCard) -> ModelCard:
    """The ONNX card behind a TensorRT card (its ``onnx_<role>`` files), or the card itself when it is ONNX."""
    from dataclasses import replace

    if card.format == "onnx":
        return card
    roles = ("embedder", "aggregator") if card.is_temporal else ("model",)
    missing = [r for r in roles if f"onnx_{r}" not in card.files]
    if missing:
        from fer_ros.errors import ModelCardError

        raise ModelCardError(f"card {card.directory} lists no ONNX for {missing}; pass --reference <ONNX model>")
    return replace(card, format="onnx", files={r: card.files[f"onnx_{r}"] for r in roles})
