"""Find and align every face once, with the core's code, and keep the crops on disk so no epoch runs detection again.

What is trained is what the robot serves: by default a face is located exactly as the node locates a face it sees
first (``fer_ros.faces.frontend.find_in_image``: the node's detector, candidates verified in windows, the face mesh
only on faces of ``MESH_MIN_FACE_PX`` and more), cut out by the core's ``crop_face`` with the model card's crop (box
scale, eye levelling) and converted to the card's colour by ``to_model_color``. Known faces (``faces.csv``, see
``annotations``) are used instead only when asked for (``data.annotations: true``). The training transforms then work
on these uint8 crops, and the evaluation preset is the runtime's ``normalize``.

Where the detector finds no face the node can label (none, or only faces narrower than ``min_face_size``), the
``no_face`` policy decides: ``whole_image`` (default) takes the whole image as the face box and crops it as the node
crops a detected box (tight crops such as FER2013's or LFW's often hold a face RetinaFace does not find: it needs some
head context); ``skip`` leaves the image out. Every face records how it was located (``AlignedFace.located``), and the
counts are kept in ``CacheStats``, so an evaluation can say which crop it scored.

A cache entry is keyed by the SHA-256 of the file's bytes (plus the frame index for videos), the crop recipe and
how the face was located, so editing an image, changing the card's crop or switching detectors never reuses a stale
crop. Images where no face is found are cached as such, counted and reported (``no_face``), never dropped silently.

FER2013 rows are already 48x48 face crops: they are resized to the input size and colour without detection.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_ros.model_card import CropSpec, InputSpec
from fer_ros_training.data.annotations import FaceAnnotation
from fer_ros_training.data.bad_input import CLIP_NO_FACE, CORRUPT_IMAGE, NO_FACE, BadInputLog
from fer_ros_training.data.items import ClipItem, FrameRef, ImageItem

LOG = logging.getLogger("fer_ros_training.data")
CACHE_VERSION = 2  # bump when the stored layout or the alignment code's meaning changes
DEFAULT_CACHE_DIR = Path(os.environ.get("FER_ROS_CACHE", Path.home() / ".cache" / "fer_ros")) / "faces"
# How a face was located (AlignedFace.located): the node's detector, a faces.csv row, the whole image (no face found),
# or a ready crop (FER2013 rows, resized without detection).
LOCATED_DETECTOR, LOCATED_ANNOTATION, LOCATED_WHOLE_IMAGE, LOCATED_READY_CROP = (
    "detector", "annotation", "whole_image", "ready_crop")
NO_FACE_POLICIES = ("whole_image", "skip")  # data.no_face: what an image without a face the node can label becomes


@dataclass(frozen=True)
class CropRecipe:
    """Everything an aligned crop depends on besides the image: output size, colour and the card's crop."""

    height: int
    width: int
    color: str
    scale: float = 1.0
    rotate: bool = True

    @classmethod
    def from_specs(cls, inp: InputSpec, crop: CropSpec) -> CropRecipe:
        return cls(inp.height, inp.width, inp.color, float(crop.scale), bool(crop.rotate))

    def tag(self) -> str:
        return f"v{CACHE_VERSION}-{self.height}x{self.width}-{self.color}-s{self.scale:g}-{'rot' if self.rotate else 'norot'}"


@dataclass
class AlignedFace:
    """A model-ready uint8 crop (HxWxC, C = 1 for gray), the five landmarks in crop pixels (None if unknown) and how
    the face was located (one of the ``LOCATED_*`` names)."""

    crop: np.ndarray
    landmarks: np.ndarray | None = None
    located: str = LOCATED_DETECTOR


@dataclass
class CacheStats:
    hits: int = 0  # read from the disk cache
    aligned: int = 0  # detected/located and aligned now
    no_face: int = 0  # left out: no face found and no_face = skip
    unreadable: int = 0
    located: dict[str, int] = field(default_factory=dict)  # faces kept, by how they were located (hits included)

    def count(self, face: AlignedFace | None) -> None:
        if face is not None:
            self.located[face.located] = self.located.get(face.located, 0) + 1

    def summary(self) -> str:
        counts = {k: v for k, v in asdict(self).items() if k != "located"}
        return ", ".join([f"{k} {v}" for k, v in counts.items()] + [f"{k} {v}" for k, v in self.located.items()])


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _annotation_tag(ann: FaceAnnotation) -> str:
    data = np.concatenate([ann.box.ravel(), ann.landmarks.ravel()]).astype(np.float32).tobytes()
    return "ann-" + hashlib.sha256(data).hexdigest()[:16]


