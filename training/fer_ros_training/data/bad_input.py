"""Bad input found while reading a data set: counted, reported with file and line, then skipped or fatal.

Every loader reports a problem through one ``BadInputLog``; the user chooses with ``on_bad_input: skip|stop`` in the
training config whether the run goes on without the item or stops at the first one. Nothing is dropped silently:
the log keeps every record, prints a summary and writes ``bad_input.csv`` into the run folder.
"""
from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fer_ros.errors import FerRosError

LOG = logging.getLogger("fer_ros_training.data")
POLICIES = ("skip", "stop")
MAX_LOGGED = 20  # individual warnings printed before the log only counts (the CSV keeps all of them)

# kinds of problems, used as the summary's keys
CORRUPT_IMAGE = "corrupt_image"
BAD_ROW = "bad_row"
BAD_COLUMNS = "bad_columns"
UNKNOWN_LABEL = "unknown_label"
EMPTY_CLASS = "empty_class"
NO_FACE = "no_face"
CLIP_NO_FACE = "clip_no_face"
SHORT_CLIP = "short_clip"
BAD_SPLIT = "bad_split"


class BadInputError(FerRosError, ValueError):
    """A data item is unusable and the run was configured with ``on_bad_input: stop``."""


@dataclass(frozen=True)
class BadInput:
    """One problem: what kind, where (file and 1-based line or frame, 0 when it has none) and what to do."""

    kind: str
    file: str
    line: int
    message: str

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class BadInputLog:
    """Collects problems under one policy; ``report`` raises ``BadInputError`` right away when the policy is stop."""

    policy: str = "skip"
    records: list[BadInput] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise BadInputError(f"on_bad_input must be one of {POLICIES}, got '{self.policy}'")

    def report(self, kind: str, file: Path | str, message: str, line: int = 0, fatal: bool = False) -> None:
        """Record a problem. Stops the run (raises) when the policy is ``stop`` or the problem is ``fatal``."""
        rec = BadInput(kind, str(file), int(line), message)
        self.records.append(rec)
        if self.policy == "stop" or fatal:
            hint = "" if fatal else " (set data.on_bad_input: skip to count such items and go on)"
            raise BadInputError(f"{rec.where()}: {message}{hint}")
        if len(self.records) <= MAX_LOGGED:
            LOG.warning("%s: %s (skipped)", rec.where(), message)
        elif len(self.records) == MAX_LOGGED + 1:
            LOG.warning("more bad input follows; only counting from now on (see bad_input.csv)")

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.kind for r in self.records))

    def summary(self) -> str:
        if not self.records:
            return "bad input: none"
        return "bad input: " + ", ".join(f"{k} {n}" for k, n in sorted(self.counts().items()))

    def write_csv(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "file", "line", "message"])
            for r in self.records:
                w.writerow([r.kind, r.file, r.line, r.message])
        return path
