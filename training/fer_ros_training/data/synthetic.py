"""Procedurally drawn expression faces, so the training stack can be tested for real where no data set exists.

The seven FER2013 classes differ the way the Facial Action Coding System describes them, reduced to what a line
drawing can show: mouth shape and opening, brow height and slant, eye opening, plus a nose wrinkle for disgust.
Each sample varies in identity (face and skin tone, feature spacing), pose (roll, a yaw-like horizontal shift of the
features, scale, position), lighting (gain and a gradient), expression intensity and occlusion (a random bar or
patch), on a textured background. ``render_sequence`` draws onset -> peak -> offset clips for the Frame Attention
Network: frames far from the peak look neutral, so a clip model must find the peak.

Every sample comes with its face box and the five landmarks of ``fer_ros.datatypes`` (eyes, nose tip, mouth
corners), so it can be aligned by the core's ``crop_face`` exactly like a detected face; the writers store them in
``faces.csv`` beside the images (see ``fer_ros_training.data.annotations``) so loading needs no detector. mediapipe
does find these drawings too: measured on 70 scenes of each size 96, 128 and 256 px, BlazeFace detected all of them,
box IoU with the drawn box ~0.79, mesh landmarks within ~0.09 eye distances of the drawn ones (median), so the real
detection path can be tested on them as well (``data.annotations: false``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_ros.model_card import FER2013_LABELS

CANVAS = 256  # side of the canonical drawing canvas (pixels); the face is drawn here, then warped into the scene
FACE_RX, FACE_RY = 84, 104  # half-width / half-height of the face ellipse on the canvas
EYE_Y, EYE_DX = 108, 40  # eye centre height and half-distance between the eyes on the canvas
NOSE_Y = 150  # nose tip height on the canvas
MOUTH_Y, MOUTH_HALF = 190, 30  # mouth centre height and neutral half-width on the canvas
SUPERSAMPLE_SHIFT = 2  # cv2 drawing subpixel bits: coordinates are drawn at 1/4 pixel precision


@dataclass(frozen=True)
class Expression:
    """The facial actions of one class at full intensity (canvas units; 0 = neutral)."""

    smile: float = 0.0  # mouth corner lift (+ up, - down), pixels
    mouth_open: float = 0.0  # vertical opening at the centre, pixels
    mouth_width: float = 0.0  # change of half-width, pixels
    brow_raise: float = 0.0  # both brows up (+) or down (-), pixels
    brow_slant: float = 0.0  # inner ends up (+, sad/fear) or down (-, angry), pixels
    eye_open: float = 0.0  # change of eye half-height (+ wide, - squint), pixels
    wrinkle: float = 0.0  # nose wrinkle strength 0..1 (disgust)
    lip_raise: float = 0.0  # one-sided upper lip raise (disgust), pixels


# FER2013 order: angry, disgust, fear, happy, sad, surprise, neutral
EXPRESSIONS: dict[str, Expression] = {
    "angry": Expression(smile=-4, mouth_width=-8, brow_raise=-8, brow_slant=-14, eye_open=-3),
    "disgust": Expression(smile=-6, mouth_width=-4, brow_raise=-6, brow_slant=-4, eye_open=-4, wrinkle=1.0,
                          lip_raise=10),
    "fear": Expression(mouth_open=12, mouth_width=8, brow_raise=10, brow_slant=10, eye_open=6),
    "happy": Expression(smile=16, mouth_open=4, mouth_width=8, eye_open=-3),
    "sad": Expression(smile=-14, mouth_width=-4, brow_raise=2, brow_slant=14, eye_open=-3),
    "surprise": Expression(mouth_open=26, mouth_width=-10, brow_raise=18, eye_open=7),
    "neutral": Expression(),
}
assert tuple(EXPRESSIONS) == FER2013_LABELS


@dataclass(frozen=True)
class Identity:
    """What stays fixed for one person across a clip."""

    skin: tuple[int, int, int]  # RGB
    face_rx: float
    face_ry: float
    eye_dx: float
    mouth_half: float
    feature_color: tuple[int, int, int]
    background: np.ndarray = field(compare=False, repr=False, default=None)  # HxWx3 uint8 scene


@dataclass(frozen=True)
class Pose:
    """Where the face is in the scene."""

    cx: float
    cy: float
    size: float  # face height in scene pixels
    roll: float  # degrees, counter-clockwise
    yaw: float  # -1..1, horizontal shift of the features inside the face outline


@dataclass
class SyntheticFace:
    """One drawn scene with its face: RGB image, box (x0, y0, x1, y1) and five landmarks in scene pixels."""

    image: np.ndarray  # HxWx3 uint8 RGB
    box: np.ndarray  # (4,) float32
    landmarks: np.ndarray  # (5, 2) float32
    label: int
    intensity: float


@dataclass(frozen=True)
class SynthConfig:
    """Variation ranges of the generator. Defaults give a task a tiny CNN learns in a minute but cannot solve trivially."""

    image_size: int = 128  # scene side, pixels
    face_size: tuple[float, float] = (0.55, 0.8)  # face height as a fraction of the scene side
    roll: float = 15.0  # max |in-plane rotation|, degrees
    yaw: float = 0.35  # max |feature shift|, fraction of eye distance
    intensity: tuple[float, float] = (0.6, 1.0)  # expression strength of still images
    gain: tuple[float, float] = (0.6, 1.3)  # global brightness factor
    gradient: float = 0.35  # max lighting gradient amplitude (fraction of brightness)
    occlusion_prob: float = 0.2  # chance of a random occluding bar or patch
    noise: float = 6.0  # std of additive pixel noise
    jitter: float = 3.0  # random per-feature shape jitter, canvas pixels


def _random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    low = rng.integers(0, 256, size=(4, 4, 3)).astype(np.float32)
    bg = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    bg += rng.normal(0, 12, size=(size, size, 3))
    return np.clip(bg, 0, 255).astype(np.uint8)


def random_identity(rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> Identity:
    """Draw a person: skin tone, face proportions, feature colour, a background."""
    tone = rng.uniform(0.35, 1.0)
    skin = tuple(int(v) for v in np.clip(np.array([235, 195, 160]) * tone + rng.normal(0, 10, 3), 40, 255))
    feature = tuple(int(v) for v in np.clip(np.array(skin) * rng.uniform(0.2, 0.45), 0, 255))
    return Identity(
        skin=skin,
        face_rx=FACE_RX * rng.uniform(0.88, 1.08),
        face_ry=FACE_RY * rng.uniform(0.92, 1.06),
        eye_dx=EYE_DX * rng.uniform(0.9, 1.1),
        mouth_half=MOUTH_HALF * rng.uniform(0.85, 1.15),
        feature_color=feature,
        background=_random_background(rng, cfg.image_size),
    )


def random_pose(rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> Pose:
    size = cfg.image_size * rng.uniform(*cfg.face_size)
    margin = size * 0.55
    lo, hi = margin, max(margin + 1.0, cfg.image_size - margin)
    return Pose(cx=rng.uniform(lo, hi), cy=rng.uniform(lo, hi), size=size,
                roll=rng.uniform(-cfg.roll, cfg.roll), yaw=rng.uniform(-cfg.yaw, cfg.yaw))


def _pts(points: list[tuple[float, float]]) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * (1 << SUPERSAMPLE_SHIFT)).astype(np.int32)


def _curve(x0: float, x1: float, y_ends: float, y_mid: float, n: int = 24) -> list[tuple[float, float]]:
    """A parabola through (x0, y_ends), ((x0+x1)/2, y_mid), (x1, y_ends)."""
    xs = np.linspace(x0, x1, n)
    u = (xs - (x0 + x1) / 2) / max((x1 - x0) / 2, 1e-6)
    ys = y_mid + (y_ends - y_mid) * u ** 2
    return list(zip(xs.tolist(), ys.tolist()))


def _draw_canonical(ident: Identity, expr: Expression, t: float, yaw: float,
                    rng: np.random.Generator, jitter: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face on the canonical canvas: (rgb, alpha mask, five landmarks in canvas pixels)."""
    img = np.zeros((CANVAS, CANVAS, 3), np.uint8)
    mask = np.zeros((CANVAS, CANVAS), np.uint8)
    c = CANVAS / 2
    sh = 1 << SUPERSAMPLE_SHIFT
    col = ident.feature_color
    aa = cv2.LINE_AA
    cv2.ellipse(img, (int(c * sh), int(c * sh)), (int(ident.face_rx * sh), int(ident.face_ry * sh)), 0, 0, 360,
                ident.skin, -1, aa, SUPERSAMPLE_SHIFT)
    cv2.ellipse(mask, (int(c * sh), int(c * sh)), (int(ident.face_rx * sh), int(ident.face_ry * sh)), 0, 0, 360,
                255, -1, aa, SUPERSAMPLE_SHIFT)

    def j() -> float:
        return float(rng.normal(0, jitter))

    shift = yaw * ident.eye_dx  # features slide sideways when the head turns
    e = {k: getattr(expr, k) * t for k in expr.__dataclass_fields__}
    thick = max(2, int(round(3 + rng.uniform(-1, 1))))

    # eyes
    eye_h = max(1.5, 9 + e["eye_open"] + j() * 0.3)
    eye_w = 15 + j() * 0.3
    eyes = []
    for side in (-1, 1):
        ex, ey = c + shift + side * ident.eye_dx + j() * 0.3, EYE_Y + j() * 0.3
        eyes.append((ex, ey))
        cv2.ellipse(img, (int(ex * sh), int(ey * sh)), (int(eye_w * sh), int(eye_h * sh)), 0, 0, 360,
                    (245, 245, 245), -1, aa, SUPERSAMPLE_SHIFT)
        cv2.ellipse(img, (int(ex * sh), int(ey * sh)), (int(eye_w * sh), int(eye_h * sh)), 0, 0, 360,
                    col, 2, aa, SUPERSAMPLE_SHIFT)
        pupil = min(eye_h, 7.0)
        cv2.circle(img, (int((ex + shift * 0.15) * sh), int(ey * sh)), int(pupil * sh), col, -1, aa,
                   SUPERSAMPLE_SHIFT)
        # brow: outer end and inner end heights; slant lifts (+) or lowers (-) the inner end
        by = ey - 24 - e["brow_raise"] + j() * 0.5
        inner = by - e["brow_slant"]
        outer = by + e["brow_slant"] * 0.3
        xi, xo = ex - side * 17, ex + side * 20
        arch = -4 - max(e["brow_raise"], 0) * 0.3
        brow = [(xo, outer), ((xo + xi) / 2, (outer + inner) / 2 + arch), (xi, inner)]
        cv2.polylines(img, [_pts(brow)], False, col, thick + 2, aa, SUPERSAMPLE_SHIFT)

    # nose (+ wrinkle lines for disgust)
    nx, ny = c + shift * 1.2 + j() * 0.3, NOSE_Y + j() * 0.3
    cv2.polylines(img, [_pts([(nx - 2, EYE_Y + 12), (nx + 4, ny - 6), (nx - 8, ny), (nx + 2, ny + 2)])], False,
                  col, 2, aa, SUPERSAMPLE_SHIFT)
    if e["wrinkle"] > 0.05:
        for k in (-1, 1):
            for r in range(3):
                y = EYE_Y + 16 + r * 6
                a = (nx + k * 6, y)
                b = (nx + k * (6 + 10 * e["wrinkle"]), y - 4 * e["wrinkle"])
                cv2.polylines(img, [_pts([a, b])], False, col, 2, aa, SUPERSAMPLE_SHIFT)

    # mouth
    mx, my = c + shift + j() * 0.3, MOUTH_Y + j() * 0.3
    half = ident.mouth_half + e["mouth_width"] + j() * 0.3
    corner_y = my - e["smile"] + j() * 0.3
    lift = e["lip_raise"]  # disgust raises the upper lip on one side
    lift_x = mx + half / 2 * (1 if rng.random() < 0.5 else -1)
    x0, x1 = mx - half, mx + half
    top_mid = my - e["mouth_open"] * 0.35 - e["smile"] * 0.2
    bottom_mid = my + e["mouth_open"] * 0.65 + e["smile"] * 0.35 * (e["smile"] > 0)
    upper = [(x, y - lift * max(0.0, 1 - abs(x - lift_x) / (0.6 * half))) for x, y in _curve(x0, x1, corner_y, top_mid)]
    lower = _curve(x0, x1, corner_y, bottom_mid)
    if e["mouth_open"] > 3:
        poly = upper + lower[::-1]
        cv2.fillPoly(img, [_pts(poly)], (60, 20, 30), aa, SUPERSAMPLE_SHIFT)
        cv2.polylines(img, [_pts(poly)], True, col, thick, aa, SUPERSAMPLE_SHIFT)
    else:
        cv2.polylines(img, [_pts(upper)], False, col, thick + 1, aa, SUPERSAMPLE_SHIFT)
    landmarks = np.array([eyes[0], eyes[1], (nx, ny), (x0, corner_y), (x1, corner_y)], np.float32)
    return img, mask, landmarks


