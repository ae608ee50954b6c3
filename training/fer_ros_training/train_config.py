"""A training run's YAML config, validated into typed sections; saved with every run and inside every checkpoint.

Top-level keys (see ``configs/*.yaml`` for each seed's recipe)::

    name: rmn_fer2013
    seed: 0
    network: {name: rmn, kwargs: {}}          # fer_ros_training.networks.build_network(name, num_classes, **kwargs)
    labels: [angry, disgust, fear, happy, sad, surprise, neutral]
    input: {height: 224, width: 224, color: rgb, mean: [...], std: [...]}   # as in the model card
    crop: {scale: 1.0, rotate: true}                                         # as in the model card
    data: {...}                                # fer_ros_training.data.config.DataConfig
    optimizer: {name: sgd, lr: 1.0e-4, momentum: 0.9, weight_decay: 1.0e-3, nesterov: false}
    scheduler: {name: plateau, factor: 0.1, patience: 2}   # | step | multistep | cosine | none
    early_stopping: {patience: 8}              # epochs without gain of the monitored metric; 0 = off
    monitor: val_accuracy                      # val_accuracy (max) | val_loss (min) | val_macro_f1 (max)
    epochs: 50
    batch_size: 48
    device: auto                               # auto | cpu | cuda | cuda:1
    threads: 0                                 # torch CPU threads; 0 = leave torch's default
    num_workers: 0
    label_smoothing: 0.0
    landmark_loss_weight: 0.0                  # > 0: train the baselines' landmark-regression head too
    grad_clip: 0.0
    background: {probability: 1.0, gray: [0, 255], texture: 40}   # FERAtt only: gray backgrounds (optional)
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS, CropSpec, InputSpec, card_from_dict
from fer_ros_training.config_keys import checked_keys, checked_value, section_fields
from fer_ros_training.data.config import DataConfig

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "plateau", "step", "multistep", "cosine")
MONITORS = {"val_accuracy": "max", "val_macro_f1": "max", "val_loss": "min"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the torchvision ImageNet statistics, for networks fine-tuned from ImageNet
IMAGENET_STD = (0.229, 0.224, 0.225)


def _from_dict(cls, data: dict[str, Any] | None, section: str):
    return cls(**section_fields(cls, data, section))


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class SchedulerConfig:
    name: str = "none"
    factor: float = 0.1  # plateau: LR multiplier when the monitored metric stalls
    patience: int = 2  # plateau: epochs without gain before reducing
    step_size: int = 30  # step: epochs between reductions
    gamma: float = 0.1  # step / multistep: LR multiplier
    milestones: list[int] = field(default_factory=list)  # multistep: epochs at which the LR is multiplied by gamma
    min_lr: float = 0.0


@dataclass
class NetworkConfig:
    name: str = "rmn_tiny"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    name: str
    network: NetworkConfig
    data: DataConfig
    input: InputSpec
    crop: CropSpec
    labels: tuple[str, ...] = FER2013_LABELS
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    early_stopping: int = 0  # patience in epochs; 0 = off
    monitor: str = "val_accuracy"
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 0  # 0 = 2 * batch_size
    device: str = "auto"
    threads: int = 0
    num_workers: int = 0
    label_smoothing: float = 0.0
    landmark_loss_weight: float = 0.0
    grad_clip: float = 0.0
    background: dict[str, Any] = field(default_factory=dict)  # augment_background.BackgroundConfig fields (FERAtt)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the YAML as given (saved with the run)

    @property
    def monitor_mode(self) -> str:
        return MONITORS[self.monitor]

    def card_dict(self, model: Any = None) -> dict[str, Any]:
        """The model-card fields training decides (export adds id, format and files).

        Temporal rule (one for the trainer, the export and the node): ``temporal.window`` is what the node
        aggregates at run time, the FAN aggregator's capacity (``network.kwargs.window``, default ``FAN_WINDOW``),
        and ``fer_ros.temporal`` keeps that many embeddings per track. The K segments sampled per clip in training
        (``data.segments``) are a training detail, recorded as ``training.segments``. ``model``, when given, adds
        the embedding size and must agree on the window.
        """
        return {
            "architecture": self.network.name,
            "input": {"height": self.input.height, "width": self.input.width, "color": self.input.color,
                      "mean": list(self.input.mean), "std": list(self.input.std)},
            "crop": asdict(self.crop),
            "labels": list(self.labels),
            "output": "logits",
            "temporal": self.temporal_fields(model),
            "network_kwargs": copy.deepcopy(self.network.kwargs),
            **({"training": {"segments": int(self.data.segments)}} if self.is_clip_network else {}),
        }

    @property
    def is_clip_network(self) -> bool:
        """Whether the network takes clips (FAN): trained on K segments, served over a window of frames."""
        from fer_ros_training.networks import network_spec

        return network_spec(self.network.name).kind == "clip"

    def temporal_fields(self, model: Any = None) -> dict[str, Any]:
        """The card's ``temporal`` section (see :meth:`card_dict`): ``{"window": 1}`` for single-frame networks."""
        if not self.is_clip_network:
            return {"window": 1}
        from fer_ros_training.networks.fan import FAN_WINDOW

        window = int(self.network.kwargs.get("window", FAN_WINDOW))
        if model is None:
            return {"window": window}
        if int(model.window) != window:
            raise ConfigError(f"network {self.network.name} aggregates {model.window} frames but its config says "
                              f"{window}: build it from this config")
        return {"window": window, "embedding_dim": int(model.embedder.embedding_dim)}

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def default_input(network: str) -> dict[str, Any]:
    """Input spec a network eats by default: its registry size and channels; ImageNet statistics for RGB."""
    from fer_ros_training.networks import network_spec

    spec = network_spec(network)
    if spec.channels == 1:
        return {"height": spec.input_size, "width": spec.input_size, "color": "gray", "mean": [0.5], "std": [0.5]}
    return {"height": spec.input_size, "width": spec.input_size, "color": "rgb", "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD)}


def config_from_dict(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Validate a config mapping; ``overrides`` are dotted keys (``optimizer.lr``) applied first."""
    known = {f.name for f in fields(TrainConfig)} - {"raw"}
    raw = copy.deepcopy(checked_keys(raw, known, "config"))
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    overrides = overrides or {}
    if "data.root" in overrides and not any(k.startswith("data.synthetic") for k in overrides):
        # a root given on the command line is the user's data: the config's generated set is not asked for there
        # (a mistyped path must be an error, not a new synthetic data set)
        raw["data"]["synthetic"] = None
    checked_keys(raw, known, "config")  # an override may name an unknown section too
    if "name" not in raw:
        raise ConfigError("config needs a 'name' (the run folder is named after it)")
    network = _from_dict(NetworkConfig, raw.get("network"), "network")
    labels = tuple(raw.get("labels") or FER2013_LABELS)
    raw["input"] = raw.get("input") or default_input(network.name)  # saved resolved: the run stays reproducible
    card = card_from_dict({"id": raw["name"], "files": {"model": "-"}, "labels": list(labels),
                           "input": raw["input"], "crop": raw.get("crop") or {}})
    optimizer = _from_dict(OptimizerConfig, raw.get("optimizer"), "optimizer")
    scheduler = _from_dict(SchedulerConfig, raw.get("scheduler"), "scheduler")
    if optimizer.name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name '{optimizer.name}' is not one of {OPTIMIZERS}")
    if scheduler.name not in SCHEDULERS:
        raise ConfigError(f"scheduler.name '{scheduler.name}' is not one of {SCHEDULERS}")
    optimizer.betas = tuple(checked_value(b, "float", "optimizer.betas") for b in optimizer.betas)
    rest = {k: raw[k] for k in ("seed", "epochs", "batch_size", "eval_batch_size", "device", "threads", "num_workers",
                                "label_smoothing", "landmark_loss_weight", "grad_clip", "monitor", "early_stopping",
                                "background")
            if k in raw}
    if isinstance(rest.get("early_stopping"), dict):
        rest["early_stopping"] = rest["early_stopping"].get("patience", 0)
    rest = section_fields(TrainConfig, rest, "config")
    cfg = TrainConfig(name=str(raw["name"]), network=network, data=DataConfig.from_dict(raw.get("data")),
                      input=card.input, crop=card.crop, labels=labels, optimizer=optimizer, scheduler=scheduler,
                      raw=raw, **rest)
    if cfg.monitor not in MONITORS:
        raise ConfigError(f"monitor '{cfg.monitor}' is not one of {sorted(MONITORS)}")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError("epochs and batch_size must be >= 1")
    if "background" in raw:
        _check_background(cfg)
    return cfg


def _check_background(cfg: TrainConfig) -> None:
    """A ``background:`` section is valid and belongs to a network trained with the gray-background target."""
    from fer_ros_training.augment_background import BackgroundConfig
    from fer_ros_training.networks import NETWORK_SPECS, network_spec

    BackgroundConfig.from_dict(cfg.background)
    if not network_spec(cfg.network.name).background_target:
        users = sorted(name for name, spec in NETWORK_SPECS.items() if spec.background_target)
        raise ConfigError(f"background: is the gray-background augmentation of {', '.join(users)}; network "
                          f"'{cfg.network.name}' does not use it: remove the section")


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config file (``configs/<name>.yaml`` may be given by name alone)."""
    path = resolve_config_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return config_from_dict(raw, overrides)


def resolve_config_path(path: Path | str) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    bundled = Path(__file__).parent / "configs" / f"{p.stem}.yaml"
    if bundled.is_file():
        return bundled
    raise ConfigError(f"no config file {p} (bundled configs: "
                      f"{', '.join(sorted(c.stem for c in (Path(__file__).parent / 'configs').glob('*.yaml')))})")


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw['a']['b'] = value`` for ``dotted = 'a.b'``, creating sections as needed."""
    keys = dotted.split(".")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: '{k}' is not a section")
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["optimizer.lr=0.01", "epochs=3"]`` -> {dotted key: YAML-parsed value}."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{pair}' must look like section.key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out
