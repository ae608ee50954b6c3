"""From a ``data:`` config to aligned faces per split: list the items, locate and align each face once, report.

``prepare_data`` is what ``train`` and ``evaluate`` call before building torch datasets. It generates the synthetic
data set first when the config asks for one (a ``data.synthetic`` section) and its root does not exist yet (CI
configs; a ``data.root`` given with ``--set`` drops the config's section, so a mistyped path is an error; one generated
with other settings is replaced, see ``ensure_synthetic``), reads the split, aligns
everything through the ``FaceCache`` (with a progress bar), leaves out and reports what has no face, and checks that
every label has training items (an empty class is reported).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fer_ros.errors import ConfigError
from fer_ros_training.data.annotations import read_faces
from fer_ros_training.data.bad_input import EMPTY_CLASS, BadInputLog
from fer_ros_training.data.clips import load_clip_folders
from fer_ros_training.data.config import DataConfig
from fer_ros_training.data.face_cache import AlignedFace, CacheStats, CropRecipe, FaceCache
from fer_ros_training.data.fer2013 import load_fer2013
from fer_ros_training.data.image_folders import load_image_folders
from fer_ros_training.data.items import SPLITS, LabelResolver

LOG = logging.getLogger("fer_ros_training.data")


@dataclass
class PreparedSplit:
    """Aligned faces of one split: one ``AlignedFace`` per image, or a list of them per clip."""

    faces: list[Any] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


@dataclass
class PreparedData:
    kind: str  # image | clip
    labels: tuple[str, ...]
    splits: dict[str, PreparedSplit]
    stats: CacheStats
    bad: BadInputLog

    def counts(self) -> dict[str, int]:
        return {name: len(s.labels) for name, s in self.splits.items()}


SYNTHETIC_MARKER = "synthetic.yaml"  # beside a generated data set: what generated it (the data set's recipe)
SYNTHETIC_VERSION = 1  # bump when the generator draws different images for the same settings


def synthetic_recipe(cfg: DataConfig, kind: str, seed: int) -> dict[str, Any]:
    """Everything a generated data set depends on: generator version, layout, split and the data.synthetic settings
    (with the seed they default to)."""
    return {"version": SYNTHETIC_VERSION, "format": cfg.format, "kind": kind,
            "split": {k: float(v) for k, v in sorted(cfg.split.items())},
            "synthetic": {"seed": int(seed), **dict(sorted((cfg.synthetic or {}).items()))}}


def _marker(cfg: DataConfig) -> Path:
    root = cfg.root_path
    return root.parent / f"{root.name}.{SYNTHETIC_MARKER}" if cfg.format == "fer2013" else root / SYNTHETIC_MARKER


def ensure_synthetic(cfg: DataConfig, kind: str, seed: int) -> None:
    """Generate the data set ``data.synthetic`` asks for, or reuse the one at ``data.root`` when it was generated
    with exactly these settings (its ``synthetic.yaml``). One generated with other settings (another per_class, an
    older generator) is replaced: reusing it made runs of the same config differ between machines. A path that exists
    without the marker (written before markers, or by hand) is not ours to replace: it is used, with a warning."""
    import yaml

    root, marker = cfg.root_path, _marker(cfg)
    recipe = synthetic_recipe(cfg, kind, seed)
    if root.exists():
        if not marker.is_file():
            LOG.warning("data.root %s exists without %s: using it as it is, not generating it from data.synthetic "
                        "(remove it to have it generated again)", root, marker.name)
            return
        if yaml.safe_load(marker.read_text()) == recipe:
            return
        LOG.warning("%s was generated with other settings (%s); generating it again", root, marker)
    generate_synthetic(cfg, kind, seed, force=True)
    marker.write_text(yaml.safe_dump(recipe, sort_keys=True))


def generate_synthetic(cfg: DataConfig, kind: str, seed: int, force: bool = False) -> None:
    """Write the synthetic data set the config describes into ``cfg.root`` (``force`` replaces what is there)."""
    from fer_ros_training.data.synthetic import SynthConfig
    from fer_ros_training.data.synthetic_files import (SplitFractions, write_clip_folders, write_fer2013_csv,
                                                       write_image_folders)

    opts = dict(cfg.synthetic or {})
    per_class = int(opts.pop("per_class", 20))
    frames = int(opts.pop("frames", 12))
    video_every = int(opts.pop("video_every", 0))
    gen_seed = int(opts.pop("seed", seed))
    synth = SynthConfig(**opts)
    fractions = SplitFractions(**{k: float(v) for k, v in cfg.split.items()})
    root = cfg.root_path
    LOG.info("writing a synthetic %s data set to %s (data.synthetic asks for it)", cfg.format, root)
    if cfg.format == "fer2013":
        write_fer2013_csv(root, per_class, gen_seed, synth, fractions, force=force)
    elif cfg.format == "clips" or kind == "clip":
        write_clip_folders(root, per_class, frames, gen_seed, synth, fractions, video_every, force=force)
    else:
        write_image_folders(root, per_class, gen_seed, synth, fractions, force=force)


def prepare_data(cfg: DataConfig, labels: tuple[str, ...], recipe: CropRecipe, seed: int = 0,
                 bad: BadInputLog | None = None, detector_config: Any = None, splits: tuple[str, ...] = SPLITS,
                 progress: bool = True) -> PreparedData:
    """Aligned faces of every requested split; bad input goes to ``bad`` under the config's policy."""
    bad = bad or BadInputLog(cfg.on_bad_input)
    kind = "clip" if cfg.format == "clips" else "image"
    root = cfg.root_path
    if cfg.synthetic:
        ensure_synthetic(cfg, kind, seed)
    if not root.exists():
        raise ConfigError(f"data.root {root} does not exist: give the data folder (or the FER2013 CSV file); "
                          f"'fer-ros synth' writes a synthetic data set")
    resolver = LabelResolver(labels, cfg.label_map)
    if cfg.format == "fer2013":
        items = load_fer2013(root, resolver, bad, cfg.split, seed)
    elif cfg.format == "image_folders":
        items = load_image_folders(root, resolver, bad, cfg.split, seed)
    else:
        items = load_clip_folders(root, resolver, bad, cfg.split, seed)
    annotations = read_faces(root if root.is_dir() else root.parent, bad) if cfg.annotations else {}
    cache = FaceCache(recipe, bad, cfg.cache_path, annotations, detector_config, no_face=cfg.no_face)
    out = {name: PreparedSplit() for name in splits}
    taken = {name: 0 for name in splits}
    try:
        wanted = [it for it in items if it.split in out]
        for item in tqdm(wanted, desc=f"aligning faces ({root.name})", unit=kind, disable=not progress,
                         leave=False):
            if cfg.max_items and taken[item.split] >= cfg.max_items:
                continue
            face: Any = cache.align_clip(item) if kind == "clip" else cache.align_image(item)
            if not face:  # None (image) or [] (clip): already reported by the cache
                continue
            split = out[item.split]
            split.faces.append(face)
            split.labels.append(item.label)
            split.sources.append(item.source)
            taken[item.split] += 1
    finally:
        cache.close()
    if "train" in out:
        present = set(out["train"].labels)
        for i, name in enumerate(labels):
            if i not in present:
                bad.report(EMPTY_CLASS, root, f"label '{name}' has no usable training item; the network will never "
                                              f"learn it")
    LOG.info("faces: %s; %s; %s", cache.stats.summary(), ", ".join(f"{k} {v}" for k, v in
                                                                      {n: len(s.labels) for n, s in out.items()}.items()),
             bad.summary())
    return PreparedData(kind, tuple(labels), out, cache.stats, bad)


def faces_of(split: PreparedSplit) -> list[AlignedFace]:
    """Every aligned face of a split, clips flattened (for statistics and plots)."""
    if split.faces and isinstance(split.faces[0], list):
        return [f for clip in split.faces for f in clip]
    return list(split.faces)

