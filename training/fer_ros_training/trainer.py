"""Train a network from a ``TrainConfig``: seeded, resumable, logged, on CPU, one GPU or several through torchrun.

A run folder holds ``config.yaml`` (the config as run), ``metrics.csv`` and TensorBoard events (``tb/``),
``last.pt`` (every epoch) and ``best.pt`` (best monitored validation metric), ``bad_input.csv`` and
``summary.yaml`` (best epoch, test-split metrics of the best model). A checkpoint is a dict::

    {"model", "optimizer", "scheduler", "epoch", "config", "best_metric", "best_epoch", "monitor",
     "bad_epochs", "history", "card", "torch_version"}

where ``epoch`` counts completed epochs and ``card`` holds the model-card fields training decides (input, crop,
labels, architecture, temporal window) for the export.

Reproducibility: the model is initialised after ``torch.manual_seed(seed)``; every epoch reseeds torch
(``seed``, epoch) for dropout, shuffles with its own generator and augments each sample with a generator seeded by
(seed, epoch, index). A run resumed from ``last.pt`` therefore ends with the same weights as an uninterrupted one
(``test/test_training.py`` checks it).

Loss: cross-entropy, or the network's own ``training_loss`` when it has one (FERAtt's ``lambda * L_att + CE``, whose
training split is ``augment_background.BackgroundFaceDataset`` configured by ``background:``); see ``loops``.

Schedulers of the seeds: ``plateau`` (RMN: LR / 10 after 2 epochs without gain), ``multistep`` (FAN: 0.1 -> 0.02 at
epoch 250), ``step``, ``cosine``; early stopping after ``early_stopping`` epochs without gain (RMN: 8).

Distributed: under ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` in the environment) the trainer joins the
process group (NCCL on CUDA, gloo on CPU), shards the training set with ``DistributedSampler`` and wraps the model in
``DistributedDataParallel``; rank 0 alone validates, logs and writes checkpoints.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from fer_ros.errors import ConfigError, ModelLoadError
from fer_ros_training.data.bad_input import BadInputLog
from fer_ros_training.data.datasets import ClipDataset, FaceImageDataset
from fer_ros_training.data.face_cache import CropRecipe
from fer_ros_training.data.prepare import PreparedData, PreparedSplit, prepare_data
from fer_ros_training.data.transforms import AugmentConfig, eval_preset, train_preset
from fer_ros_training.loops import (LossTerms, NetworkLoss, cross_entropy, predict, train_one_epoch, unwrap,
                                   uses_network_loss)
from fer_ros_training.metrics import classification_report
from fer_ros_training.train_config import TrainConfig, config_from_dict

LOG = logging.getLogger("fer_ros_training.trainer")
SEED_STRIDE = 1_000_003  # a prime spacing the per-epoch seeds so (seed, epoch) pairs never collide
CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)  # metrics of the best model on the test split


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: says which epochs are saved and the command that continues the run."""

    def __init__(self, run_dir: Path, completed: int, epochs: int, last: Path | None) -> None:
        self.run_dir, self.completed, self.epochs, self.last = run_dir, completed, epochs, last
        if last is None:
            text = (f"stopped during epoch {completed + 1} of {epochs}, before any epoch was saved in {run_dir}; "
                    f"start the run again")
        else:
            saved = "epoch 1 is" if completed == 1 else f"epochs 1-{completed} are"
            text = (f"stopped during epoch {completed + 1} of {epochs}; {saved} saved in {last}. "
                    f"Continue with: fer-ros train --resume {last}")
        super().__init__(text)


# --- environment ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or "LOCAL_RANK" in os.environ

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Rank and world size from the environment torchrun sets (single process otherwise)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def select_device(name: str, dist: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' asked for, but torch sees no CUDA device; use device: cpu")
        if dist.enabled and name == "cuda":
            name = f"cuda:{dist.local_rank}"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def check_distributed_support(cfg: TrainConfig, dist: DistInfo) -> None:
    if dist.enabled and cfg.landmark_loss_weight > 0:
        raise ConfigError("landmark_loss_weight > 0 is not supported under torchrun (the landmark head bypasses "
                          "DistributedDataParallel's forward); train it in one process")


# --- building ---------------------------------------------------------------------------------------------------------
def build_model(cfg: TrainConfig) -> nn.Module:
    from fer_ros_training.networks import build_network

    return build_network(cfg.network.name, num_classes=len(cfg.labels), **cfg.network.kwargs)


def network_kind(cfg: TrainConfig) -> str:
    from fer_ros_training.networks import network_spec

    return network_spec(cfg.network.name).kind


def uses_background_target(cfg: TrainConfig) -> bool:
    """Whether the network trains on faces pasted on gray backgrounds with the clean face as target (FERAtt)."""
    from fer_ros_training.networks import network_spec

    return network_spec(cfg.network.name).background_target


def fusion_inputs(crop: np.ndarray, face: Any) -> dict[str, torch.Tensor]:
    """The fusion network's landmark and HOG inputs, computed from the (augmented) gray crop by our preprocessing."""
    from fer_ros_training import features

    return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in features.fusion_inputs(crop, face).items()}


