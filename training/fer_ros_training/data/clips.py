"""Folders of labelled clips (EMO2018 / AFEW style) and the K-segment frame sampling of the Frame Attention Network.

Layout (docs/formats.md): ``ROOT/<label>/<clip_id>/000000.png ...`` with an optional ``clip.yaml`` (``peak``: frame
index), or one video file ``ROOT/<label>/<clip_id>.mp4|.avi``; optional ``ROOT/split.csv`` (``clip_path,split``).

Sampling follows temporal segment networks as the FAN seed trains: a clip is cut into K equal segments (K = 3 by
default) and one frame is drawn at random from each when training, the middle frame of each when evaluating. A clip
with fewer usable frames than K gives all of them and a mask that marks the padding.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from fer_ros_training.data.bad_input import EMPTY_CLASS, SHORT_CLIP, BadInputLog
from fer_ros_training.data.image_folders import IMAGE_SUFFIXES, assign_splits, class_folders
from fer_ros_training.data.items import ClipItem, FrameRef, LabelResolver

DEFAULT_SEGMENTS = 3  # K of the FAN seed's training: frames sampled per clip
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
CLIP_META = "clip.yaml"


def video_frame_count(path: Path) -> int:
    """Frames that can actually be decoded (container frame counts are often wrong, so decode to count)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def _clip_from_folder(folder: Path, label: int) -> ClipItem:
    frames = [FrameRef(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    peak = None
    meta = folder / CLIP_META
    if meta.is_file():
        data = yaml.safe_load(meta.read_text()) or {}
        peak = int(data["peak"]) if data.get("peak") is not None else None
    return ClipItem(label=label, split="train", source=str(folder), frames=frames, peak=peak)


def _clip_from_video(path: Path, label: int) -> ClipItem:
    n = video_frame_count(path)
    return ClipItem(label=label, split="train", source=str(path), frames=[FrameRef(path, i) for i in range(n)])


def load_clip_folders(root: Path | str, resolver: LabelResolver, bad: BadInputLog,
                      split_fractions: dict[str, float] | None = None, seed: int = 0,
                      min_frames: int = 1) -> list[ClipItem]:
    """List every clip (frame folder or video file) with its frames, label and split."""
    root = Path(root)
    clips: list[ClipItem] = []
    for folder, label in class_folders(root, resolver, bad):
        found = []
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                found.append(_clip_from_folder(entry, label))
            elif entry.suffix.lower() in VIDEO_SUFFIXES:
                found.append(_clip_from_video(entry, label))
        if not found:
            bad.report(EMPTY_CLASS, folder, "class folder has no clips (frame folders or video files)")
        for clip in found:
            if len(clip.frames) < min_frames:
                bad.report(SHORT_CLIP, clip.source, f"clip has {len(clip.frames)} readable frames, needs "
                                                    f"{min_frames}")
                continue
            clips.append(clip)
    assign_splits(root, clips, [str(Path(c.source).relative_to(root)).replace("\\", "/") for c in clips], bad,
                  split_fractions, seed)
    return clips


def segment_indices(num_frames: int, segments: int = DEFAULT_SEGMENTS,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (segments,) and validity mask (segments,) for one clip of ``num_frames`` usable frames.

    ``rng`` given: one random frame per segment (training); None: each segment's middle frame (evaluation).
    """
    if num_frames <= 0:
        raise ValueError("a clip needs at least one usable frame to sample from")
    if segments < 1:
        raise ValueError(f"segments must be >= 1, got {segments}")
    if num_frames < segments:
        idx = np.concatenate([np.arange(num_frames), np.full(segments - num_frames, num_frames - 1)])
        return idx.astype(np.int64), np.arange(segments) < num_frames
    edges = np.linspace(0, num_frames, segments + 1)
    lo, hi = np.floor(edges[:-1]).astype(np.int64), np.floor(edges[1:]).astype(np.int64)
    hi = np.maximum(hi, lo + 1)
    if rng is None:
        idx = (lo + hi - 1) // 2
    else:
        idx = lo + (rng.random(segments) * (hi - lo)).astype(np.int64)
    return np.minimum(idx, num_frames - 1), np.ones(segments, dtype=bool)
