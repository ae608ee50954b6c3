"""Find and align every face once, with the core's code, and keep the crops on disk so no epoch runs detection again.

What is trained is what the robot serves: a face is located by the core's detector (``fer_ros.faces.detector``) or
by a known annotation (``faces.csv``, see ``annotations``), cut out by the core's ``crop_face`` with the model card's
crop (box scale, eye levelling) and converted to the card's colour by ``to_model_color``. The training transforms
then work on these uint8 crops, and the evaluation preset is the runtime's ``normalize``.

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
CACHE_VERSION = 1  # bump when the stored layout or the alignment code's meaning changes
DEFAULT_CACHE_DIR = Path(os.environ.get("FER_ROS_CACHE", Path.home() / ".cache" / "fer_ros")) / "faces"


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
    """A model-ready uint8 crop (HxWxC, C = 1 for gray) and the five landmarks in crop pixels (None if unknown)."""

    crop: np.ndarray
    landmarks: np.ndarray | None = None


@dataclass
class CacheStats:
    hits: int = 0  # read from the disk cache
    aligned: int = 0  # detected/located and aligned now
    no_face: int = 0
    unreadable: int = 0

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in asdict(self).items())


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
    ``fer_ros.faces.detector.DetectorConfig`` for the rest (default: the core's defaults, single-image mode).
    ``cache_dir=None`` keeps nothing on disk.
    """

    recipe: CropRecipe
    bad: BadInputLog
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    annotations: dict[str, FaceAnnotation] = field(default_factory=dict)
    detector_config: object | None = None
    stats: CacheStats = field(default_factory=CacheStats)
    _detector: object | None = field(default=None, init=False, repr=False)
    _mesh: object | None = field(default=None, init=False, repr=False)
    _digests: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # --- locating -----------------------------------------------------------------------------------------------
    def _detector_tag(self) -> str:
        cfg = self.detector_config
        if cfg is None:
            return "det-default"
        return "det-" + hashlib.sha256(repr(sorted(asdict(cfg).items())).encode()).hexdigest()[:16]

    def detector(self):
        """The core's face detector, created on first use (single-image mode: unrelated files, no tracking)."""
        if self._detector is None:
            from fer_ros.faces.detector import DetectorConfig, create_detector

            cfg = self.detector_config or DetectorConfig(static_images=True)
            self._detector = create_detector(cfg, LOG)
            if cfg.use_mesh:  # the runtime refines the five landmarks with the mesh: so does training
                from fer_ros.faces.landmarks import MeshLandmarker

                self._mesh = MeshLandmarker(max_faces=cfg.max_faces, static=True)
        return self._detector

    def close(self) -> None:
        for part in (self._detector, self._mesh):
            if part is not None:
                part.close()
        self._detector = self._mesh = None

    def locate(self, rgb: np.ndarray, ref: FrameRef) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Box and landmarks of the face in ``rgb``: the annotation if there is one, else the detector's best face."""
        ann = self.annotations.get(ref.key())
        if ann is not None:
            return ann.box, ann.landmarks
        found = self.detector().detect(rgb)
        if found and self._mesh is not None:
            found = self._mesh.refine(rgb, found)
        if not found:
            return None
        best = found[0]
        return best.box, best.landmarks

    # --- aligning -----------------------------------------------------------------------------------------------
    def align_located(self, rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None) -> AlignedFace:
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
        return AlignedFace(np.ascontiguousarray(crop, dtype=np.uint8), lm)

    def align_pixels(self, pixels: np.ndarray) -> AlignedFace:
        """A ready face crop (FER2013 row, gray HxW): resized to the input size and converted to the model colour."""
        from fer_ros.faces.align import to_model_color

        r = self.recipe
        resized = cv2.resize(pixels, (r.width, r.height), interpolation=cv2.INTER_LINEAR)
        crop = to_model_color(cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB), "rgb", r.color)
        if crop.ndim == 2:
            crop = crop[..., None]
        return AlignedFace(np.ascontiguousarray(crop, dtype=np.uint8), None)

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
                return True, AlignedFace(z["crop"], lm)
        except (OSError, ValueError, KeyError):  # a torn or foreign file: recompute it
            return False, None

    def _store(self, entry: Path | None, face: AlignedFace | None) -> None:
        if entry is None:
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(entry.name + f".{os.getpid()}.tmp.npz")
        if face is None:
            np.savez(tmp, found=False, crop=np.zeros(0, np.uint8), landmarks=np.zeros(0, np.float32))
        else:
            lm = face.landmarks if face.landmarks is not None else np.zeros(0, np.float32)
            np.savez(tmp, found=True, crop=face.crop, landmarks=lm)
        os.replace(tmp, entry)

    # --- public -------------------------------------------------------------------------------------------------
    def align_rgb(self, rgb: np.ndarray, ref: FrameRef, source: str, report_missing: bool = True) -> AlignedFace | None:
        """Align the face of an already decoded frame, through the cache."""
        entry = self._entry(ref)
        hit, face = self._load(entry)
        if hit:
            self.stats.hits += 1
        else:
            located = self.locate(rgb, ref)
            face = None if located is None else self.align_located(rgb, *located)
            self._store(entry, face)
            self.stats.aligned += face is not None
        if face is None:
            self.stats.no_face += 1
            if report_missing:
                self.bad.report(NO_FACE, source, "no face found; the image is left out (give its face in faces.csv "
                                                 "or lower detector.min_confidence)")
        return face

    def align_image(self, item: ImageItem) -> AlignedFace | None:
        """The aligned face of an image item; None (reported) for an unreadable file or a file with no face."""
        if item.pixels is not None:
            self.stats.aligned += 1
            return self.align_pixels(item.pixels)
        ref = item.frame
        entry = self._entry(ref) if ref.path.is_file() else None
        hit, face = self._load(entry)
        if hit:
            self.stats.hits += 1
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