def render_face(ident: Identity, label: int, intensity: float, pose: Pose, rng: np.random.Generator,
                cfg: SynthConfig = SynthConfig()) -> SyntheticFace:
    """Draw one expression of ``ident`` at ``intensity`` (0 neutral .. 1 peak) in ``pose``."""
    expr = EXPRESSIONS[FER2013_LABELS[label]]
    face, mask, lm = _draw_canonical(ident, expr, intensity, pose.yaw, rng, cfg.jitter)
    scale = pose.size / (2 * FACE_RY)
    m = cv2.getRotationMatrix2D((CANVAS / 2, CANVAS / 2), pose.roll, scale)
    m[0, 2] += pose.cx - CANVAS / 2
    m[1, 2] += pose.cy - CANVAS / 2
    size = cfg.image_size
    warped = cv2.warpAffine(face, m, (size, size), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    bg = ident.background if ident.background is not None else _random_background(rng, size)
    img = warped.astype(np.float32) * alpha + bg.astype(np.float32) * (1 - alpha)
    lm_scene = (np.c_[lm, np.ones(5)] @ m.T).astype(np.float32)

    # occlusion: a bar or a patch somewhere over the face, in a random colour
    if rng.random() < cfg.occlusion_prob:
        w = pose.size * rng.uniform(0.15, 0.45)
        h = pose.size * rng.uniform(0.08, 0.25)
        ox = pose.cx + rng.uniform(-0.4, 0.4) * pose.size - w / 2
        oy = pose.cy + rng.uniform(-0.4, 0.4) * pose.size - h / 2
        x0, y0 = int(max(0, ox)), int(max(0, oy))
        img[y0:int(max(0, oy + h)), x0:int(max(0, ox + w))] = rng.integers(0, 256, 3)

    # lighting: global gain and a linear gradient in a random direction, then sensor noise
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    ang = rng.uniform(0, 2 * math.pi)
    light = rng.uniform(*cfg.gain) * (1 + rng.uniform(0, cfg.gradient) * (np.cos(ang) * xx + np.sin(ang) * yy) * 2)
    img = img * light[..., None] + rng.normal(0, cfg.noise, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)

    # the box a detector would give: the face ellipse's extent, rotated and scaled
    corners = np.array([[CANVAS / 2 - ident.face_rx, CANVAS / 2 - ident.face_ry * 0.75],
                        [CANVAS / 2 + ident.face_rx, CANVAS / 2 - ident.face_ry * 0.75],
                        [CANVAS / 2 - ident.face_rx, CANVAS / 2 + ident.face_ry],
                        [CANVAS / 2 + ident.face_rx, CANVAS / 2 + ident.face_ry]])
    cs = np.c_[corners, np.ones(4)] @ m.T
    box = np.array([cs[:, 0].min(), cs[:, 1].min(), cs[:, 0].max(), cs[:, 1].max()], np.float32)
    return SyntheticFace(image=img, box=box, landmarks=lm_scene, label=label, intensity=intensity)


def render_image(label: int, rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> SyntheticFace:
    """A still image of a new random person showing ``label`` (index into FER2013_LABELS)."""
    ident = random_identity(rng, cfg)
    return render_face(ident, label, float(rng.uniform(*cfg.intensity)), random_pose(rng, cfg), rng, cfg)


def onset_peak_offset(num_frames: int, peak: int) -> np.ndarray:
    """Expression intensity per frame: 0 at both ends, rising to 1 at ``peak`` (smooth, raised-cosine ramps)."""
    idx = np.arange(num_frames, dtype=np.float64)
    up = np.where(idx <= peak, idx / max(peak, 1), (num_frames - 1 - idx) / max(num_frames - 1 - peak, 1))
    return (0.5 - 0.5 * np.cos(np.pi * np.clip(up, 0, 1))).astype(np.float32)


def render_sequence(label: int, num_frames: int, rng: np.random.Generator,
                    cfg: SynthConfig = SynthConfig()) -> tuple[list[SyntheticFace], int]:
    """A clip onset -> peak -> offset of one person with a slowly drifting pose; returns (frames, peak index)."""
    ident = random_identity(rng, cfg)
    start, end = random_pose(rng, cfg), random_pose(rng, cfg)
    peak = int(rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4)))
    levels = onset_peak_offset(num_frames, peak)
    frames = []
    for i, level in enumerate(levels):
        a = 0.25 * i / max(num_frames - 1, 1)  # drift a quarter of the way towards another pose
        pose = Pose(*(getattr(start, f) * (1 - a) + getattr(end, f) * a for f in ("cx", "cy", "size", "roll", "yaw")))
        frames.append(render_face(ident, label, float(level), pose, rng, cfg))
    return frames, peak
