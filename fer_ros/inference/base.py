"""The one interface every inference backend implements, and the checks they share.

A backend runs a model described by a ``ModelCard`` on a batch of aligned faces, all faces of a frame in one call
(dynamic batch). Single-frame models answer ``predict``; FAN models (card window > 1) answer ``embed`` (one backbone
pass per face per frame) and ``aggregate`` (over up to ``window`` stored embeddings with a mask), and ``predict``
on them treats each face as a one-frame clip.

Subclasses implement ``_classify``, ``_embed`` and ``_aggregate`` on validated float32 arrays; this base class checks
input shapes against the card, returns empty results for empty batches without calling the model, applies softmax to
logits, and turns NaN/inf or wrongly shaped outputs into ``ModelOutputError`` (one frame is dropped, not the node).
"""
from __future__ import annotations

import logging
from abc import ABC
from pathlib import Path

import numpy as np

from fer_ros.errors import InvalidFrameError, ModelCardError, ModelOutputError
from fer_ros.model_card import ModelCard

LOG = logging.getLogger("fer_ros.inference")

#: card file roles: single-frame models list ``model``; FAN models list ``embedder`` and ``aggregator``
SINGLE_ROLES = ("model",)
FAN_ROLES = ("embedder", "aggregator")
#: a TensorRT card may name the ONNX its engines were built from under ``onnx_<role>``; ``auto`` falls back to it
ONNX_FALLBACK_PREFIX = "onnx_"


def model_roles(card: ModelCard) -> tuple[str, ...]:
    """The file roles a backend loads for this card."""
    return FAN_ROLES if card.is_temporal else SINGLE_ROLES


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def check_static_dims(card: ModelCard, path: Path, role: str, input_dims: list, output_dims: list) -> None:
    """Compare a loaded model's declared (C, H, W) / output size with the card; ``None``/str dims are dynamic.

    Raises ModelCardError naming both sides, so a card written for another model never silently feeds garbage.
    """
    if role in ("model", "embedder"):
        want = (card.input.channels, card.input.height, card.input.width)
        have = tuple(input_dims[1:4]) if len(input_dims) == 4 else None
        if have is None:
            raise ModelCardError(f"{path} takes a {len(input_dims)}-d input; the card {card.id} needs (N, C, H, W)")
        for name, w, h in zip(("channels", "height", "width"), want, have):
            if isinstance(h, int) and h > 0 and h != w:
                raise ModelCardError(f"{path} expects input {name} {h} but its card {card.id} says {w} "
                                     f"({card.input.color} {card.input.height}x{card.input.width}): fix model.yaml "
                                     f"or point it at the right model file")
    if role in ("model", "aggregator"):
        last = output_dims[-1] if output_dims else None
        if isinstance(last, int) and last > 0 and last != len(card.labels):
            raise ModelCardError(f"{path} outputs {last} classes but its card {card.id} lists {len(card.labels)} "
                                 f"labels ({', '.join(card.labels)}): fix the labels in model.yaml")
    if role == "embedder" and card.embedding_dim:
        last = output_dims[-1] if output_dims else None
        if isinstance(last, int) and last > 0 and last != card.embedding_dim:
            raise ModelCardError(f"{path} outputs {last}-d embeddings but its card {card.id} says "
                                 f"temporal.embedding_dim {card.embedding_dim}")


class InferenceBackend(ABC):
    """Runs one model card's model; ``name`` says what actually runs (e.g. ``onnxruntime[CPUExecutionProvider]``)."""

    name: str = "abstract"

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    # --- public API --------------------------------------------------------------------------------------------
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 -> (N, L) probabilities. N may be 0 (no model call)."""
        batch = self._check_batch(batch)
        if batch.shape[0] == 0:
            return np.zeros((0, len(self.card.labels)), np.float32)
        if self.card.is_temporal:
            emb = self.embed(batch)
            return self.aggregate(emb[:, None, :], np.ones((len(emb), 1), dtype=bool))
        return self._finish(self._classify(batch), len(self.card.labels), "model", logits=self._logits)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """FAN: (N, C, H, W) float32 -> (N, D) per-frame embeddings."""
        self._require_temporal("embed")
        batch = self._check_batch(batch)
        if batch.shape[0] == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        return self._finish(self._embed(batch), self.card.embedding_dim or None, "embedder", logits=False)

    def aggregate(self, embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """FAN: (N, T, D) embeddings and (N, T) bool mask (True = a real frame) -> (N, L) probabilities."""
        self._require_temporal("aggregate")
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if emb.ndim != 3 or mask.shape != emb.shape[:2]:
            raise ValueError(f"aggregate needs (N, T, D) embeddings and an (N, T) mask, got {emb.shape} and "
                             f"{mask.shape}")
        if emb.shape[1] > self.card.window:
            raise ValueError(f"aggregate got {emb.shape[1]} frames; model {self.card.id} takes at most "
                             f"{self.card.window}")
        if emb.shape[0] == 0:
            return np.zeros((0, len(self.card.labels)), np.float32)
        if not mask.any(axis=1).all():
            raise ValueError("every row of the aggregate mask needs at least one real frame")
        return self._finish(self._aggregate(emb, mask), len(self.card.labels), "aggregator", logits=self._logits)

    def close(self) -> None:
        """Release sessions and device memory; the backend is unusable afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.card.id!r}, {self.name!r})"

    # --- for subclasses ----------------------------------------------------------------------------------------
    def _classify(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} cannot run single-frame model {self.card.id}")

    def _embed(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} cannot run FAN embedder of {self.card.id}")

    def _aggregate(self, embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} cannot run FAN aggregator of {self.card.id}")

    @property
    def _logits(self) -> bool:
        return self.card.output == "logits"

    # --- shared checks -----------------------------------------------------------------------------------------
    def _require_temporal(self, what: str) -> None:
        if not self.card.is_temporal:
            raise ModelCardError(f"model {self.card.id} is single-frame (temporal.window 1): {what}() is for FAN "
                                 f"models whose card lists an embedder and an aggregator; call predict()")

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        spec = self.card.input
        want = (spec.channels, spec.height, spec.width)
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or tuple(batch.shape[1:]) != want:
            shape = getattr(batch, "shape", type(batch).__name__)
            raise InvalidFrameError(f"model {self.card.id} takes (N, {want[0]}, {want[1]}, {want[2]}) batches "
                                    f"({spec.color} {spec.height}x{spec.width}), got {shape}: align faces with "
                                    f"fer_ros.faces.align.align_batch and this model's card")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def _finish(self, out: np.ndarray, width: int | None, role: str, logits: bool) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or (width is not None and out.shape[1] != width):
            raise ModelOutputError(f"{self.name} {role} of model {self.card.id} returned shape {out.shape}, "
                                   f"expected (N, {width}): the model file does not match its card")
        if not np.isfinite(out).all():
            bad = int((~np.isfinite(out)).any(axis=1).sum())
            raise ModelOutputError(f"{self.name} {role} of model {self.card.id} returned NaN/inf for {bad} of "
                                   f"{len(out)} faces; if this is an FP16 engine, rebuild it in FP32 or check "
                                   f"the input normalisation in the card")
        return softmax(out) if logits else out
