"""The annotation window: OpenCV HighGUI showing the frame and, below it, everything the person has to see.

``render_view`` draws one picture (pure numpy/OpenCV drawing, no window): the frame scaled to fit, a timeline of
the recording with the saved clips and the pending marks, and text lines with frame index, stamp, marks, label,
flags, the node's prediction for this frame (red when it disagrees with the label here, green when it agrees), the
last message and the keys. An unreadable frame, or a source that cannot be opened at all, is drawn as a message in
the same place, so the person sees what is wrong instead of a crash. ``AnnotationWindow`` only shows pictures and
returns key names; the state lives in ``session.AnnotationSession``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_ros.annotate.predictions import FacePrediction
from fer_ros.annotate.session import FLAG_KEYS, FLAG_SHORT, MARK_NAMES, AnnotationSession
from fer_ros.annotate.sources import Frame
from fer_ros.errors import ConfigError

MAX_VIEW_WIDTH = 960  # frame area bounds in pixels: fits a laptop screen with the panel below
MAX_VIEW_HEIGHT = 600
MIN_VIEW_WIDTH = 960  # narrower frames are centred on a panel this wide, so the text lines fit
MIN_VIEW_HEIGHT = 360  # smaller frames (a 160x120 video) are scaled up to this height: faces must be readable
LINE_HEIGHT = 26  # pixels per text line of the panel (Hershey simplex at FONT_SCALE)
FONT_SCALE = 0.6
TIMELINE_HEIGHT = 18  # the bar with clips, marks and the cursor
PANEL_LINES = 9
CHAR_WIDTH = 11  # average pixels per character at FONT_SCALE, to wrap messages
KEY_POLL_MS = 100  # waitKey slice: short enough to notice the window being closed

BACKGROUND = (32, 32, 32)  # BGR colours of the panel
TEXT = (235, 235, 235)
DIM = (150, 150, 150)
MESSAGE = (80, 220, 255)  # yellow: what just happened
ERROR = (60, 60, 235)  # red: errors, disagreement
AGREE = (80, 200, 80)  # green: prediction agrees with the label here
MARK_COLORS = {"start": (80, 200, 80), "peak": (60, 200, 255), "end": (60, 60, 235)}
CLIP_COLOR = (200, 140, 60)  # saved clips on the timeline
PENDING_COLOR = (120, 120, 120)  # span between pending marks
CURSOR_COLOR = (255, 255, 255)

# waitKeyEx codes of non-character keys: X11 keysyms (OpenCV's Qt and GTK backends) and Win32 virtual keys << 16.
SPECIAL_KEYS = {0xFF50: "home", 0xFF57: "end", 0xFF51: "left", 0xFF53: "right", 0xFF52: "up", 0xFF54: "down",
                0xFF08: "backspace", 0xFF1B: "escape", 0x240000: "home", 0x230000: "end", 0x250000: "left",
                0x270000: "right", 8: "backspace", 27: "escape", 127: "backspace"}


@dataclass(frozen=True)
class ClipSpan:
    """A saved clip as frame indices, for the timeline and for "what label is here"."""

    start: int
    end: int
    label: str


def key_name(code: int) -> str | None:
    """waitKeyEx code -> lower-case key name ("d", "home", "1"...), None for no key or one without a name."""
    if code < 0:
        return None
    if code in SPECIAL_KEYS:
        return SPECIAL_KEYS[code]
    if 32 < code < 127:
        return chr(code).lower()
    return None


def label_here(session: AnnotationSession, spans: Sequence[ClipSpan]) -> str | None:
    """The label the current frame has: a saved clip covering it, else the clip being marked (from its start)."""
    for span in spans:
        if span.start <= session.index <= span.end:
            return span.label
    start, end = session.mark("start"), session.mark("end")
    if session.label and start is not None and start.index <= session.index <= (end.index if end else 1 << 62):
        return session.label
    return None


def _text(img: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int] = TEXT) -> int:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, color, 1, cv2.LINE_AA)
    return x + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)[0][0]


def _fit(image: np.ndarray) -> np.ndarray:
    """The frame at a size that fits the screen: large ones scaled down, small ones scaled up to MIN_VIEW_HEIGHT."""
    h, w = image.shape[:2]
    scale = min(MAX_VIEW_WIDTH / w, MAX_VIEW_HEIGHT / h, max(1.0, MIN_VIEW_HEIGHT / h))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    elif scale > 1.0:  # pixels kept sharp: the annotator judges the face, not a smoothed guess of it
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_NEAREST)
    return image


def wrap(text: str, width: int) -> list[str]:
    """``text`` cut at spaces into lines of at most ``width`` characters (existing line breaks kept)."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        while len(paragraph) > width:
            cut = paragraph.rfind(" ", 0, width)
            cut = cut if cut > 0 else width
            lines.append(paragraph[:cut])
            paragraph = paragraph[cut:].lstrip()
        lines.append(paragraph)
    return lines


