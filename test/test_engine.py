"""TensorRT engines up to the TensorRT call (names, profiles, polygraphy configs, sidecars, stale-engine refusal, CLI
checks) and engine validation, run here on real exported models; the build itself needs tensorrt and a GPU and its
test skips with the reason.
"""
from __future__ import annotations

import argparse
import importlib.util

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from fer_ros.errors import BackendUnavailableError, ConfigError, EngineMismatchError
from fer_ros.inference import create_backend
from fer_ros.inference.engine_meta import GpuInfo, check_engine_meta, write_engine_meta
from fer_ros.model_card import card_from_dict, load_card
from fer_ros_training.export import tensorrt_build as tb
from fer_ros_training.export.card_fields import card_template
from fer_ros_training.export.face_samples import builtin_faces
from fer_ros_training.export.onnx_export import export_model
from fer_ros_training.export.validate import compare
from fer_ros_training.networks import build_network

ORIN = GpuInfo("Orin", "8.7")  # a Jetson AGX Orin as engine_meta reports it
RTX = GpuInfo("NVIDIA GeForce RTX 3080", "8.6")
HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    torch.manual_seed(0)
    card = card_template("mx_test", "mini_xception", 64, 64, "gray", [0.5], [0.5])
    out = tmp_path_factory.mktemp("single")
    export_model(build_network("mini_xception").eval(), card, out, builtin_faces(card, 4).inputs)
    return load_card(out)


@pytest.fixture(scope="module")
def fan(tmp_path_factory):
    torch.manual_seed(0)
    card = card_template("fan_test", "fan_tiny", 64, 64, "rgb", [0.5] * 3, [0.25] * 3, window=4)
    out = tmp_path_factory.mktemp("fan")
    export_model(build_network("fan_tiny", window=4).eval(), card, out, builtin_faces(card, 8).inputs)
    return load_card(out)


def test_engine_names_carry_model_role_precision_tensorrt_and_gpu():
    assert tb.engine_name("rmn_fer2013", "fp16", "10.3.0", ORIN) == "rmn_fer2013.fp16.trt10.3.0.orin-sm87.engine"
    assert tb.engine_name("fan", "int8", "8.6.1", RTX, role="embedder", dla_core=1) == \
        "fan.embedder.int8.dla1.trt8.6.1.nvidia-geforce-rtx-3080-sm86.engine"
    assert tb.engine_tag("fp16", "10.3.0", ORIN) == "fp16.trt10.3.0.orin-sm87"
    with pytest.raises(ConfigError, match="precision"):
        tb.engine_name("x", "fp8", "10.3.0", ORIN)


def test_profiles_cover_batch_one_to_n_and_the_fan_window(single, fan):
    shapes = tb.onnx_input_shapes(single.path())
    assert shapes == {"input": (-1, 1, 64, 64)}
    assert tb.profile_shapes(shapes, 8, 4) == {"input": ((1, 1, 64, 64), (4, 1, 64, 64), (8, 1, 64, 64))}
    agg = tb.onnx_input_shapes(fan.path("aggregator"))
    prof = tb.profile_shapes(agg, 16, frames=4)
    assert prof["embeddings"] == ((1, 1, 64), (16, 4, 64), (16, 4, 64))
    assert prof["mask"] == ((1, 1), (16, 4), (16, 4))
    with pytest.raises(ConfigError, match="dynamic axis 2"):
        tb.profile_shapes({"input": (-1, 1, -1, 64)}, 8)


def test_plans_for_single_and_fan_models(single, fan):
    (plan,) = tb.plan_builds(single, tb.EngineBuildOptions("fp16", max_batch=8), "10.3.0", ORIN)
    assert plan.engine_path == single.directory / "tensorrt" / "fp16.trt10.3.0.orin-sm87" / \
        "mx_test.fp16.trt10.3.0.orin-sm87.engine"
    assert plan.meta_shapes() == {"input": {"min": [1, 1, 64, 64], "opt": [8, 1, 64, 64], "max": [8, 1, 64, 64]}}
    emb, agg = tb.plan_builds(fan, tb.EngineBuildOptions("int8", max_batch=4), "8.6.1", RTX)
    assert (emb.role, emb.precision) == ("embedder", "int8")
    assert (agg.role, agg.precision) == ("aggregator", "fp16") and "INT8 gains nothing" in agg.note
    with pytest.raises(ConfigError, match="strongly typed"):
        tb.plan_builds(single, tb.EngineBuildOptions("fp16"), "11.0.0", RTX)
    assert tb.plan_builds(single, tb.EngineBuildOptions("fp32"), "11.0.0", RTX)[0].precision == "fp32"


