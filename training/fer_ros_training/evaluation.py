"""Evaluate a trained checkpoint the way the seeds report: tables, confusion matrix, Grad-CAM, robustness.

``evaluate_checkpoint`` writes into one folder:

- ``metrics.csv`` / ``metrics.md``: accuracy and macro-F1, single pass and with test-time averaging (TTA: mean of the
  softmax over the face and its mirror / shifted copies), plus per-class accuracy;
- ``confusion.png`` (row-normalised, counts in the cells) and ``confusion.csv``;
- ``gradcam.png``: Grad-CAM heat maps (Selvaraju et al. 2017) of sample faces on the network's last convolution;
- ``robustness.csv`` / ``.md`` / ``.png``: accuracy with the eyes or the mouth occluded and under darker or brighter
  light (the multimodal seed's interference test). Occluders are placed from each face's landmarks in the crop (a
  canonical face layout where a data set has none, e.g. FER2013).

Every condition goes through the eval preset, i.e. the runtime's normalisation of the aligned crop.

Which crop was scored is said: the report counts the faces by how they were located (the node's detector, a
``faces.csv`` row, the whole image where no face was found, a ready crop) and, when not every face came from the
detector, also scores the detector-found faces alone, which is what the node (``eval-bag``) labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from fer_ros.confusion_plot import plot_confusion  # noqa: E402
from fer_ros.errors import ConfigError  # noqa: E402
from fer_ros.tables import write_table  # noqa: E402
from fer_ros_training.data.face_cache import LOCATED_DETECTOR, AlignedFace  # noqa: E402
from fer_ros_training.data.prepare import PreparedSplit, faces_of  # noqa: E402
from fer_ros_training.loops import forward, predict, softmax, to_device  # noqa: E402
from fer_ros_training.metrics import ClassificationReport, classification_report  # noqa: E402
from fer_ros_training.train_config import TrainConfig  # noqa: E402

TTA_SHIFT = 0.06  # fraction of the crop side by which the shifted TTA copies move (the seeds' small translations)
BRIGHTNESS_LEVELS = (0.5, 1.5)  # multiplicative light changes of the robustness test
CANONICAL_EYES_Y = 0.40  # eye height in an aligned crop without landmarks (fraction of the side)
CANONICAL_MOUTH_Y = 0.76  # mouth height in an aligned crop without landmarks
OCCLUDER_HALF_HEIGHT = 0.11  # half height of the eye / mouth occluding band, fraction of the crop side
GRADCAM_COLUMNS = 8  # faces per row of the Grad-CAM sheet

CropOp = Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # (H, W, C) uint8, landmarks (5,2)|None -> crop


# --- perturbations of aligned crops -----------------------------------------------------------------------------------
def hflip(crop: np.ndarray, _lm: np.ndarray | None = None) -> np.ndarray:
    return np.ascontiguousarray(crop[:, ::-1])


def shift(dx: float, dy: float) -> CropOp:
    """Translate the crop by (dx, dy) fractions of its side, edges replicated (what a slightly shifted box gives)."""
    import cv2

    def op(crop: np.ndarray, _lm: np.ndarray | None = None) -> np.ndarray:
        h, w = crop.shape[:2]
        m = np.float32([[1, 0, dx * w], [0, 1, dy * h]])
        out = cv2.warpAffine(crop, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(crop.shape)

    return op


def brightness(factor: float) -> CropOp:
    def op(crop: np.ndarray, _lm: np.ndarray | None = None) -> np.ndarray:
        return np.clip(crop.astype(np.float32) * factor, 0, 255).astype(np.uint8)

    return op


def occlude(part: str) -> CropOp:
    """A gray band over both eyes (``eyes``) or over the mouth (``mouth``), placed from the landmarks."""
    if part not in ("eyes", "mouth"):
        raise ValueError(f"occlusion part must be eyes or mouth, got {part}")

    def op(crop: np.ndarray, lm: np.ndarray | None) -> np.ndarray:
        h, w = crop.shape[:2]
        if lm is not None:
            pts = lm[:2] if part == "eyes" else lm[3:5]
            cy = float(pts[:, 1].mean())
            x0, x1 = float(pts[:, 0].min()), float(pts[:, 0].max())
            pad = 0.45 * (x1 - x0) if part == "eyes" else 0.25 * (x1 - x0)
            x0, x1 = x0 - pad, x1 + pad
        else:
            cy = (CANONICAL_EYES_Y if part == "eyes" else CANONICAL_MOUTH_Y) * h
            x0, x1 = 0.12 * w, 0.88 * w
        half = OCCLUDER_HALF_HEIGHT * h
        out = crop.copy()
        out[max(0, int(cy - half)):max(0, int(np.ceil(cy + half))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = 128
        return out

    return op


MAX_TTA_COPIES = 6  # identity, mirror and four shifts: the copies tta_ops knows


def tta_ops(copies: int) -> list[CropOp]:
    """The first ``copies`` (1..MAX_TTA_COPIES) of: identity, mirror, shifts left/right/up/down."""
    if not 1 <= copies <= MAX_TTA_COPIES:
        raise ConfigError(f"--tta {copies}: test-time averaging takes 1 (off) to {MAX_TTA_COPIES} copies (identity, "
                          f"mirror, four shifts)")
    ident: CropOp = lambda c, _lm=None: c  # noqa: E731
    ops = [ident, hflip, shift(-TTA_SHIFT, 0), shift(TTA_SHIFT, 0), shift(0, -TTA_SHIFT), shift(0, TTA_SHIFT)]
    return ops[:copies]


def perturb_split(split: PreparedSplit, op: CropOp) -> PreparedSplit:
    """A copy of a prepared split with ``op`` applied to every aligned crop (every frame of a clip)."""
    def one(face: AlignedFace) -> AlignedFace:
        return replace(face, crop=op(face.crop, face.landmarks))

    faces = [[one(f) for f in item] if isinstance(item, list) else one(item) for item in split.faces]
    return PreparedSplit(faces, list(split.labels), list(split.sources))


# --- scoring --------------------------------------------------------------------------------------------------------
def split_probabilities(model: nn.Module, cfg: TrainConfig, split: PreparedSplit, device: torch.device,
                        op: CropOp | None = None, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Softmax (N, L) and labels (N,) of a split through the eval preset, after an optional crop perturbation."""
    from torch.utils.data import DataLoader

    from fer_ros_training.trainer import make_dataset

    data = perturb_split(split, op) if op is not None else split
    loader = DataLoader(make_dataset(cfg, data, train=False), batch_size=batch_size)
    logits, labels = predict(model, loader, device, progress=False)
    return softmax(logits), labels


