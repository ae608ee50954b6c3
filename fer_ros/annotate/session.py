"""The annotation state machine: position, marks, flags and label, driven by key names. No GUI import.

The keys are the EMO2018 thesis tool's, plus label and jump keys:

====================  =====================================================================================
D / Right             next frame                    A / Left          previous frame
L / J                 10 frames forward / back      Home / End        first / last frame
S                     mark this frame: start, then peak, then end (in that order, never going backwards)
Z / Backspace         remove the last mark          W                 reset all marks, flags and the label
1..7                  emotion label (the card's order; FER2013: angry disgust fear happy sad surprise neutral)
G                     non-correlating expression    T                 abnormal limb behaviour
U                     low occlusion (> 30 % face)   P                 heavy occlusion (> 60 % face)
X                     other doubt                   E                 save the clip      Q / Esc   quit
====================  =====================================================================================

``handle_key`` returns what the caller must do (nothing, save, quit); ``take_clip`` turns the marks into a
``ClipRecord`` or says, in ``message``, what is missing. ``state()``/``restore()`` round-trip everything a person
has not saved yet, so a session resumes exactly where it stopped.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fer_ros.annotate.store import FLAG_NAMES, ClipRecord
from fer_ros.errors import ConfigError
from fer_ros.model_card import FER2013_LABELS

JUMP_FRAMES = 10  # J / L step: a third of a second at 30 Hz, quick to reach an onset without skipping it
MARK_NAMES = ("start", "peak", "end")  # the order S sets them in
FLAG_KEYS = {"g": "non_correlating", "t": "limb", "u": "low_occlusion", "p": "heavy_occlusion", "x": "other"}
FLAG_SHORT = {"non_correlating": "non-correlating", "limb": "limb", "low_occlusion": "occl>30%",
              "heavy_occlusion": "occl>60%", "other": "other"}
MAX_LABEL_KEYS = 9  # number keys 1..9 choose a label; FER2013 uses 1..7


class Action(enum.Enum):
    """What the caller has to do after a key."""

    NONE = "none"  # state changed (or not); redraw
    SAVE = "save"  # E: call take_clip() and store the record
    QUIT = "quit"  # Q / Esc: save the resume state and leave


@dataclass(frozen=True)
class Mark:
    index: int
    stamp: float


class AnnotationSession:
    """Where the person is in the recording and what they have marked for the clip being annotated."""

    def __init__(self, stamps: Sequence[float], labels: Sequence[str] = FER2013_LABELS, index: int = 0) -> None:
        if not 0 < len(labels) <= MAX_LABEL_KEYS:
            raise ConfigError(f"1..{MAX_LABEL_KEYS} labels can be chosen with number keys, got {len(labels)}: "
                              f"give at most {MAX_LABEL_KEYS} names with --labels")
        self.stamps = [float(s) for s in stamps]
        self.labels = tuple(str(label).lower() for label in labels)
        self.index = 0
        self.marks: list[Mark] = []
        self.flags: dict[str, bool] = dict.fromkeys(FLAG_NAMES, False)
        self.label: str | None = None
        self.message = ""  # one line for the window: what just happened or what is missing
        self.go_to(index)

    # --- navigation --------------------------------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return len(self.stamps)

    def go_to(self, index: int) -> None:
        self.index = max(0, min(int(index), self.frame_count - 1)) if self.frame_count else 0

    # --- keys ------------------------------------------------------------------------------------------------
    def handle_key(self, key: str) -> Action:
        """Apply one key (a lower-case name: "d", "home", "backspace", "1", ...); unknown keys are reported."""
        key = key.lower()
        self.message = ""
        moves = {"d": 1, "right": 1, "a": -1, "left": -1, "l": JUMP_FRAMES, "j": -JUMP_FRAMES}
        if key in moves:
            self.go_to(self.index + moves[key])
        elif key == "home":
            self.go_to(0)
        elif key == "end":
            self.go_to(self.frame_count - 1)
        elif key == "s":
            self._mark()
        elif key in ("z", "backspace"):
            self.message = f"removed {MARK_NAMES[len(self.marks) - 1]} mark" if self.marks else "no mark to remove"
            self.marks = self.marks[:-1]
        elif key == "w":
            self.reset()
            self.message = "marks, flags and label reset"
        elif key in FLAG_KEYS:
            name = FLAG_KEYS[key]
            self.flags[name] = not self.flags[name]
            self.message = f"{FLAG_SHORT[name]} {'set' if self.flags[name] else 'cleared'}"
        elif key.isdigit() and 1 <= int(key) <= len(self.labels):
            self.label = self.labels[int(key) - 1]
            self.message = f"label: {self.label}"
        elif key == "e":
            return Action.SAVE
        elif key in ("q", "escape"):
            return Action.QUIT
        else:
            self.message = f"key '{key}' does nothing (D/A step, S mark, 1-{len(self.labels)} label, E save, Q quit)"
        return Action.NONE

    def _mark(self) -> None:
        if not self.frame_count:
            self.message = "no frames to mark"
            return
        if len(self.marks) == len(MARK_NAMES):
            self.message = "start, peak and end are set: E saves, Z removes the end mark, W resets"
            return
        name = MARK_NAMES[len(self.marks)]
        if self.marks and self.index < self.marks[-1].index:
            self.message = (f"{name} cannot be before {MARK_NAMES[len(self.marks) - 1]} "
                            f"(frame {self.marks[-1].index}): step forward first")
            return
        self.marks.append(Mark(self.index, self.stamps[self.index]))
        self.message = f"{name} marked at frame {self.index}"

    def reset(self) -> None:
        """Forget the marks, flags and label of the clip being annotated (W, and after a save)."""
        self.marks = []
        self.flags = dict.fromkeys(FLAG_NAMES, False)
        self.label = None

    # --- clips -----------------------------------------------------------------------------------------------
    def mark(self, name: str) -> Mark | None:
        i = MARK_NAMES.index(name)
        return self.marks[i] if i < len(self.marks) else None

    def take_clip(self, clip_id: str) -> ClipRecord | None:
        """The marked clip as a record, and the marks cleared for the next one; None with ``message`` if incomplete.

        The label is kept for the next clip (people often mark several clips of the same expression in a row).
        """
        missing = [name for name in MARK_NAMES if self.mark(name) is None]
        if missing:
            self.message = f"cannot save: mark {', '.join(missing)} with S first"
            return None
        if self.label is None:
            self.message = f"cannot save: choose the emotion with keys 1-{len(self.labels)}"
            return None
        start, peak, end = self.marks
        record = ClipRecord(clip_id, self.label, start.stamp, end.stamp, peak.stamp, **self.flags)
        label = self.label
        self.reset()
        self.label = label
        self.message = f"saved {clip_id}: {label}, frames {start.index}..{end.index}"
        return record

    # --- resume ----------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to come back to this exact point (JSON-serialisable)."""
        return {"index": self.index, "frame_count": self.frame_count, "label": self.label,
                "marks": [[m.index, m.stamp] for m in self.marks], "flags": dict(self.flags), "message": self.message}

    def restore(self, state: dict[str, Any]) -> list[str]:
        """Take back a saved ``state()``; returns what could not be restored (e.g. marks outside this recording)."""
        problems: list[str] = []
        if state.get("frame_count") not in (None, self.frame_count):
            problems.append(f"the saved state was for {state.get('frame_count')} frames, the source has "
                            f"{self.frame_count}: position kept, marks checked against the stamps")
        self.go_to(int(state.get("index", 0)))
        self.message = str(state.get("message", ""))
        label = state.get("label")
        self.label = label if label in self.labels else None
        if label is not None and self.label is None:
            problems.append(f"saved label {label!r} is not one of {', '.join(self.labels)}")
        self.flags = {name: bool(state.get("flags", {}).get(name, False)) for name in FLAG_NAMES}
        self.marks = []
        for index, stamp in state.get("marks", [])[: len(MARK_NAMES)]:
            if 0 <= index < self.frame_count and abs(self.stamps[index] - float(stamp)) < 1e-6:
                self.marks.append(Mark(int(index), float(stamp)))
            else:  # later marks would change meaning (peak read as start): drop them too
                problems.append(f"saved marks from frame {index} ({stamp} s) on do not match this source: dropped")
                break
        return problems
