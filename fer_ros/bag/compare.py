"""Live against offline on the same bag: do the node in a graph and the offline evaluator say the same thing?

Frames are matched by image header stamp; within a frame, faces are matched by the overlap of their boxes (ids can
differ once the live node has skipped frames, because its tracker then saw another sequence). Reported: frames both
processed, how many of those carry the same labels, faces compared and agreeing, the largest probability difference,
and what only one side processed (the live run's drops).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fer_ros.bag.evaluate import EvalRun
from fer_ros.bag.records import FaceRecord

MIN_MATCH_IOU = 0.5  # two boxes of one frame are the same face when they overlap at least this much


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _pairs(live: list[FaceRecord], offline: list[FaceRecord]) -> list[tuple[FaceRecord, FaceRecord]]:
    """Greedy best-overlap pairing of the faces of one frame."""
    candidates = sorted(((_iou(a.roi, b.roi), i, j) for i, a in enumerate(live) for j, b in enumerate(offline)),
                        reverse=True)
    used_live, used_offline, pairs = set(), set(), []
    for iou, i, j in candidates:
        if iou < MIN_MATCH_IOU or i in used_live or j in used_offline:
            continue
        used_live.add(i)
        used_offline.add(j)
        pairs.append((live[i], offline[j]))
    return pairs


def compare_runs(live: EvalRun, offline: EvalRun) -> dict[str, Any]:
    """Agreement of two runs over the frames both processed, and the live run's losses."""
    live_by_stamp = {r.stamp_ns: r for r in live.frames}
    offline_by_stamp = {r.stamp_ns: r for r in offline.frames}
    both = sorted(set(live_by_stamp) & set(offline_by_stamp))
    same_frames = faces = same_faces = count_mismatch = 0
    max_diff = 0.0
    disagreements = []
    for stamp in both:
        a, b = live_by_stamp[stamp], offline_by_stamp[stamp]
        pairs = _pairs(a.faces, b.faces)
        frame_same = len(a.faces) == len(b.faces) == len(pairs)
        count_mismatch += len(a.faces) != len(b.faces)
        for fa, fb in pairs:
            faces += 1
            if fa.label == fb.label:
                same_faces += 1
            else:
                frame_same = False
            if fa.probabilities.shape == fb.probabilities.shape and fa.probabilities.size:
                max_diff = max(max_diff, float(np.max(np.abs(fa.probabilities - fb.probabilities))))
        same_frames += frame_same
        if not frame_same and len(disagreements) < 5:
            disagreements.append({"stamp": stamp * 1e-9, "live": [f.label for f in a.faces],
                                  "offline": [f.label for f in b.faces]})
    return {
        "frames_both_processed": len(both),
        "frames_same_labels": same_frames,
        "frame_agreement": same_frames / len(both) if both else None,
        "faces_compared": faces,
        "faces_same_label": same_faces,
        "face_agreement": same_faces / faces if faces else None,
        "frames_with_other_face_count": count_mismatch,
        "max_probability_difference": max_diff if faces else None,
        "examples_of_disagreement": disagreements,
        "processed_live_only": len(set(live_by_stamp) - set(offline_by_stamp)),
        "processed_offline_only": len(set(offline_by_stamp) - set(live_by_stamp)),
        "live_dropped": live.ledger.as_dict()["dropped"],
        "live_dropped_reasons": dict(live.ledger.dropped),
        "offline_dropped": offline.ledger.as_dict()["dropped"],
    }
