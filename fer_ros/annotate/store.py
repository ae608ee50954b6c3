"""What the annotation tool writes, and how it writes it without ever losing earlier work.

Per source (``<source>`` = the bag directory or video file name, beside it or in ``--out-dir``):

- ``<source>.annotations.tsv``: the EMO2018 thesis's record, one line per clip (docs/formats.md);
- ``<source>.labels.csv``: the interval label file ``start,end,label`` that ``fer-ros eval-bag`` reads;
- ``<source>.annotate-state.json``: where the person stopped and the marks not yet saved, to resume.

Every file is written whole to a temporary file in the same directory, flushed to disk and moved over the old one
with ``os.replace``: a crash or a full disk leaves the previous version intact, never half a file. Clips are
exported into the clip-folder layout the FAN data loader reads (``ROOT/<label>/<clip_id>/000000.png ...`` +
``clip.yaml``), built in a hidden folder and renamed into place when complete.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import yaml

from fer_ros.errors import ConfigError

TSV_SUFFIX = ".annotations.tsv"
CSV_SUFFIX = ".labels.csv"
STATE_SUFFIX = ".annotate-state.json"
FLAG_NAMES = ("non_correlating", "limb", "low_occlusion", "heavy_occlusion", "other")  # the thesis's five doubts
TSV_COLUMNS = ("clip", "label", "start", "end", "peak") + FLAG_NAMES  # docs/formats.md, in this order
INTERVAL_COLUMNS = ("start", "end", "label")  # docs/formats.md interval label file (no face column: one person)
EXPORT_SCRATCH = ".annotate-tmp"  # folder under the clip root where exports are built before the rename
CLIP_ID_PATTERN = re.compile(r"^(.*)_(\d+)$")  # "<source stem>_<n>": n continues after a resume


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip: its label, start/peak/end frame stamps in seconds and the thesis's doubt flags."""

    clip: str
    label: str
    start: float
    end: float
    peak: float  # NaN when the label file had no peak (an interval CSV)
    non_correlating: bool = False
    limb: bool = False
    low_occlusion: bool = False
    heavy_occlusion: bool = False
    other: bool = False

    def __post_init__(self) -> None:  # numpy scalars in, plain floats/bools out: YAML and CSV writers need them
        for name in ("start", "end", "peak"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in FLAG_NAMES:
            object.__setattr__(self, name, bool(getattr(self, name)))

    @property
    def flags(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in FLAG_NAMES}


def format_stamp(stamp: float) -> str:
    """Seconds as the shortest text that reads back to the same float ("" for NaN).

    A float64 holds sensor-time stamps (~1.7e9 s) to ~0.2 us; printing more digits would invent precision.
    """
    return repr(float(stamp)) if math.isfinite(stamp) else ""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def records_to_tsv(records: list[ClipRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for r in records:
        writer.writerow([r.clip, r.label, format_stamp(r.start), format_stamp(r.end), format_stamp(r.peak)]
                        + [int(v) for v in r.flags.values()])
    return out.getvalue()


def records_to_interval_csv(records: list[ClipRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INTERVAL_COLUMNS)
    for r in sorted(records, key=lambda r: (r.start, r.end)):
        writer.writerow([format_stamp(r.start), format_stamp(r.end), r.label])
    return out.getvalue()


def label_delimiter(text: str) -> str:
    """The delimiter of a label file's text: a tab in its first line makes it the thesis TSV, else the interval CSV."""
    first = text.splitlines()[0] if text.strip() else ""
    return "\t" if "\t" in first else ","


def read_label_file(path: Path) -> tuple[list[ClipRecord], list[str]]:
    """Clips of a thesis TSV record or an interval CSV (peak NaN), and one problem line per row that is not read.

    Rows that cannot be read are reported, never silently skipped. The format is told by the header.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"label file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    delimiter = label_delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return [], [f"{path.name}: empty file"]
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in INTERVAL_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"{path.name}: header {rows[0]} lacks {missing}; expected the thesis TSV "
                          f"({' '.join(TSV_COLUMNS)}) or the interval CSV ({','.join(INTERVAL_COLUMNS)})")
    col = {name: header.index(name) for name in header}
    records: list[ClipRecord] = []
    problems: list[str] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            records.append(_row_to_record(row, col, f"{path.stem}_{len(records):04d}"))
        except (ValueError, IndexError) as exc:
            problems.append(f"{path.name} line {line_no}: {exc}: {delimiter.join(row)!r}")
    return records, problems


def _row_to_record(row: list[str], col: dict[str, int], default_id: str) -> ClipRecord:
    def cell(name: str, default: str = "") -> str:
        return row[col[name]].strip() if name in col and col[name] < len(row) else default

    label = cell("label")
    if not label:
        raise ValueError("no label")
    start, end = float(cell("start")), float(cell("end"))
    peak_text = cell("peak")
    peak = float(peak_text) if peak_text else math.nan
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError("start/end are not finite numbers")
    flags = {}
    for name in FLAG_NAMES:
        value = cell(name, "0")
        if value not in ("0", "1", ""):
            raise ValueError(f"flag {name} is {value!r}, not 0 or 1")
        flags[name] = value == "1"
    return ClipRecord(cell("clip") or default_id, label.lower(), start, end, peak, **flags)


@dataclass
class OutputPaths:
    """Where the files of one source go."""

    tsv: Path
    csv: Path
    state: Path

    @classmethod
    def for_source(cls, source: Path, out_dir: Path | None = None) -> OutputPaths:
        source = Path(source)
        base = (Path(out_dir) if out_dir else source.parent) / source.name
        return cls(Path(f"{base}{TSV_SUFFIX}"), Path(f"{base}{CSV_SUFFIX}"), Path(f"{base}{STATE_SUFFIX}"))


@dataclass
class AnnotationStore:
    """The saved clips of one source and the resume state; every change is written through atomically."""

    paths: OutputPaths
    clip_prefix: str
    records: list[ClipRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rows of an existing record file that could not be read
    backup: Path | None = None  # copy of a record file with unreadable rows, made before rewriting it

    @classmethod
    def open(cls, source: Path, out_dir: Path | None = None) -> AnnotationStore:
        """Load what earlier sessions saved for ``source`` (nothing if this is the first)."""
        paths = OutputPaths.for_source(source, out_dir)
        store = cls(paths, re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).stem) or "clip")
        if paths.tsv.is_file():
            store.records, store.problems = read_label_file(paths.tsv)
        return store

    def next_clip_id(self) -> str:
        numbers = [int(m.group(2)) for r in self.records if (m := CLIP_ID_PATTERN.match(r.clip))]
        return f"{self.clip_prefix}_{max(numbers, default=-1) + 1:04d}"

    def add(self, record: ClipRecord) -> None:
        """Append a clip and rewrite the record and label files (earlier lines are kept as they were)."""
        self.records.append(record)
        self.write()

    def write(self) -> None:
        if self.problems and self.backup is None and self.paths.tsv.is_file():
            # the file has rows this store could not read: keep it whole before the first rewrite drops them
            self.backup = self.paths.tsv.with_name(f"{self.paths.tsv.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            shutil.copy2(self.paths.tsv, self.backup)
        atomic_write_text(self.paths.tsv, records_to_tsv(self.records))
        atomic_write_text(self.paths.csv, records_to_interval_csv(self.records))

    def save_state(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.paths.state, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def load_state(self) -> dict[str, Any] | None:
        """The last saved state, or None (and a problem noted) when there is none or it is unreadable."""
        if not self.paths.state.is_file():
            return None
        try:
            state = json.loads(self.paths.state.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.problems.append(f"{self.paths.state.name}: unreadable resume state ({exc}); starting at frame 0")
            return None
        return state if isinstance(state, dict) else None


@dataclass
class ClipExport:
    """What exporting one clip wrote."""

    clip: str
    directory: Path
    frames: int
    peak_index: int | None  # within the clip's frames, None when the record has no peak
    unreadable: list[int]  # source frame indices that could not be decoded (left out of the clip)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["directory"] = str(self.directory)
        return d


def export_clip(source: Any, record: ClipRecord, start_index: int, end_index: int, peak_index: int | None,
                root: Path) -> ClipExport:
    """Write frames ``start_index..end_index`` of ``source`` as ``root/<label>/<clip>/NNNNNN.png`` + clip.yaml.

    The folder is built under ``root/.annotate-tmp`` and renamed into place when complete; an existing export of
    the same clip is replaced only then. Unreadable frames are left out, listed in the result and in clip.yaml.
    """
    final = Path(root) / record.label / record.clip
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(root) / EXPORT_SCRATCH  # hidden at the top: data loaders skip it; same file system as final
    scratch.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{record.clip}.", dir=scratch))
    try:
        written, unreadable, peak_in_clip = 0, [], None
        for index in range(start_index, end_index + 1):
            frame = source.read(index)
            if frame.image is None:
                unreadable.append(index)
                continue
            if index == peak_index:
                peak_in_clip = written
            if not cv2.imwrite(str(work / f"{written:06d}.png"), frame.image):
                raise OSError(f"could not write frame {index} into {work}")
            written += 1
        meta = {"label": record.label, "source": str(source.description), "start": record.start, "end": record.end,
                "peak": peak_in_clip, "peak_stamp": None if math.isnan(record.peak) else record.peak,
                "frames": written, "flags": record.flags, "unreadable_frames": unreadable}
        (work / "clip.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{record.clip}.old.", dir=scratch))
            os.replace(final, old / record.clip)
        os.replace(work, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(OSError):  # no empty scratch folder left behind (another export may be using it)
            scratch.rmdir()
    return ClipExport(record.clip, final, written, peak_in_clip, unreadable)
