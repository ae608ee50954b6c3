"""Real test frames built from public-domain photographs that ship with scikit-image (no download).

The astronaut portrait (``skimage.data.astronaut()``, NASA, public domain) is cut out around the head and pasted, with
a soft elliptical edge, onto a 640x480 background (``skimage.data.coffee()``, public domain, a scene with no face) at
any position, size and in-plane rotation, mirrored or not. Because the paste is one affine warp, the known face box
and five landmarks of the portrait are carried into the frame exactly: tests compare detectors, alignment and tracking
against that ground truth. ``camera_clip`` moves several such faces along smooth paths for demos and benchmarks.

All generators are deterministic (seeded) and cached, so tests and benchmarks see the same frames every run.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import cv2
import numpy as np

FRAME_HEIGHT = 480  # the camera resolution the benchmarks and tests are specified at
FRAME_WIDTH = 640

# The astronaut's face in the 512x512 original, (x0, y0, x1, y1): mediapipe's short-range box, checked by eye.
ASTRONAUT_FACE_BOX = (177.6, 82.9, 273.0, 178.2)
# Her five landmarks in the original, fer_ros order (image-left eye, image-right eye, nose tip, image-left mouth
# corner, image-right mouth corner): face-mesh points 33/133, 362/263, 1, 61, 291 on the original, checked by eye.
ASTRONAUT_LANDMARKS = ((204.2, 102.3), (247.1, 104.4), (224.1, 131.2), (201.8, 139.5), (245.9, 142.2))
# The head (hair, ears, chin) cut out of the original, (x0, y0, x1, y1): what is pasted into frames.
ASTRONAUT_HEAD_BOX = (140, 5, 315, 215)
# Width of the soft edge of the pasted head, as a fraction of the head's half-axes: hides the seam from detectors.
FEATHER_FRACTION = 0.15


@dataclass(frozen=True)
class Placement:
    """Where to paste one face: centre of the face box in the frame, face box width, rotation and mirroring."""

    cx: float
    cy: float
    face_width: float = 120.0  # pixels, width of the face box (about chin-to-brow height)
    angle_deg: float = 0.0  # in-plane rotation, counter-clockwise as seen in the image
    mirror: bool = False  # flip the face horizontally before placing it


@dataclass
class SampleFace:
    """Ground truth of one pasted face in frame pixels."""

    box: np.ndarray  # (4,) float32 axis-aligned box around the rotated face box
    landmarks: np.ndarray  # (5, 2) float32 in fer_ros order (image-left eye first)
    placement: Placement

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float32)


@dataclass
class SampleFrame:
    """A composed RGB frame and the faces it contains."""

    rgb: np.ndarray  # (H, W, 3) uint8
    faces: list[SampleFace] = field(default_factory=list)

    @property
    def bgr(self) -> np.ndarray:
        return np.ascontiguousarray(self.rgb[:, :, ::-1])


@functools.lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    """The 512x512 RGB astronaut portrait (read-only)."""
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=4)
def background(height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH) -> np.ndarray:
    """A real photograph without a face (scikit-image's coffee cup), resized to the frame size (read-only)."""
    from skimage import data

    img = cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_AREA)
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=1)
def _head() -> tuple[np.ndarray, np.ndarray]:
    """The head cut-out (RGB) and its soft elliptical alpha mask (float32 0..1)."""
    x0, y0, x1, y1 = ASTRONAUT_HEAD_BOX
    head = np.ascontiguousarray(astronaut()[y0:y1, x0:x1])
    return head, elliptical_alpha(*head.shape[:2])