@dataclass
class FaceCache:
    """Aligns images, video frames and clips for one crop recipe, caching results under ``cache_dir``.

    ``annotations`` maps ``FrameRef.key()`` to known faces (used instead of the detector); ``detector_config`` is a
    ``fer_ros.faces.detector.DetectorConfig`` for the rest (default: the core's defaults, single-image mode);
    ``no_face`` is one of ``NO_FACE_POLICIES`` (see the module docstring). ``cache_dir=None`` keeps nothing on disk.
    """

    recipe: CropRecipe
    bad: BadInputLog
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    annotations: dict[str, FaceAnnotation] = field(default_factory=dict)
    detector_config: object | None = None
    stats: CacheStats = field(default_factory=CacheStats)
    no_face: str = "whole_image"
    _detector: object | None = field(default=None, init=False, repr=False)
    _finder: object | None = field(default=None, init=False, repr=False)
    _mesh: object | None = field(default=None, init=False, repr=False)
    _digests: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # --- locating -----------------------------------------------------------------------------------------------
    def _config(self):
        from fer_ros.faces.detector import DetectorConfig

        return self.detector_config or DetectorConfig(static_images=True)

    def _detector_tag(self) -> str:
        cfg = self.detector_config
        digest = "default" if cfg is None else hashlib.sha256(repr(sorted(asdict(cfg).items())).encode()).hexdigest()[:16]
        return f"det-{digest}-{self.no_face}"

    def detector(self):
        """The core's face detector, created on first use, with the node's front end and mesh around it."""
        if self._detector is None:
            from fer_ros.faces.detector import create_detector
            from fer_ros.faces.frontend import FaceFinder
            from fer_ros.faces.landmarks import create_landmarker

            cfg = self._config()
            self._detector = create_detector(cfg, LOG)
            self._finder = FaceFinder(self._detector, cfg, LOG)
            self._mesh = create_landmarker(cfg, LOG)  # the runtime refines the five landmarks: so does training
        return self._detector

    def close(self) -> None:
        for part in (self._mesh, self._detector):
            if part is not None:
                part.close()
        self._detector = self._mesh = self._finder = None

    def locate(self, rgb: np.ndarray, ref: FrameRef) -> tuple[np.ndarray, np.ndarray | None, str] | None:
        """Box, landmarks and how they were found (``LOCATED_*``) for the face in ``rgb``: the annotation if there is
        one, else the best face the node would label, else the whole image (``no_face = whole_image``) or None."""
        from fer_ros.faces.frontend import find_in_image

        ann = self.annotations.get(ref.key())
        if ann is not None:
            return ann.box, ann.landmarks, LOCATED_ANNOTATION
        self.detector()
        config = self._config()
        found = [d for d in find_in_image(self._finder, self._mesh, rgb) if config.labels(d)]
        if found:
            return found[0].box, found[0].landmarks, LOCATED_DETECTOR
        if self.no_face == "whole_image":
            h, w = rgb.shape[:2]
            return np.array([0, 0, w, h], np.float32), None, LOCATED_WHOLE_IMAGE
        return None

    # --- aligning -----------------------------------------------------------------------------------------------
    def align_located(self, rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None,
                      located: str = LOCATED_DETECTOR) -> AlignedFace:
        """Crop and colour-convert one located face exactly as the runtime does (``fer_ros.faces.align``)."""
        from fer_ros.faces.align import crop_face, face_transform, to_model_color, transform_points

        r = self.recipe
        crop = crop_face(rgb, box, landmarks, r.height, r.width, scale=r.scale, rotate=r.rotate)
        crop = to_model_color(crop, "rgb", r.color)
        if crop.ndim == 2:
            crop = crop[..., None]
        lm = None
        if landmarks is not None:
            m = face_transform(box, landmarks, r.height, r.width, r.scale, r.rotate)
            lm = transform_points(m, landmarks).astype(np.float32)
        return AlignedFace(np.ascontiguousarray(crop, dtype=np.uint8), lm, located)

    def align_pixels(self, pixels: np.ndarray) -> AlignedFace:
        """A ready face crop (FER2013 row, gray HxW): resized to the input size and converted to the model colour."""
        from fer_ros.faces.align import to_model_color

        r = self.recipe
        resized = cv2.resize(pixels, (r.width, r.height), interpolation=cv2.INTER_LINEAR)
        crop = to_model_color(cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB), "rgb", r.color)
        if crop.ndim == 2:
            crop = crop[..., None]
        return AlignedFace(np.ascontiguousarray(crop, dtype=np.uint8), None, LOCATED_READY_CROP)

    # --- disk cache ---------------------------------------------------------------------------------------------
    def _digest(self, path: Path) -> str:
        key = str(path)
        if key not in self._digests:
            self._digests[key] = file_digest(path)
        return self._digests[key]

    def _entry(self, ref: FrameRef) -> Path | None:
        if self.cache_dir is None:
            return None
        ann = self.annotations.get(ref.key())
        locator = _annotation_tag(ann) if ann is not None else self._detector_tag()
        key = hashlib.sha256(f"{self._digest(ref.path)}#{ref.index}|{locator}".encode()).hexdigest()
        return Path(self.cache_dir) / self.recipe.tag() / key[:2] / f"{key}.npz"

    def _load(self, entry: Path | None) -> tuple[bool, AlignedFace | None]:
        """(hit, face) from the cache; a hit with face None is a cached 'no face'."""
        if entry is None or not entry.is_file():
            return False, None
        try:
            with np.load(entry) as z:
                if not bool(z["found"]):
                    return True, None
                lm = z["landmarks"] if z["landmarks"].size else None
                return True, AlignedFace(z["crop"], lm, str(z["located"]))
        except (OSError, ValueError, KeyError):  # a torn or foreign file: recompute it
            return False, None

    def _store(self, entry: Path | None, face: AlignedFace | None) -> None:
        if entry is None:
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(entry.name + f".{os.getpid()}.tmp.npz")
        if face is None:
            np.savez(tmp, found=False, crop=np.zeros(0, np.uint8), landmarks=np.zeros(0, np.float32), located="")
        else:
            lm = face.landmarks if face.landmarks is not None else np.zeros(0, np.float32)
            np.savez(tmp, found=True, crop=face.crop, landmarks=lm, located=face.located)
        os.replace(tmp, entry)

    # --- public -------------------------------------------------------------------------------------------------
    def align_rgb(self, rgb: np.ndarray, ref: FrameRef, source: str, report_missing: bool = True) -> AlignedFace | None:
        """Align the face of an already decoded frame, through the cache."""
        entry = self._entry(ref)
        hit, face = self._load(entry)
        if hit:
            self.stats.hits += 1
        else:
            found = self.locate(rgb, ref)
            face = None if found is None else self.align_located(rgb, *found)
            self._store(entry, face)
            self.stats.aligned += face is not None
        self.stats.count(face)
        if face is None:
            self.stats.no_face += 1
            if report_missing:
                self.bad.report(NO_FACE, source, "no face found; the image is left out (data.no_face: whole_image "
                                                 "crops the whole image instead, or lower detector.min_confidence)")
        return face

    def align_image(self, item: ImageItem) -> AlignedFace | None:
        """The aligned face of an image item; None (reported) for an unreadable file or a file with no face."""
        if item.pixels is not None:
            self.stats.aligned += 1
            face = self.align_pixels(item.pixels)
            self.stats.count(face)
            return face
        ref = item.frame
        entry = self._entry(ref) if ref.path.is_file() else None
        hit, face = self._load(entry)
        if hit:
            self.stats.hits += 1
            self.stats.count(face)
            if face is None:
                self.stats.no_face += 1
                self.bad.report(NO_FACE, item.source, "no face found (cached); the image is left out")
            return face
        rgb = read_rgb(ref.path)
        if rgb is None:
            self.stats.unreadable += 1
            self.bad.report(CORRUPT_IMAGE, item.source, "cannot be decoded as an image; replace or delete it")
            return None
        return self.align_rgb(rgb, ref, item.source)

    def align_clip(self, clip: ClipItem) -> list[AlignedFace]:
        """The aligned faces of a clip's frames in order, frames without a face left out (counted).

        A clip with no face in any frame is reported as ``clip_no_face``.
        """
        faces: list[AlignedFace] = []
        missing = 0
        for i, (ref, rgb) in enumerate(iter_frames(clip.frames)):
            if rgb is None:
                self.stats.unreadable += 1
                self.bad.report(CORRUPT_IMAGE, ref.key(), "frame cannot be decoded; it is left out of the clip",
                                line=i + 1)
                continue
            face = self.align_rgb(rgb, ref, ref.key(), report_missing=False)
            if face is None:
                missing += 1
            else:
                faces.append(face)
        if missing:
            LOG.info("%s: %d of %d frames have no face", clip.source, missing, len(clip.frames))
        if not faces:
            self.bad.report(CLIP_NO_FACE, clip.source, f"no face in any of its {len(clip.frames)} frames; the clip "
                                                       f"is left out")
        return faces


def read_rgb(path: Path) -> np.ndarray | None:
    """An image file as HxWx3 uint8 RGB, or None when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else np.zeros(0, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def iter_frames(frames: list[FrameRef]):
    """Yield (ref, rgb or None) for image files and video frames; a video is decoded once, in order."""
    cap, cap_path, pos = None, None, -1
    try:
        for ref in frames:
            if ref.index is None:
                yield ref, read_rgb(ref.path)
                continue
            if cap_path != ref.path or ref.index <= pos:
                if cap is not None:
                    cap.release()
                cap, cap_path, pos = cv2.VideoCapture(str(ref.path)), ref.path, -1
            bgr = None
            while pos < ref.index:
                ok, bgr = cap.read()
                pos += 1
                if not ok:
                    bgr = None
                    break
            yield ref, None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        if cap is not None:
            cap.release()