@pytest.mark.parametrize("bad, match", [
    (dict(precision="bf16"), "precision"), (dict(max_batch=0), "max batch"),
    (dict(max_batch=4, opt_batch=8), "opt batch"), (dict(workspace_mb=1), "workspace"),
    (dict(dla_core=-1), "DLA core")])
def test_build_options_are_checked(bad, match):
    with pytest.raises(ConfigError, match=match):
        tb.EngineBuildOptions(**bad).validated()


def test_polygraphy_config_is_built_without_a_gpu(single):
    from polygraphy.backend.trt import CreateConfig, PostprocessConfig

    shapes = tb.profile_shapes(tb.onnx_input_shapes(single.path()), 8, 2)
    profile = tb.polygraphy_profile(shapes)
    assert profile["input"].min == (1, 1, 64, 64) and profile["input"].opt == (2, 1, 64, 64)
    loader = tb.builder_config(tb.EngineBuildOptions("fp16", max_batch=8, dla_core=0), profile)
    assert isinstance(loader, PostprocessConfig)
    create = loader._config
    assert isinstance(create, CreateConfig)
    assert create.fp16 and not create.int8 and create.use_dla and create.allow_gpu_fallback
    assert create.profiles == [profile]
    with pytest.raises(ConfigError, match="calibration"):
        tb.builder_config(tb.EngineBuildOptions("int8"), profile)


def test_engine_card_points_at_engines_and_their_onnx(single, tmp_path):
    options = tb.EngineBuildOptions("fp16")
    plans = tb.plan_builds(single, options, "10.3.0", ORIN, out_dir=tmp_path / "trt")
    card = tb.engine_card(single, plans, options, "10.3.0", ORIN)
    assert card.format == "tensorrt" and card.files["model"] == plans[0].engine_path.name
    assert (card.directory / card.files["onnx_model"]).resolve() == single.path().resolve()
    assert card.extra["tensorrt"]["precision"] == {"model": "fp16"}
    reread = card_from_dict(card.to_dict(), card.directory)
    assert reread.files == card.files and reread.labels == single.labels


def test_stale_engine_is_refused_with_the_reason(single, tmp_path):
    """The sidecar the builder writes makes the backend refuse an engine built for another target or ONNX."""
    options = tb.EngineBuildOptions("fp16")
    (plan,) = tb.plan_builds(single, options, "8.6.1", ORIN, out_dir=tmp_path)
    plan.engine_path.write_bytes(b"serialized engine bytes")  # never deserialized by the sidecar check
    write_engine_meta(plan.engine_path, model_id=single.id, precision=plan.precision, onnx_path=plan.onnx_path,
                      input_shapes=plan.meta_shapes(), tensorrt_version="8.6.1", gpu=ORIN)
    check_engine_meta(plan.engine_path, single, onnx_path=single.path(), tensorrt_version="8.6.1", gpu=ORIN)
    with pytest.raises(EngineMismatchError, match="TensorRT 8.6.1, running TensorRT 10.3.0"):
        check_engine_meta(plan.engine_path, single, tensorrt_version="10.3.0", gpu=ORIN)
    with pytest.raises(EngineMismatchError, match="RTX 3080"):
        check_engine_meta(plan.engine_path, single, tensorrt_version="8.6.1", gpu=RTX)
    # re-exporting the model changes the ONNX: the old engine no longer belongs to it
    other = tmp_path / "reexport"
    export_model(build_network("mini_xception").eval(), single, other, builtin_faces(single, 2).inputs)
    with pytest.raises(EngineMismatchError, match="sha256"):
        check_engine_meta(plan.engine_path, single, onnx_path=other / "model.onnx", tensorrt_version="8.6.1",
                          gpu=ORIN)


def _args(**kw) -> argparse.Namespace:
    from fer_ros_training.export import engine_cli

    parser = argparse.ArgumentParser()
    engine_cli.add_arguments(parser)
    argv = ["--model", kw.pop("model", "x")]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return parser.parse_args(argv)