def make_dataset(cfg: TrainConfig, split: PreparedSplit, train: bool) -> FaceImageDataset | ClipDataset:
    """The torch dataset of one prepared split: train preset (augmented) or eval preset (the runtime's).

    FERAtt's training split pastes each face on a random gray background and carries the clean face, the target of
    its attention loss (``cfg.background``); its validation and test splits are the plain eval preset's, since the
    robot sees real backgrounds.
    """
    transform = train_preset(cfg.input, AugmentConfig.from_dict(cfg.data.augment)) if train else eval_preset(cfg.input)
    kind = network_kind(cfg)
    if kind == "clip":
        return ClipDataset(split.faces, split.labels, transform, cfg.data.segments, train=train, seed=cfg.seed)
    if train and uses_background_target(cfg):
        from fer_ros_training.augment_background import BackgroundConfig, BackgroundFaceDataset

        dataset = BackgroundFaceDataset(split.faces, split.labels, transform,
                                        BackgroundConfig.from_dict(cfg.background), train=True, seed=cfg.seed)
        if dataset.faces_without_landmarks:
            LOG.warning("%d of %d training faces have no landmarks: they keep their own background and an all-face "
                        "attention target", dataset.faces_without_landmarks, len(dataset))
        return dataset
    extra = fusion_inputs if kind == "multimodal" else None
    return FaceImageDataset(split.faces, split.labels, transform, train=train, seed=cfg.seed, extra_inputs=extra)


def load_data(cfg: TrainConfig, bad: BadInputLog | None = None, progress: bool = True) -> PreparedData:
    """Prepare the config's data, checking that its layout suits the network (clips for FAN, images otherwise)."""
    kind = network_kind(cfg)
    if (kind == "clip") != (cfg.data.format == "clips"):
        raise ConfigError(f"network '{cfg.network.name}' takes {'clips' if kind == 'clip' else 'images'} but "
                          f"data.format is '{cfg.data.format}'")
    detector = None
    if cfg.data.detector:
        from fer_ros.faces.detector import DetectorConfig

        detector = DetectorConfig(**{"static_images": True, **cfg.data.detector}).validate()
    recipe = CropRecipe.from_specs(cfg.input, cfg.crop)
    return prepare_data(cfg.data, cfg.labels, recipe, cfg.seed, bad, detector, progress=progress)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"network '{cfg.network.name}' has no trainable parameter (frozen everything?)")
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    s = cfg.scheduler
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=cfg.monitor_mode, factor=s.factor,
                                                          patience=s.patience, min_lr=s.min_lr)
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    if s.name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(s.milestones), gamma=s.gamma)
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=s.min_lr)
    return None


def _loader(dataset, batch_size: int, cfg: TrainConfig, order: list[int] | None = None, sampler=None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler if sampler is not None else order,
                      num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available(), drop_last=False)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * SEED_STRIDE + epoch)
    return torch.randperm(n, generator=g).tolist()


def improved(value: float, best: float, mode: str) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


