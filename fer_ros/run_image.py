"""``fer-ros run-image``: run the perception core on image files (or a bundled sample) and print every face found.

Each image is an unrelated still: the face mesh runs in static mode and every face is reported on first sight.
Unreadable images are reported and counted; the exit code is 1 when any image failed, else 0.

    fer-ros run-image photo.jpg group.png            # default model and detector
    fer-ros run-image --sample --json                # the astronaut composed into a 640x480 frame
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer_ros.datatypes import FrameResult
from fer_ros.errors import ConfigError, FrameError
from fer_ros.faces.detector import DETECTOR_BACKENDS, DETECTOR_MODELS

TOP_K = 3  # labels printed per face in text mode


def _read(path: Path) -> np.ndarray | None:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def result_to_dict(result: FrameResult, source: str) -> dict:
    """A JSON-ready summary of one frame's result."""
    return {
        "source": source, "model": result.model_id, "image_size": list(result.image_size),
        "timings_ms": {k: round(v, 3) for k, v in result.timings.as_dict().items()},
        "faces": [{"face_id": f.face_id, "box": [round(float(v), 1) for v in f.box], "label": f.label,
                   "confidence": round(f.confidence, 4),
                   "probabilities": {lab: round(float(p), 4) for lab, p in zip(result.labels, f.probabilities)}}
                  for f in result.faces],
    }


def _drawing_path(out: Path, source: str, count: int) -> Path:
    """OUT itself for a single image, OUT/<image name>_faces.jpg for several."""
    if count == 1 and out.suffix:
        return out
    return out / f"{Path(source.replace(':', '_')).stem}_faces.jpg"


def _save_drawing(frame: np.ndarray, result: FrameResult, path: Path) -> None:
    import cv2

    from fer_ros.visualize import draw_results

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), draw_results(frame, result)):
        raise ConfigError(f"cannot write {path}: give --save a file name with an image suffix (.jpg, .png)")
    print(f"drawn: {path}", file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, help="image files (anything OpenCV reads)")
    parser.add_argument("--sample", action="store_true", help="also run the bundled astronaut sample frame")
    parser.add_argument("--model", default=None, help="model id or path (default: the default model)")
    parser.add_argument("--backend", default="auto", help="auto | onnxruntime | tensorrt | torch")
    parser.add_argument("--detector", default="auto", choices=DETECTOR_BACKENDS,
                        help="face detector, as the node's detector.backend (default: auto = retinaface, else "
                             "mediapipe, else opencv)")
    parser.add_argument("--detector-model", default="short", choices=DETECTOR_MODELS,
                        help="mediapipe only: short or full range (default: short, as the node)")
    parser.add_argument("--no-mesh", action="store_true", help="use the detector's keypoints, not the face mesh")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    parser.add_argument("--save", type=Path, metavar="OUT",
                        help="write each image with what was found drawn on it (boxes, landmarks, labels): to the "
                             "file OUT for one image, into the folder OUT as <name>_faces.jpg for several")


def run(args: argparse.Namespace) -> int:
    from fer_ros.faces.detector import DetectorConfig
    from fer_ros.pipeline import EmotionPipeline, PipelineConfig
    from fer_ros.registry import DEFAULT_MODEL
    from fer_ros.tracking import TrackerConfig

    if not args.images and not args.sample:
        raise ConfigError("no image given: give image files or --sample")
    config = PipelineConfig(model=args.model or DEFAULT_MODEL, backend=args.backend,
                            detector=DetectorConfig(backend=args.detector, model=args.detector_model,
                                                    use_mesh=not args.no_mesh, static_images=True, parallel=False),
                            tracker=TrackerConfig(min_hits=1))
    frames: list[tuple[str, np.ndarray | None]] = [(str(p), _read(p)) for p in args.images]
    if args.sample:
        from fer_ros import samples

        frames.append(("sample:astronaut", samples.one_face().bgr))
    failed = 0
    with EmotionPipeline(config) as pipeline:
        if not args.json:
            print(f"model {pipeline.model_id} on {pipeline.backend_name}; detector {pipeline.detector_name}")
        for source, frame in frames:
            pipeline.reset()  # unrelated stills: no tracking across them
            if frame is None:
                failed += 1
                print(f"{source}: cannot read this image (missing, or not a format OpenCV decodes)", file=sys.stderr)
                continue
            try:
                result = pipeline.process(frame, 0.0, "bgr")
            except FrameError as exc:
                failed += 1
                print(f"{source}: {exc}", file=sys.stderr)
                continue
            if args.save is not None:
                _save_drawing(frame, result, _drawing_path(args.save, source, len(frames)))
            if args.json:
                print(json.dumps(result_to_dict(result, source)))
                continue
            print(f"{source}: {len(result.faces)} face(s), {result.timings.total_ms:.1f} ms")
            for f in result.faces:
                if not f.labelled:
                    box = ", ".join(f"{v:.0f}" for v in f.box)
                    print(f"  face {f.face_id} box ({box}): no label (narrower than detector.min_face_size "
                          f"{config.detector.min_face_size} px)")
                    continue
                order = np.argsort(f.probabilities)[::-1][:TOP_K]
                top = ", ".join(f"{result.labels[i]} {f.probabilities[i]:.2f}" for i in order)
                box = ", ".join(f"{v:.0f}" for v in f.box)
                print(f"  face {f.face_id} box ({box}): {f.label} ({top})")
    if failed:
        print(f"{failed} of {len(frames)} image(s) failed", file=sys.stderr)
    return 1 if failed else 0