def elliptical_alpha(h: int, w: int, feather: float = FEATHER_FRACTION) -> np.ndarray:
    """An h x w float32 alpha mask: 1 inside the inscribed ellipse, fading to 0 over ``feather`` of its half-axes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    return np.clip((1.0 - r) / feather, 0.0, 1.0).astype(np.float32)


def _placement_matrix(p: Placement) -> np.ndarray:
    """2x3 affine from original-astronaut pixels to frame pixels for one placement."""
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE_BOX
    fcx, fcy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    s = p.face_width / (fx1 - fx0)
    a = math.radians(p.angle_deg)
    # image y points down: a counter-clockwise rotation as seen is [[c, s], [-s, c]]
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) * s
    if p.mirror:
        rot = rot @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    t = np.array([p.cx, p.cy]) - rot @ np.array([fcx, fcy])
    return np.hstack([rot, t[:, None]])


def _truth(p: Placement, m: np.ndarray) -> SampleFace:
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE_BOX
    corners = np.array([[fx0, fy0], [fx1, fy0], [fx1, fy1], [fx0, fy1]])
    c = corners @ m[:, :2].T + m[:, 2]
    box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], dtype=np.float32)
    lm = np.asarray(ASTRONAUT_LANDMARKS) @ m[:, :2].T + m[:, 2]
    if p.mirror:  # the image-left eye of the mirrored face is the original's image-right eye, same for the mouth
        lm = lm[[1, 0, 2, 4, 3]]
    return SampleFace(box=box, landmarks=lm.astype(np.float32), placement=p)


def compose(placements: Sequence[Placement], height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH,
            base: np.ndarray | None = None) -> SampleFrame:
    """Paste one astronaut head per placement onto the background (or ``base``), later ones on top."""
    frame = (background(height, width) if base is None else base).copy()
    head, alpha = _head()
    hx0, hy0 = ASTRONAUT_HEAD_BOX[:2]
    hh, hw = head.shape[:2]
    faces = []
    for p in placements:
        m = _placement_matrix(p)
        m_head = m.copy()
        m_head[:, 2] += m[:, :2] @ np.array([hx0, hy0])  # the cut-out's pixel (0,0) is (hx0, hy0) in the original
        # blend only inside the pasted head's bounding rectangle
        corners = np.array([[0, 0], [hw, 0], [hw, hh], [0, hh]], dtype=np.float64) @ m_head[:, :2].T + m_head[:, 2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        faces.append(_truth(p, m))
        if x1 <= x0 or y1 <= y0:
            continue  # entirely outside the frame
        m_roi = m_head.copy()
        m_roi[:, 2] -= (x0, y0)
        size = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpAffine(head, m_roi, size, flags=cv2.INTER_LINEAR).astype(np.float32)
        a = cv2.warpAffine(alpha, m_roi, size, flags=cv2.INTER_LINEAR)[:, :, None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi + (warped - roi) * a + 0.5, 0, 255).astype(np.uint8)
    return SampleFrame(rgb=frame, faces=faces)


def one_face(face_width: float = 120.0, angle_deg: float = 0.0, mirror: bool = False,
             cx: float = FRAME_WIDTH / 2, cy: float = FRAME_HEIGHT / 2) -> SampleFrame:
    """A 640x480 frame with one astronaut face (centred by default)."""
    return compose([Placement(cx, cy, face_width, angle_deg, mirror)])


def no_face() -> SampleFrame:
    """A 640x480 frame of the background alone: detectors must report nothing."""
    return SampleFrame(rgb=background().copy())


def grid_placements(n: int, face_width: float = 90.0, height: int = FRAME_HEIGHT,
                    width: int = FRAME_WIDTH) -> list[Placement]:
    """``n`` non-overlapping placements on a grid (at most 3 rows of 4 at the default size), alternately mirrored."""
    cols = min(n, 4)
    rows = math.ceil(n / cols) if n else 0
    if rows > 3:
        raise ValueError(f"at most 12 faces fit a {width}x{height} frame at width {face_width}, asked for {n}")
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        out.append(Placement(cx=width * (c + 0.5) / cols, cy=height * (r + 0.5) / rows, face_width=face_width,
                             mirror=bool(i % 2)))
    return out


def many_faces(n: int, face_width: float = 90.0) -> SampleFrame:
    """A 640x480 frame with ``n`` astronaut faces on a grid (mirrored every other one)."""
    return compose(grid_placements(n, face_width))


def occlude(sample: SampleFrame, index: int = 0, part: str = "mouth", color: tuple[int, int, int] = (40, 40, 40),
            ) -> SampleFrame:
    """Cover part of one face with a flat patch (``mouth``: lower third, ``eyes``: a band over both eyes,
    ``half``: the image-right half of the face). Ground truth is kept: the face is still there."""
    rgb = sample.rgb.copy()
    f = sample.faces[index]
    x0, y0, x1, y1 = f.box
    w, h = x1 - x0, y1 - y0
    if part == "mouth":
        patch = (x0 + 0.1 * w, y0 + 0.62 * h, x1 - 0.1 * w, y1)
    elif part == "eyes":
        eyes_y = float(f.landmarks[:2, 1].mean())
        patch = (x0, eyes_y - 0.1 * h, x1, eyes_y + 0.1 * h)
    elif part == "half":
        patch = ((x0 + x1) / 2, y0, x1, y1)
    else:
        raise ValueError(f"occlude part must be mouth, eyes or half, got {part!r}")
    px0, py0, px1, py1 = (int(round(v)) for v in patch)
    rgb[max(py0, 0):max(py1, 0), max(px0, 0):max(px1, 0)] = color
    return SampleFrame(rgb=rgb, faces=sample.faces)


def rotate_frame(sample: SampleFrame, quarter_turns: int) -> SampleFrame:
    """The whole frame turned by 90-degree steps counter-clockwise (portrait cameras), ground truth carried along."""
    k = quarter_turns % 4
    rgb = np.ascontiguousarray(np.rot90(sample.rgb, k))
    h, w = sample.rgb.shape[:2]
    faces = []
    for f in sample.faces:
        pts = np.vstack([f.box.reshape(2, 2), f.landmarks]).astype(np.float64)
        for _ in range(k):  # one CCW quarter turn: (x, y) -> (y, W - x) for the current width (pixel i: [i, i+1))
            pts = np.stack([pts[:, 1], w - pts[:, 0]], axis=1)
            h, w = w, h
        h, w = sample.rgb.shape[:2]
        box = np.array([pts[:2, 0].min(), pts[:2, 1].min(), pts[:2, 0].max(), pts[:2, 1].max()], dtype=np.float32)
        faces.append(SampleFace(box=box, landmarks=pts[2:].astype(np.float32), placement=f.placement))
    return SampleFrame(rgb=rgb, faces=faces)


def flip_frame(sample: SampleFrame) -> SampleFrame:
    """The frame mirrored left-right (a selfie camera), ground truth carried along in fer_ros landmark order."""
    w = sample.rgb.shape[1]
    rgb = np.ascontiguousarray(sample.rgb[:, ::-1])
    faces = []
    for f in sample.faces:
        box = np.array([w - f.box[2], f.box[1], w - f.box[0], f.box[3]], dtype=np.float32)
        lm = f.landmarks[[1, 0, 2, 4, 3]].copy()
        lm[:, 0] = w - lm[:, 0]
        faces.append(SampleFace(box=box, landmarks=lm, placement=f.placement))
    return SampleFrame(rgb=rgb, faces=faces)


@dataclass(frozen=True)
class ClipConfig:
    """A short synthetic camera clip: faces drifting along smooth, seeded paths (and a slight wobble of the head)."""

    frames: int = 90
    faces: int = 2
    face_width: float = 100.0
    fps: float = 30.0
    seed: int = 0
    crossing: bool = False  # the first two faces swap sides, passing each other mid-clip


def clip_placements(cfg: ClipConfig, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH
                    ) -> list[list[Placement]]:
    """The per-frame placements of a clip (no pixels), so trackers can be tested on the same paths quickly."""
    rng = np.random.default_rng(cfg.seed)
    margin = cfg.face_width * 0.8
    start = rng.uniform([margin, margin], [width - margin, height - margin], size=(cfg.faces, 2))
    end = rng.uniform([margin, margin], [width - margin, height - margin], size=(cfg.faces, 2))
    if cfg.crossing and cfg.faces >= 2:
        y = height / 2
        start[0], end[0] = (margin, y - 0.15 * cfg.face_width), (width - margin, y + 0.15 * cfg.face_width)
        start[1], end[1] = (width - margin, y), (margin, y)
    phase = rng.uniform(0, 2 * math.pi, size=cfg.faces)
    out = []
    for i in range(cfg.frames):
        t = i / max(cfg.frames - 1, 1)
        ease = 0.5 - 0.5 * math.cos(math.pi * t)  # smooth start and stop
        pos = start + (end - start) * ease
        out.append([Placement(cx=float(pos[j, 0]), cy=float(pos[j, 1]), face_width=cfg.face_width,
                              angle_deg=8.0 * math.sin(2 * math.pi * t + phase[j]), mirror=bool(j % 2))
                    for j in range(cfg.faces)])
    return out


def camera_clip(cfg: ClipConfig | None = None, height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH
                ) -> Iterator[tuple[float, SampleFrame]]:
    """Yield ``(stamp_seconds, frame)`` for a synthetic clip; used by the demo and the benchmarks."""
    cfg = cfg or ClipConfig()
    for i, placements in enumerate(clip_placements(cfg, height, width)):
        yield i / cfg.fps, compose(placements, height, width)