def _message_area(lines: Sequence[str], width: int, height: int, color: tuple[int, int, int]) -> np.ndarray:
    area = np.full((height, width, 3), 48, np.uint8)
    wrapped = [part for line in lines for part in wrap(line, (width - 32) // CHAR_WIDTH)]
    y = max(30, height // 2 - LINE_HEIGHT * len(wrapped) // 2)
    for line in wrapped:
        _text(area, line, 16, y, color)
        y += LINE_HEIGHT
    return area


def render_view(frame: Frame, session: AnnotationSession, title: str, spans: Sequence[ClipSpan] = (),
                prediction: list[FacePrediction] | None = None, has_predictions: bool = False,
                frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """The whole window content for the current state, BGR uint8.

    ``frame_size`` (h, w) sizes the message area of an unreadable frame like the readable ones, so the window does
    not jump; ``has_predictions`` says whether a prediction line is shown at all.
    """
    if frame.image is not None:
        view = _fit(frame.image)
        if prediction:
            view = view.copy()  # _fit may return the cached frame itself
            _draw_predicted_boxes(view, prediction, view.shape[1] / frame.image.shape[1], label_here(session, spans))
    else:
        h, w = _fit(np.zeros(frame_size or (480, 640), np.uint8)).shape[:2]
        view = _message_area([f"frame {frame.index} cannot be shown:", frame.error or "unknown decoding error",
                              "D / A step over it; it is counted as unreadable"], max(w, MIN_VIEW_WIDTH), h, ERROR)
    width = max(view.shape[1], MIN_VIEW_WIDTH)
    panel_h = TIMELINE_HEIGHT + PANEL_LINES * LINE_HEIGHT + 10
    canvas = np.full((view.shape[0] + panel_h, width, 3), BACKGROUND, np.uint8)
    x0 = (width - view.shape[1]) // 2
    canvas[: view.shape[0], x0: x0 + view.shape[1]] = view
    _draw_timeline(canvas, view.shape[0] + 2, session, spans)
    y = view.shape[0] + TIMELINE_HEIGHT + LINE_HEIGHT
    n = session.frame_count
    _text(canvas, f"{title}   frame {frame.index} / {max(n - 1, 0)}   stamp {frame.stamp:.6f} s", 8, y)
    y += LINE_HEIGHT
    x = _text(canvas, "marks:", 8, y, DIM)
    for name in MARK_NAMES:
        mark = session.mark(name)
        x = _text(canvas, f"  {name} {mark.index if mark else '--'}", x, y,
                  MARK_COLORS[name] if mark else DIM)
    here = label_here(session, spans)
    _text(canvas, f"label: {session.label or '--'} (keys 1-{len(session.labels)})   here: {here or '--'}",
          x + 24, y)
    y += LINE_HEIGHT
    x = _text(canvas, "keys:", 8, y, DIM)
    for number, name in enumerate(session.labels[:9], start=1):  # which key is which label, the chosen one lit
        x = _text(canvas, f"  {number} {name}", x, y, MESSAGE if name == session.label else TEXT)
    y += LINE_HEIGHT
    x = _text(canvas, "flags:", 8, y, DIM)
    for key, name in FLAG_KEYS.items():
        on = session.flags[name]
        x = _text(canvas, f"  {key.upper()} {FLAG_SHORT[name]}{' [x]' if on else ' [ ]'}", x, y,
                  MESSAGE if on else DIM)
    y += LINE_HEIGHT
    if has_predictions:
        _draw_prediction(canvas, y, prediction, here)
    y += LINE_HEIGHT
    is_error = session.message.startswith("cannot") or "cannot be" in session.message
    _text(canvas, session.message, 8, y, ERROR if is_error else MESSAGE)
    y += LINE_HEIGHT
    _text(canvas, "D/A step  J/L 10  Home/End  S mark start, peak, end  Z undo", 8, y, DIM)
    y += LINE_HEIGHT
    _text(canvas, f"1-{min(len(session.labels), 9)} label  G T U P X flags  E save  W reset  Q quit", 8, y, DIM)
    return canvas


def _draw_predicted_boxes(view: np.ndarray, prediction: list[FacePrediction], scale: float,
                          here: str | None) -> None:
    """The node's face boxes on the frame (scaled as the frame is shown), the largest one coloured by whether it
    agrees with the label here, with its label above it."""
    for i, face in enumerate(prediction):
        x, y, w, h = (round(v * scale) for v in face.box)
        color = DIM if i or here is None else (AGREE if face.label == here else ERROR)
        cv2.rectangle(view, (x, y), (x + w, y + h), color, 2)
        cv2.putText(view, f"{face.label} {face.confidence:.2f}", (x, max(14, y - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    FONT_SCALE, color, 1, cv2.LINE_AA)


def _draw_prediction(canvas: np.ndarray, y: int, prediction: list[FacePrediction] | None, here: str | None) -> None:
    if prediction is None:
        _text(canvas, "node: no prediction for this frame", 8, y, DIM)
        return
    if not prediction:
        _text(canvas, "node: no face found", 8, y, ERROR if here else DIM)
        return
    top = prediction[0]
    color = DIM if here is None else (AGREE if top.label == here else ERROR)
    verdict = "" if here is None else ("  agrees" if top.label == here else f"  DISAGREES with {here}")
    others = f"  (+{len(prediction) - 1} more faces)" if len(prediction) > 1 else ""
    cv2.rectangle(canvas, (2, y - LINE_HEIGHT + 6), (6, y + 4), color, -1)
    _text(canvas, f"node: {top.label} {top.confidence:.2f} (face {top.face_id}){verdict}{others}", 12, y, color)


def _draw_timeline(canvas: np.ndarray, y: int, session: AnnotationSession, spans: Sequence[ClipSpan]) -> None:
    width, n = canvas.shape[1], max(session.frame_count, 1)

    def x_of(index: int) -> int:
        return 4 + round(index * (width - 9) / max(n - 1, 1))

    bottom = y + TIMELINE_HEIGHT - 6
    cv2.rectangle(canvas, (4, y), (width - 5, bottom), (70, 70, 70), -1)
    for span in spans:
        cv2.rectangle(canvas, (x_of(span.start), y), (max(x_of(span.end), x_of(span.start) + 1), bottom),
                      CLIP_COLOR, -1)
    if session.marks:
        last = session.marks[-1].index if len(session.marks) < len(MARK_NAMES) else session.marks[2].index
        cv2.rectangle(canvas, (x_of(session.marks[0].index), y + 4), (x_of(max(last, session.marks[0].index)),
                      bottom - 4), PENDING_COLOR, -1)
    for name, mark in zip(MARK_NAMES, session.marks):
        cv2.line(canvas, (x_of(mark.index), y), (x_of(mark.index), bottom), MARK_COLORS[name], 2)
    cx = x_of(session.index)
    cv2.line(canvas, (cx, y - 1), (cx, bottom + 2), CURSOR_COLOR, 1)


def render_error(title: str, lines: Sequence[str]) -> np.ndarray:
    """A window-sized picture that explains why nothing can be shown (and that Q quits)."""
    return _message_area([title, ""] + list(lines) + ["", "Q quits."], MIN_VIEW_WIDTH, 360, ERROR)


class AnnotationWindow:
    """An OpenCV HighGUI window that shows pictures and returns key names."""

    def __init__(self, title: str) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError("no display to open the annotation window on (DISPLAY is not set): run it in a desktop "
                              "session or under Xvfb, or use --headless with a label file")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)

    def next_key(self) -> str:
        """Block until a named key is pressed; closing the window counts as Q."""
        while True:
            code = cv2.waitKeyEx(KEY_POLL_MS)
            name = key_name(code)
            if name is not None:
                return name
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return "q"

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
