"""The interactive loop: source + session + store + window, one key at a time.

After every key the resume state is written (atomically), so closing the window, Q, a crash or a power cut loses at
most the key being pressed; E writes the clip to the record and label files at once (and exports it when asked).
A source that cannot be opened is shown as a message in the window until Q, not as a traceback.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from fer_ros.annotate.session import Action, AnnotationSession
from fer_ros.annotate.sources import FrameSource, open_source
from fer_ros.annotate.store import AnnotationStore, export_clip
from fer_ros.annotate.window import AnnotationWindow, ClipSpan, render_error, render_view
from fer_ros.errors import FerRosError

WINDOW_TITLE = "fer-ros annotate"  # tests and scripts find the window by this name


def clip_spans(source: FrameSource, store: AnnotationStore) -> list[ClipSpan]:
    """Saved clips as frame index ranges (clips whose stamps hit no frame of this source are not drawn)."""
    spans = []
    for r in store.records:
        a, b = source.index_of_stamp(r.start), source.index_of_stamp(r.end)
        if a is not None and b is not None:
            spans.append(ClipSpan(a, b, r.label))
    return spans


def _show_error_until_quit(window: AnnotationWindow, title: str, lines: Sequence[str]) -> None:
    window.show(render_error(title, lines))
    while window.next_key() not in ("q", "escape"):
        pass


def run_window(source_path: Path, topic: str | None, out_dir: Path | None, labels: Sequence[str],
               export_root: Path | None = None, predictions: Path | None = None,
               predictions_topic: str | None = None) -> int:
    """Annotate ``source_path`` in a window until Q; 0 when the source was annotated, 2 when it could not open."""
    window = AnnotationWindow(WINDOW_TITLE)
    try:
        try:
            source = open_source(source_path, topic)
        except FerRosError as exc:
            _show_error_until_quit(window, f"cannot open {source_path}", str(exc).splitlines())
            return 2
        with source:
            if len(source) == 0:
                _show_error_until_quit(window, f"{source.description} has no frames", source.problems)
                return 2
            return _annotate(window, source, out_dir, labels, export_root, predictions, predictions_topic)
    finally:
        window.close()


def written_summary(store: AnnotationStore, export_root: Path | None) -> str:
    """What a session leaves on disk, printed when the window closes (Q)."""
    p = store.paths
    text = (f"annotate: {len(store.records)} clips saved in {p.tsv} (record) and {p.csv} (labels for "
            f"fer-ros eval-bag --labels); resume state {p.state}")
    return text + (f"; clips exported under {export_root}" if export_root is not None else "")


def _annotate(window: AnnotationWindow, source: FrameSource, out_dir: Path | None, labels: Sequence[str],
              export_root: Path | None, predictions: Path | None, predictions_topic: str | None) -> int:
    store = AnnotationStore.open(source.path, out_dir)
    session = AnnotationSession(source.stamps, labels)
    state = store.load_state()
    notes = list(source.problems) + list(store.problems)
    if state:
        notes += session.restore(state)
    track = None
    if predictions is not None:
        from fer_ros.annotate.predictions import load_predictions

        try:
            track = load_predictions(predictions, predictions_topic)
            notes += track.problems
            no_overlap = track.overlap_problem(source.stamps, source.frame_period / 2)
            if no_overlap:  # said once: on the console and in the window's message line
                print(f"fer-ros annotate: warning: {no_overlap}", file=sys.stderr, flush=True)
                notes.insert(0, no_overlap)
        except FerRosError as exc:
            notes.append(f"predictions not shown: {exc}".splitlines()[0])
    resumed = f"resumed at frame {session.index}, {len(store.records)} clips saved" if state else ""
    session.message = "; ".join(([resumed] if resumed else []) + notes[:2]
                                + ([f"(+{len(notes) - 2} more problems)"] if len(notes) > 2 else []))
    spans = clip_spans(source, store)
    readable = [f.image for f in map(source.read, range(min(len(source), 5))) if f.image is not None]
    frame_size = readable[0].shape[:2] if readable else None  # unreadable frames get a message area this size
    store.save_state(session.state())  # the state file always describes what the window shows
    while True:
        frame = source.read(session.index)
        prediction = track.at(frame.stamp, 0.5 * source.frame_period) if track is not None else None
        window.show(render_view(frame, session, source.description, spans, prediction, track is not None,
                                frame_size))
        action = session.handle_key(window.next_key())
        if action is Action.SAVE:
            marks = list(session.marks)  # frame indices of start, peak, end (stamps may repeat in a bag)
            record = session.take_clip(store.next_clip_id())
            if record is not None:
                store.add(record)
                spans = clip_spans(source, store)
                if export_root is not None:
                    result = export_clip(source, record, marks[0].index, marks[2].index, marks[1].index,
                                         export_root)
                    session.message += f"; exported {result.frames} frames"
                    if result.unreadable:
                        session.message += f" ({len(result.unreadable)} unreadable left out)"
        store.save_state(session.state())
        if action is Action.QUIT:
            print(written_summary(store, export_root), flush=True)
            return 0