def test_build_engine_command_checks_arguments_before_tensorrt(single, capsys):
    from fer_ros.cli import main
    from fer_ros_training.export.engine_cli import options_from_args

    with pytest.raises(ConfigError, match="calibration-data"):
        options_from_args(_args(precision="int8"))
    with pytest.raises(ConfigError, match="only used with --precision int8"):
        options_from_args(_args(precision="fp16", calibration_data="/tmp"))
    with pytest.raises(ConfigError, match="--dla-core"):
        options_from_args(_args(no_gpu_fallback=True))
    assert options_from_args(_args(dla_core=1, max_batch=4)).dla_core == 1
    assert main(["build-engine", "--model", str(single.directory), "--max-batch", "0"]) == 2
    assert "max batch" in capsys.readouterr().err
    if not HAVE_TENSORRT:  # the honest answer on a machine without TensorRT
        assert main(["build-engine", "--model", str(single.directory)]) == 2
        assert "TensorRT is not installed" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_TENSORRT, reason="tensorrt is not installed (no NVIDIA GPU on this machine)")
def test_fp16_engine_builds_and_validates_against_onnx(single, tmp_path):
    card, builds = tb.build_engines(single, tb.EngineBuildOptions("fp16", max_batch=4), out_dir=tmp_path / "e")
    assert builds[0].engine_path.is_file() and builds[0].meta_path.is_file()
    faces = builtin_faces(single, 16)
    report = compare(create_backend(single, "onnxruntime", device="cpu"), create_backend(load_card(card.directory),
                     "tensorrt"), faces.inputs, faces.labels)
    assert report.ok, report.lines()


# --- validation (engine vs ONNX), exercised here with ONNX Runtime as the candidate --------------------------------
def _poisoned_copy(card, tmp_path, value: float):
    """The same model with its classifier weights scaled by ``value``, or one of them NaN (what broken FP16 engines
    produce)."""
    model = onnx.load(str(card.path()))
    init = next(i for i in model.graph.initializer if "classifier" in i.name and i.name.endswith("weight"))
    arr = numpy_helper.to_array(init).copy()
    if np.isnan(value):
        arr.flat[0] = value
    else:
        arr *= value
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    out = tmp_path / f"poisoned_{value}"
    out.mkdir()
    onnx.save(model, str(out / "model.onnx"))
    card.save(out)
    return load_card(out)


def test_validation_passes_identical_models_and_fails_nan(single, tmp_path):
    faces = builtin_faces(single, 12)
    labels = np.arange(12) % 7  # labels for the accuracy bookkeeping
    reference = create_backend(single, "onnxruntime", device="cpu")
    same = compare(reference, create_backend(single, "onnxruntime", device="cpu"), faces.inputs, labels)
    assert same.ok and same.max_prob_diff == 0.0 and same.agreement == 1.0 and same.accuracy_drop == 0.0
    nan = compare(reference, create_backend(_poisoned_copy(single, tmp_path, float("nan")), "onnxruntime",
                                            device="cpu"), faces.inputs, labels)
    assert not nan.ok and nan.nan_faces == 12 and "NaN" in nan.lines()[-1]


def test_validation_fails_a_model_that_drifts(single, tmp_path):
    faces = builtin_faces(single, 12)
    drifted = create_backend(_poisoned_copy(single, tmp_path, 1e4), "onnxruntime", device="cpu")
    report = compare(create_backend(single, "onnxruntime", device="cpu"), drifted, faces.inputs, faces.labels,
                     max_prob_diff=0.05)
    assert not report.ok and report.max_prob_diff > 0.05 and report.reference_accuracy is None


def test_fan_validation_runs_clips(fan):
    faces = builtin_faces(fan, 8)
    a = create_backend(fan, "onnxruntime", device="cpu")
    report = compare(a, create_backend(fan, "onnxruntime", device="cpu"), faces.inputs, faces.labels)
    assert report.ok and report.faces == 8


def test_validate_engine_command(single, capsys):
    from fer_ros.cli import main

    rc = main(["validate-engine", str(single.directory), "--backend", "onnxruntime"])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out and "32 faces" in out
    if not HAVE_TENSORRT:
        assert main(["validate-engine", str(single.directory)]) == 2
        assert "TensorRT" in capsys.readouterr().err
    # the old spelling still works, with a warning naming the positional form
    assert main(["validate-engine", "--engine", str(single.directory), "--backend", "onnxruntime"]) == 0
    assert "--engine is deprecated, use the positional ENGINE" in capsys.readouterr().err
    assert main(["validate-engine", "--backend", "onnxruntime"]) == 2
    assert "no engine given" in capsys.readouterr().err
