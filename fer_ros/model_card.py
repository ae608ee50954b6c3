"""Model cards: the YAML file beside every model file that says how to feed it and read its output.

Training, export, the inference backends and the node all read the card; nothing about a model's input size, colour,
normalisation, crop, label order or temporal window is hard-coded anywhere else. A card named ``model.yaml`` sits in
the model's folder next to the files it lists.

Example (the default model)::

    id: mini_xception_fer2013
    architecture: mini_xception
    format: onnx                      # onnx | tensorrt | torch
    files: {model: model.onnx}        # FAN: {embedder: ..., aggregator: ...}
    input: {height: 64, width: 64, color: gray, mean: [0.5], std: [0.5]}   # x = (pixel/255 - mean) / std
    crop: {scale: 1.0, rotate: true}  # square box around the face, side = max(w, h) * scale, eyes levelled
    output: probabilities             # probabilities | logits (softmax applied by the backend)
    labels: [angry, disgust, fear, happy, sad, surprise, neutral]
    temporal: {window: 1}             # > 1: a FAN whose aggregator takes up to `window` frame embeddings
    valence_arousal: false
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fer_ros.errors import ModelCardError

FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CARD_FILENAME = "model.yaml"
COLORS = ("gray", "rgb", "bgr")
FORMATS = ("onnx", "tensorrt", "torch")
OUTPUTS = ("probabilities", "logits")
MAX_INPUT_SIDE = 1024  # a larger face crop is certainly a card typo (pixels, not a scale)


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    color: str  # gray | rgb | bgr
    mean: tuple[float, ...]  # per channel, on pixel/255
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


@dataclass(frozen=True)
class CropSpec:
    scale: float = 1.0  # side of the square crop = max(box w, box h) * scale
    rotate: bool = True  # level the eyes with a similarity transform from the landmarks


@dataclass(frozen=True)
class ModelCard:
    id: str
    architecture: str
    format: str
    files: dict[str, str]
    input: InputSpec
    crop: CropSpec
    labels: tuple[str, ...]
    output: str = "probabilities"
    window: int = 1
    embedding_dim: int = 0  # FAN: size of one frame embedding
    valence_arousal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # source, licence, metrics, engine tags...
    directory: Path = Path(".")

    @property
    def is_temporal(self) -> bool:
        return self.window > 1

    def path(self, key: str = "model") -> Path:
        """Absolute path of one of the card's files (``model``, or ``embedder``/``aggregator`` for FAN)."""
        if key not in self.files:
            raise ModelCardError(f"model card {self.directory / CARD_FILENAME} lists no '{key}' file "
                                 f"(it has: {', '.join(self.files) or 'none'})")
        return self.directory / self.files[key]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "architecture": self.architecture,
            "format": self.format,
            "files": dict(self.files),
            "input": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.input).items()},
            "crop": asdict(self.crop),
            "output": self.output,
            "labels": list(self.labels),
            "temporal": {"window": self.window, "embedding_dim": self.embedding_dim},
            "valence_arousal": self.valence_arousal,
        }
        d.update(self.extra)
        return d

    def save(self, directory: Path | str | None = None) -> Path:
        """Write the card as ``model.yaml`` into ``directory`` (default: its own)."""
        target = Path(directory or self.directory) / CARD_FILENAME
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(target)
        return target


def _require(d: dict, key: str, where: Path) -> Any:
    if key not in d:
        raise ModelCardError(f"model card {where} has no '{key}' field; see fer_ros/model_card.py for the format")
    return d[key]


def _wrong(where: Path, field_name: str, value: Any, wanted: str, example: str) -> ModelCardError:
    return ModelCardError(f"model card {where}: {field_name} is {value!r}, it must be {wanted} (write it like "
                          f"{example})")


def _section(d: dict, key: str, where: Path, example: str, required: bool = False) -> dict:
    """A nested mapping of the card (``input``, ``crop``, ``temporal``...); absent or empty: {} unless required."""
    value = _require(d, key, where) if required else d.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _wrong(where, key, value, "a mapping", example)
    return value


def _int(d: dict, key: str, where: Path, name: str, default: Any = None) -> int:
    value = _require(d, key, where) if default is None else d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(where, name, value, "a whole number", f"{name.split('.')[-1]}: {default or 64}")
    return value


def _float(d: dict, key: str, where: Path, name: str, default: float) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(where, name, value, "a number", f"{name.split('.')[-1]}: {default}")
    return float(value)


def _floats(d: dict, key: str, where: Path, name: str, default: list[float]) -> tuple[float, ...]:
    value = d.get(key, default)
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise _wrong(where, name, value, "a list of numbers, one per channel", f"{name.split('.')[-1]}: {default}")
    return tuple(float(v) for v in value)