def tta_probabilities(model: nn.Module, cfg: TrainConfig, split: PreparedSplit, device: torch.device,
                      copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Test-time averaging: the mean softmax over ``copies`` deterministic augmented copies of each face."""
    probs, labels = None, None
    ops = tta_ops(copies)
    for op in ops:
        p, labels = split_probabilities(model, cfg, split, device, op)
        probs = p if probs is None else probs + p
    return probs / len(ops), labels


def located_counts(split: PreparedSplit) -> dict[str, int]:
    """Faces of a split (clip frames each) by how they were located (``fer_ros_training.data.face_cache.LOCATED_*``)."""
    counts: dict[str, int] = {}
    for face in faces_of(split):
        counts[face.located] = counts.get(face.located, 0) + 1
    return counts


def describe_crops(counts: dict[str, int]) -> str:
    """One line naming the crops scored, e.g. 'faces: detector 40, whole_image 65 (no face found: ...)'."""
    notes = {"detector": "found as the node finds them", "annotation": "faces.csv, data.annotations: true",
             "whole_image": "no face found: the whole image cropped as a face box", "ready_crop": "FER2013 rows"}
    return "faces: " + ", ".join(f"{k} {v} ({notes.get(k, k)})" for k, v in sorted(counts.items()))


@dataclass
class EvaluationReport:
    single: ClassificationReport
    tta: ClassificationReport | None
    robustness: dict[str, ClassificationReport] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    tta_copies: int = 1
    located: dict[str, int] = field(default_factory=dict)  # faces scored, by how they were located
    detected: ClassificationReport | None = None  # the detector-found faces alone, when others were scored too


# --- plots and tables: fer_ros.confusion_plot and fer_ros.tables, shared with the bag reports ---------------------
# --- Grad-CAM -------------------------------------------------------------------------------------------------------
def last_conv(model: nn.Module) -> nn.Module:
    """The last ``Conv2d`` registered in the model."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the network has no Conv2d layer for Grad-CAM")
    return convs[-1]