# --- logging ----------------------------------------------------------------------------------------------------------
class RunLog:
    """metrics.csv and TensorBoard scalars of one run (rank 0 only)."""

    def __init__(self, run_dir: Path, history: list[dict[str, float]]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.csv_path = run_dir / "metrics.csv"
        self.rows = list(history)
        self._rewrite()
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=len(history) + 1 if history else None)

    def _rewrite(self) -> None:
        if not self.rows:
            return
        keys = list(self.rows[0])
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)

    def add(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        self._rewrite()
        for k, v in row.items():
            if k != "epoch":
                self.tb.add_scalar(k.replace("_", "/", 1), v, int(row["epoch"]))
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


def new_run_dir(base: Path | str, name: str) -> Path:
    """``base/name``, or ``base/name-2``, ``-3``... when taken: never overwrite a previous run."""
    base = Path(base)
    candidate, n = base / name, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{name}-{n}"
    return candidate


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """A checkpoint written by the trainer (``weights_only``: plain tensors, numbers and strings only)."""
    from fer_ros_training.export.checkpoints import read_checkpoint

    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ModelLoadError(f"{path} is not a checkpoint written by fer-ros train (it has no 'model' and 'config'); "
                             f"give best.pt or last.pt of a run folder")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | Path | str, device: str | torch.device = "cpu"
                          ) -> tuple[nn.Module, TrainConfig]:
    """The trained network (eval mode) and its config, e.g. for evaluation or export."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    cfg = config_from_dict(ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), cfg


# --- the run --------------------------------------------------------------------------------------------------------
def evaluate_split(model: nn.Module, dataset, cfg: TrainConfig, device: torch.device, progress: bool,
                   desc: str) -> dict[str, float]:
    loader = _loader(dataset, cfg.eval_batch_size or 2 * cfg.batch_size, cfg)
    logits, labels = predict(unwrap(model), loader, device, desc=desc, progress=progress)
    if len(labels) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "macro_f1": float("nan")}
    rep = classification_report(labels, logits.argmax(1), len(cfg.labels))
    return {"loss": cross_entropy(logits, labels), "accuracy": rep.accuracy, "macro_f1": rep.macro_f1}


def check_resume(done: int, epochs: int, stop_after: int | None, resume: Path | str) -> None:
    """Refuse a resume that would train nothing (ConfigError saying why), before any data is prepared."""
    if done >= epochs:
        raise ConfigError(f"{resume} has completed all {epochs} epochs of its run: nothing to resume")
    if stop_after is not None and stop_after <= done:
        raise ConfigError(f"--epochs-now {stop_after} counts the run's completed epochs, and {resume} has completed "
                          f"{done} of {epochs}: give a number above {done}, or leave it out to train to epoch {epochs}")


def train(cfg: TrainConfig, run_dir: Path | str | None = None, resume: Path | str | None = None,
          stop_after: int | None = None, progress: bool = True, data: PreparedData | None = None,
          runs_root: Path | str = "runs") -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (default ``runs/<name>``, never overwriting one); see the module docstring.

    ``resume``: a ``last.pt`` to continue from (its config is used, and its run folder unless ``run_dir`` is given).
    ``stop_after``: end after this many completed epochs, as an interrupted run would (for tests and time limits).
    ``data``: already prepared data (sweeps prepare once and train many times).
    """
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        cfg = config_from_dict(ckpt["config"])
        run_dir = Path(run_dir) if run_dir is not None else Path(resume).parent
        check_resume(int(ckpt["epoch"]), cfg.epochs, stop_after, resume)
    dist = dist_info()
    check_distributed_support(cfg, dist)
    if dist.enabled and not torch.distributed.is_initialized():
        backend = "nccl" if cfg.device != "cpu" and torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    device = select_device(cfg.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(runs_root, cfg.name)
    made_here = not run_dir.exists()
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
    logging.getLogger("fer_ros_training").info("run folder: %s", run_dir)

    try:
        bad = BadInputLog(cfg.data.on_bad_input)
        data = data or load_data(cfg, bad, progress and dist.is_main)
        bad = data.bad
        train_ds = make_dataset(cfg, data.splits["train"], train=True)
        val_ds = make_dataset(cfg, data.splits["val"], train=False)
        if len(train_ds) == 0:
            raise ConfigError(f"no training items in {cfg.data.root} ({bad.summary()})")
    except BaseException:
        # nothing was trained: a folder holding only the config would block the corrected rerun (--out refuses
        # a non-empty folder), so the folder this call made goes again
        if made_here and dist.is_main:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if len(val_ds) == 0:
        LOG.warning("no validation items: the best checkpoint is chosen on training accuracy")

    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer)
    start_epoch, best, best_epoch, bad_epochs, history = 0, float("nan"), 0, 0, []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, best, best_epoch = int(ckpt["epoch"]), float(ckpt["best_metric"]), int(ckpt["best_epoch"])
        bad_epochs, history = int(ckpt["bad_epochs"]), list(ckpt["history"])
    net = model
    terms = LossTerms(cfg.label_smoothing, cfg.landmark_loss_weight)
    if dist.enabled:  # a network with its own loss is wrapped with it, so DDP syncs the forward that makes the loss
        wrapped = NetworkLoss(model) if uses_network_loss(model, terms) else model
        model = nn.parallel.DistributedDataParallel(wrapped, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = None
    if dist.enabled:
        sampler = torch.utils.data.distributed.DistributedSampler(train_ds, shuffle=True, seed=cfg.seed)

    log = RunLog(run_dir, history) if dist.is_main else None
    monitor_key = cfg.monitor if len(val_ds) else "train_accuracy"
    mode = cfg.monitor_mode if len(val_ds) else "max"
    stopped_early = False
    last_path, best_path = run_dir / CHECKPOINT_LAST, run_dir / CHECKPOINT_BEST
    completed = start_epoch
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            if stop_after is not None and epoch > stop_after:
                break
            t0 = time.perf_counter()
            torch.manual_seed(cfg.seed * SEED_STRIDE + epoch)
            train_ds.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
                loader = _loader(train_ds, cfg.batch_size, cfg, sampler=sampler)
            else:
                loader = _loader(train_ds, cfg.batch_size, cfg, order=epoch_order(len(train_ds), cfg.seed, epoch))
            lr = optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(model, loader, optimizer, device, terms, cfg.grad_clip,
                                    desc=f"epoch {epoch}/{cfg.epochs}", progress=progress and dist.is_main)
            row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_accuracy": stats.accuracy}
            row.update({f"train_{name}_loss": value for name, value in stats.terms.items()})
            if dist.is_main:
                val = evaluate_split(net, val_ds, cfg, device, progress, "val") if len(val_ds) else {}
                row.update({f"val_{k}": v for k, v in val.items()})
            row["seconds"] = time.perf_counter() - t0
            metric = _broadcast(float(row.get(monitor_key, float("nan"))), dist, device)
            if scheduler is not None:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(metric)
                else:
                    scheduler.step()
            is_best = improved(metric, best, mode)
            if is_best:
                best, best_epoch, bad_epochs = metric, epoch, 0
            else:
                bad_epochs += 1
            if dist.is_main:
                log.add(row)
                LOG.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
                state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": epoch,
                         "config": cfg.to_dict(), "best_metric": best, "best_epoch": best_epoch,
                         "monitor": monitor_key, "bad_epochs": bad_epochs, "history": log.rows,
                         "card": cfg.card_dict(net), "torch_version": str(torch.__version__)}
                save_checkpoint(last_path, state)
                completed = epoch  # saved: a Ctrl-C while best.pt is written must say so (and give the resume)
                if is_best:
                    save_checkpoint(best_path, state)
            completed = epoch
            if cfg.early_stopping and bad_epochs >= cfg.early_stopping:
                LOG.info("early stop: %s has not improved for %d epochs (best %.4g at epoch %d)", monitor_key,
                         bad_epochs, best, best_epoch)
                stopped_early = True
                break
    except KeyboardInterrupt:
        raise TrainingInterrupted(run_dir, completed, cfg.epochs, last_path if completed > start_epoch or ckpt
                                  else None) from None
    finally:
        if log is not None:
            log.close()
    result = TrainResult(run_dir, best_path, last_path, best, best_epoch, completed, stopped_early,
                         list(log.rows) if log else [])
    if dist.is_main:
        bad.write_csv(run_dir / "bad_input.csv")
        test_split = data.splits.get("test")
        if test_split is not None and test_split.labels and best_path.is_file():
            best_model, _ = model_from_checkpoint(load_checkpoint(best_path), device)
            result.test = evaluate_split(best_model, make_dataset(cfg, test_split, train=False), cfg, device,
                                         progress, "test")
        summary = {"name": cfg.name, "network": cfg.network.name, "best_epoch": best_epoch,
                   f"best_{monitor_key}": best, "epochs_run": completed, "stopped_early": stopped_early,
                   "test": result.test, "items": data.counts(), "bad_input": bad.counts()}
        if hasattr(train_ds, "faces_without_landmarks"):
            summary["background"] = {"faces_without_landmarks": train_ds.faces_without_landmarks}
        (run_dir / "summary.yaml").write_text(yaml.safe_dump(_plain(summary), sort_keys=False))
    if dist.enabled:
        torch.distributed.barrier()
    return result


def _broadcast(value: float, dist: DistInfo, device: torch.device) -> float:
    """Rank 0's validation metric, sent to every rank so schedulers and early stopping agree."""
    if not dist.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(t, src=0)
    return float(t.item())


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x