def card_from_dict(data: dict[str, Any], directory: Path | str = ".", where: Path | None = None) -> ModelCard:
    """Validate a card's content; ``where`` names the file in error messages."""
    where = where or Path(directory) / CARD_FILENAME
    if not isinstance(data, dict):
        raise ModelCardError(f"model card {where} is not a YAML mapping")
    inp = _section(data, "input", where, "input: {height: 64, width: 64, color: gray, mean: [0.5], std: [0.5]}",
                   required=True)
    color = str(inp.get("color", "rgb")).lower()
    if color not in COLORS:
        raise ModelCardError(f"model card {where}: input.color '{color}' is not one of {COLORS}")
    channels = 1 if color == "gray" else 3
    mean = _floats(inp, "mean", where, "input.mean", [0.0] * channels)
    std = _floats(inp, "std", where, "input.std", [1.0] * channels)
    if len(mean) != channels or len(std) != channels:
        raise ModelCardError(f"model card {where}: input.mean and input.std need {channels} values for {color}")
    if any(s <= 0 for s in std):
        raise ModelCardError(f"model card {where}: input.std must be > 0")
    height, width = _int(inp, "height", where, "input.height"), _int(inp, "width", where, "input.width")
    if not (8 <= height <= MAX_INPUT_SIDE and 8 <= width <= MAX_INPUT_SIDE):
        raise ModelCardError(f"model card {where}: input size {height}x{width} is outside 8..{MAX_INPUT_SIDE}")
    labels = _require(data, "labels", where)
    if not isinstance(labels, list):
        raise _wrong(where, "labels", labels, "a list of names in output order", "labels: [angry, happy, neutral]")
    labels = tuple(str(v) for v in labels)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ModelCardError(f"model card {where}: labels must be at least two distinct names, got {labels}")
    fmt = str(data.get("format", "onnx"))
    if fmt not in FORMATS:
        raise ModelCardError(f"model card {where}: format '{fmt}' is not one of {FORMATS}")
    output = str(data.get("output", "probabilities"))
    if output not in OUTPUTS:
        raise ModelCardError(f"model card {where}: output '{output}' is not one of {OUTPUTS}")
    files = data.get("files") or {}
    if not isinstance(files, dict) or not files:
        raise ModelCardError(f"model card {where}: 'files' must map roles (model, or embedder+aggregator) to files")
    temporal = _section(data, "temporal", where, "temporal: {window: 1}")
    window = _int(temporal, "window", where, "temporal.window", 1)
    if window < 1:
        raise ModelCardError(f"model card {where}: temporal.window must be >= 1")
    if window > 1 and not {"embedder", "aggregator"} <= set(files):
        raise ModelCardError(f"model card {where}: a temporal model (window {window}) needs 'embedder' and "
                             f"'aggregator' files")
    crop = _section(data, "crop", where, "crop: {scale: 1.0, rotate: true}")
    scale = _float(crop, "scale", where, "crop.scale", 1.0)
    if not 0.5 <= scale <= 4.0:
        raise ModelCardError(f"model card {where}: crop.scale {scale} is outside 0.5..4")
    known = {"id", "architecture", "format", "files", "input", "crop", "output", "labels", "temporal",
             "valence_arousal"}
    return ModelCard(
        id=str(_require(data, "id", where)),
        architecture=str(data.get("architecture", "unknown")),
        format=fmt,
        files={str(k): str(v) for k, v in files.items()},
        input=InputSpec(height=height, width=width, color=color, mean=mean, std=std),
        crop=CropSpec(scale=scale, rotate=bool(crop.get("rotate", True))),
        labels=labels,
        output=output,
        window=window,
        embedding_dim=_int(temporal, "embedding_dim", where, "temporal.embedding_dim", 0),
        valence_arousal=bool(data.get("valence_arousal", False)),
        extra={k: v for k, v in data.items() if k not in known},
        directory=Path(directory),
    )


def load_card(path: Path | str) -> ModelCard:
    """Load a card from its YAML file, or from a model folder, or from a model file with the card beside it."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILENAME
    elif path.suffix not in (".yaml", ".yml"):
        path = path.parent / CARD_FILENAME
    if not path.is_file():
        raise ModelCardError(f"no model card at {path}: every model file needs a {CARD_FILENAME} beside it "
                             f"(see models/README.md)")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"model card {path} is not valid YAML: {exc}") from exc
    card = card_from_dict(data, path.parent, path)
    for role in card.files:
        if not card.path(role).is_file():
            raise ModelCardError(f"model card {path} lists {role} file '{card.files[role]}', which does not exist")
    return card


def file_sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (model cards record the hash of their source checkpoint)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