def cam_layer(model: nn.Module, inputs) -> nn.Module:
    """The module that last produces a spatial (N, C, H, W) map with H * W > 1 in a forward pass.

    That is the deepest rectified feature map (e.g. a ResNet's ``layer4`` after its final ReLU), where Grad-CAM is
    meant to look; a bare last convolution would give pre-activation maps whose negative values flip the sign.
    """
    order: list[nn.Module] = []

    def record(module, _inp, out):
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1:
            order.append(module)

    handles = [m.register_forward_hook(record) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            forward(model.eval(), inputs)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError("the network produces no spatial feature map for Grad-CAM")
    return order[-1]


def grad_cam(model: nn.Module, inputs, target: torch.Tensor, layer: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM maps in [0, 1] for one batch, upsampled to the input size: (N, H, W), or (N*T, H, W) for clips.

    ``layer`` defaults to :func:`cam_layer`.
    Weights are the spatial means of d logit[target] / d activation; the map is ReLU of the weighted sum.
    """
    layer = layer or cam_layer(model, inputs)
    store: dict[str, torch.Tensor] = {}

    def keep(_m, _i, out):
        out.retain_grad()
        store["act"] = out

    handle = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = forward(model, inputs)
            score = logits.gather(1, target[:, None]).sum()
            model.zero_grad(set_to_none=True)
            score.backward()
    finally:
        handle.remove()
        model.train(was_training)
    act, grad = store["act"].detach(), store["act"].grad.detach()
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    image = inputs["image"] if isinstance(inputs, dict) else inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    size = image.shape[-2:]
    cam = torch.nn.functional.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = cam.flatten(1).min(1).values[:, None, None]
    hi = cam.flatten(1).max(1).values[:, None, None]
    return ((cam - lo) / (hi - lo).clamp(min=1e-12)).cpu().numpy()


def gradcam_sheet(model: nn.Module, cfg: TrainConfig, split: PreparedSplit, device: torch.device, path: Path,
                  count: int = 16, seed: int = 0) -> Path:
    """A PNG of ``count`` sample faces (clips: their middle segment) with Grad-CAM of the true class overlaid."""
    from torch.utils.data import default_collate

    from fer_ros_training.trainer import make_dataset

    ds = make_dataset(cfg, split, train=False)
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(len(ds), size=min(count, len(ds)), replace=False).tolist())
    batch = default_collate([ds[i] for i in idx])
    inputs = to_device(batch["input"], device)
    target = torch.as_tensor(batch["label"], device=device)
    cams = grad_cam(model, inputs, target)
    logits = forward(model.eval(), inputs).detach()
    pred = logits.argmax(1).cpu().numpy()
    faces = []
    for i in idx:
        item = split.faces[i]
        faces.append(item[len(item) // 2] if isinstance(item, list) else item)
    if cams.shape[0] != len(idx):  # clips: one map per frame; show the middle sampled frame
        per = cams.shape[0] // len(idx)
        cams = cams.reshape(len(idx), per, *cams.shape[1:])[:, per // 2]
    cols = min(GRADCAM_COLUMNS, len(idx))
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (face, cam) in enumerate(zip(faces, cams)):
        ax = axes.ravel()[k]
        crop = face.crop[..., 0] if face.crop.shape[-1] == 1 else face.crop
        ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None)
        ax.imshow(cam, cmap="jet", alpha=0.45)
        t, p = cfg.labels[batch["label"][k]], cfg.labels[pred[k]]
        ax.set_title(f"{t}\n-> {p}", fontsize=7, color="black" if t == p else "red")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the whole evaluation -------------------------------------------------------------------------------------------
def robustness_conditions() -> dict[str, CropOp | None]:
    conds: dict[str, CropOp | None] = {"clean": None, "eyes_occluded": occlude("eyes"),
                                       "mouth_occluded": occlude("mouth")}
    conds.update({f"brightness_x{b:g}": brightness(b) for b in BRIGHTNESS_LEVELS})
    return conds


def evaluate_model(model: nn.Module, cfg: TrainConfig, split: PreparedSplit, out_dir: Path | str,
                   device: torch.device | str = "cpu", tta: int = 2, gradcam: int = 16, robustness: bool = True,
                   title: str = "") -> EvaluationReport:
    """Score ``model`` on a prepared split and write the tables and plots listed in the module docstring."""
    if not split.labels:
        raise ConfigError("the evaluation split is empty: nothing to score (check data.split or --split)")
    device = torch.device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.to(device).eval()
    labels = cfg.labels
    n = len(labels)
    files: dict[str, Path] = {}
    tta_ops(tta)  # a bad count fails before any work
    probs, y = split_probabilities(model, cfg, split, device)
    single = classification_report(y, probs.argmax(1), n)
    tta_rep = None
    if tta > 1:
        tprobs, _ = tta_probabilities(model, cfg, split, device, tta)
        tta_rep = classification_report(y, tprobs.argmax(1), n)
    located = located_counts(split)
    found = np.array([not isinstance(f, list) and f.located == LOCATED_DETECTOR for f in split.faces])
    detected = None
    if found.any() and not found.all():
        detected = classification_report(y[found], probs[found].argmax(1), n)
    rows = [{"mode": "single", **single.as_dict(labels)}]
    if tta_rep is not None:
        rows.append({"mode": f"tta{tta}", **tta_rep.as_dict(labels)})
    if detected is not None:
        rows.append({"mode": "single_detector_faces", **detected.as_dict(labels)})
    write_table(rows, out / "metrics.csv", out / "metrics.md")
    with open(out / "metrics.md", "a") as f:
        f.write(f"\n{describe_crops(located)}\n")
    files["metrics"] = out / "metrics.csv"
    cm_rows = [{"true": labels[i], **{p: int(single.confusion[i, j]) for j, p in enumerate(labels)}} for i in range(n)]
    write_table(cm_rows, out / "confusion.csv")
    files["confusion"] = plot_confusion(single.confusion, labels, out / "confusion.png",
                                        title or f"{cfg.name}, fer-ros evaluate: accuracy {single.accuracy:.3f}, "
                                                  f"macro-F1 {single.macro_f1:.3f}")
    if gradcam > 0:
        files["gradcam"] = gradcam_sheet(model, cfg, split, device, out / "gradcam.png", gradcam, cfg.seed)
    rob: dict[str, ClassificationReport] = {}
    if robustness:
        rob_rows = []
        for name, op in robustness_conditions().items():
            p, yy = (probs, y) if op is None else split_probabilities(model, cfg, split, device, op)
            rob[name] = classification_report(yy, p.argmax(1), n)
            rob_rows.append({"condition": name, "accuracy": rob[name].accuracy, "macro_f1": rob[name].macro_f1,
                             "accuracy_drop": single.accuracy - rob[name].accuracy})
        write_table(rob_rows, out / "robustness.csv", out / "robustness.md")
        files["robustness"] = out / "robustness.csv"
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.bar([r["condition"] for r in rob_rows], [r["accuracy"] for r in rob_rows], color="tab:blue")
        ax.axhline(1 / n, color="gray", ls="--", lw=1, label="chance")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"{cfg.name}: accuracy under occlusion and light changes", fontsize=9)
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "robustness.png", dpi=110)
        plt.close(fig)
        files["robustness_plot"] = out / "robustness.png"
    return EvaluationReport(single, tta_rep, rob, files, tta, located, detected)


def evaluate_checkpoint(checkpoint: Path | str, out_dir: Path | str | None = None, split: str = "test",
                        data_root: str | None = None, tta: int = 2, gradcam: int = 16, robustness: bool = True,
                        device: str = "cpu", progress: bool = True) -> EvaluationReport:
    """Load a trainer checkpoint, prepare its data (or ``data_root`` in the same layout) and evaluate one split."""
    from fer_ros_training.train_config import config_from_dict
    from fer_ros_training.trainer import load_checkpoint, load_data, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    raw = dict(ckpt["config"])
    if data_root:
        raw["data"] = {**raw["data"], "root": data_root, "synthetic": None}
    model, _ = model_from_checkpoint(ckpt, device)
    cfg = config_from_dict(raw)
    data = load_data(cfg, progress=progress)
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"eval_{split}"
    report = evaluate_model(model, cfg, data.splits[split], out, device, tta, gradcam, robustness)
    data.bad.write_csv(out / "bad_input.csv")
    return report
