"""ONNX export of every network family: checker, onnxruntime-vs-torch parity on real faces, cards the node can load.

Faces are real (scikit-image's public-domain astronaut and LFW faces) through the core's alignment; networks are the
small configurations (tiny widths, 48-64 px inputs) so the whole file runs in well under a minute, plus one import of
a full-size reference RMN checkpoint (the heaviest test here, ~30 s).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fer_ros.inference import create_backend
from fer_ros.model_card import load_card
from fer_ros_training.export.card_fields import card_template
from fer_ros_training.export.face_samples import builtin_faces
from fer_ros_training.export.onnx_export import PARITY_ATOL, ExportError, export_model, ort_session
from fer_ros_training.networks import build_network

torch.manual_seed(0)

# family -> (network name, builder kwargs, input side, colour): small configurations of every family
FAMILIES = {
    "mini_xception": ("mini_xception", {}, 64, "gray"),
    "rmn": ("rmn_tiny", {}, 64, "rgb"),
    "resnet": ("resnet18", {}, 64, "rgb"),
    "densenet": ("densenet121", {}, 64, "rgb"),
    "deep_emotion": ("deep_emotion", {}, 48, "gray"),
}


def _card(network: str, side: int, color: str, window: int = 1):
    channels = 1 if color == "gray" else 3
    return card_template(f"test_{network}", network, side, side, color, [0.5] * channels, [0.25] * channels,
                         window=window)


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics so every branch matters (a fresh net has mean 0 / var 1 everywhere)."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_exports_with_parity_and_runs_in_the_node_backend(family, tmp_path):
    network, kwargs, side, color = FAMILIES[family]
    model = _randomize_bn(build_network(network, **kwargs))
    card = _card(network, side, color)
    faces = builtin_faces(card, 6).inputs
    result = export_model(model, card, tmp_path, faces, output="logits")
    (report,) = result.parity
    assert report.ok and report.max_abs_diff <= PARITY_ATOL and report.batch_sizes == (6, 1)
    loaded = load_card(result.card_path)
    assert loaded.files == {"model": "model.onnx"} and loaded.output == "logits" and loaded.architecture == network
    # dynamic batch: a batch size the export never saw, through the backend the node runs
    backend = create_backend(loaded, "onnxruntime", device="cpu")
    got = backend.predict(faces[:3])
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(faces[:3])), -1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_probabilities_output_puts_softmax_in_the_graph(tmp_path):
    model = _randomize_bn(build_network("rmn_tiny"))
    card = _card("rmn_tiny", 64, "rgb")
    faces = builtin_faces(card, 4).inputs
    result = export_model(model, card, tmp_path, faces)
    assert result.card.output == "probabilities"
    out = ort_session(result.files["model"]).run(None, {"input": faces})[0]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(out, torch.softmax(model(torch.from_numpy(faces)), -1).numpy(), atol=1e-6)


def test_ensemble_exports_as_one_probability_graph(tmp_path):
    from fer_ros_training.networks.ensemble import ProbabilityEnsemble

    members = [_randomize_bn(build_network("mini_xception")), _randomize_bn(build_network("mini_xception"))]
    torch.nn.init.normal_(members[1].classifier.weight)
    ensemble = ProbabilityEnsemble(members).eval()
    card = _card("mini_xception", 64, "gray")
    faces = builtin_faces(card, 4).inputs
    with pytest.raises(ExportError, match="outputs probabilities"):
        export_model(ensemble, card, tmp_path / "logits", faces, output="logits")
    result = export_model(ensemble, card, tmp_path / "ens", faces)
    out = ort_session(result.files["model"]).run(None, {"input": faces})[0]
    x = torch.from_numpy(faces)
    with torch.no_grad():
        want = (torch.softmax(members[0](x), -1) + torch.softmax(members[1](x), -1)).numpy() / 2
    np.testing.assert_allclose(out, want, atol=1e-6)


def _astronaut_landmarks68() -> np.ndarray:
    """The 68 iBUG landmarks of the astronaut portrait from mediapipe's face mesh (real, not invented)."""
    import mediapipe as mp
    from skimage import data

    from fer_ros_training.features import mesh_to_ibug68, normalize_landmarks

    img = data.astronaut()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = mesh.process(img).multi_face_landmarks
    assert found, "mediapipe found no face in the astronaut portrait"
    pts = np.array([(p.x * img.shape[1], p.y * img.shape[0]) for p in found[0].landmark])
    return normalize_landmarks(mesh_to_ibug68(pts))


def test_multimodal_fusion_exports_with_named_inputs(tmp_path):
    from fer_ros_training.features import hog_features

    model = _randomize_bn(build_network("fusion"))
    card = _card("fusion", 48, "gray")
    faces = builtin_faces(card, 4).inputs
    gray_uint8 = np.clip((faces[:, 0] * 0.25 + 0.5) * 255, 0, 255).astype(np.uint8)
    extra = {"landmarks": torch.from_numpy(np.repeat(_astronaut_landmarks68()[None], 4, axis=0)),
             "hog": torch.from_numpy(np.stack([hog_features(g) for g in gray_uint8]))}
    result = export_model(model, card, tmp_path, faces, output="logits", extra_inputs=extra)
    assert result.parity[0].ok
    session = ort_session(result.files["model"])
    assert [i.name for i in session.get_inputs()] == ["input", "landmarks", "hog"]
    assert result.card.extra["onnx"]["inputs"]["model"] == ["input", "landmarks", "hog"]


def test_fan_exports_two_graphs_that_reproduce_the_clip_output(tmp_path):
    window = 4
    model = _randomize_bn(build_network("fan_tiny", window=window))
    card = _card("fan_tiny", 64, "rgb", window=window)
    faces = builtin_faces(card, 8).inputs
    result = export_model(model, card, tmp_path, faces)
    assert set(result.files) == {"embedder", "aggregator"}
    assert [r.role for r in result.parity] == ["embedder", "aggregator", "clip"]
    assert all(r.ok for r in result.parity)
    loaded = load_card(result.card_path)
    assert loaded.window == window and loaded.embedding_dim == model.embedder.embedding_dim
    # what the node does per track: embed frames as they come, aggregate a partly filled window
    backend = create_backend(loaded, "onnxruntime", device="cpu")
    emb = backend.embed(faces)
    clips = np.stack([emb[:4], emb[4:8]])
    mask = np.array([[True] * 4, [True, True, False, False]])
    got = backend.aggregate(clips, mask)
    x = torch.from_numpy(faces).reshape(2, 4, *faces.shape[1:])
    with torch.no_grad():
        want = torch.softmax(model(x, torch.from_numpy(mask)), -1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # fewer frames than the window (a new track) also matches
    got3 = backend.aggregate(emb[None, :3], np.ones((1, 3), bool))
    with torch.no_grad():
        want3 = torch.softmax(model(x[:1, :3]), -1).numpy()
    np.testing.assert_allclose(got3, want3, atol=1e-5)


class _BatchBakedIn(nn.Module):
    """Traces wrongly: the batch size becomes a constant of the graph, so batch 1 differs from torch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64 * 64, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[0])
        return self.fc(x.flatten(1)) * n


def test_export_fails_and_removes_the_file_when_onnxruntime_disagrees(tmp_path):
    card = _card("custom", 64, "gray")
    faces = builtin_faces(card, 4).inputs
    with pytest.raises(ExportError, match="does not reproduce torch"):
        export_model(_BatchBakedIn(), card, tmp_path, faces, output="logits")
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "model.yaml").exists()


def test_export_refuses_faces_that_do_not_match_the_card(tmp_path):
    card = _card("mini_xception", 64, "gray")
    with pytest.raises(ExportError, match="the card wants"):
        export_model(build_network("mini_xception"), card, tmp_path, np.zeros((2, 3, 64, 64), np.float32))


# --- the fer-ros export command --------------------------------------------------------------------------------
def _trainer_checkpoint(path: Path, network: str = "rmn_tiny") -> nn.Module:
    """A checkpoint as the trainer writes it: model, optimizer, scheduler, epoch, config (+ metrics)."""
    from fer_ros_training.train_config import config_from_dict

    cfg = config_from_dict({"name": "t", "network": {"name": network}, "data": {"root": "/data/rafdb"},
                            "input": {"height": 64, "width": 64, "color": "rgb", "mean": [0.5] * 3,
                                      "std": [0.25] * 3}, "crop": {"scale": 1.2}})
    model = _randomize_bn(build_network(network))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": None, "epoch": 3,
                "config": cfg.to_dict(), "metrics": {"val_accuracy": 0.61}}, path)
    return model


def test_export_command_writes_card_with_provenance(tmp_path, capsys):
    from fer_ros.cli import main
    from fer_ros.model_card import file_sha256

    ckpt = tmp_path / "best.pt"
    model = _trainer_checkpoint(ckpt)
    out = tmp_path / "rmn_raf"
    assert main(["export", str(ckpt), "--out", str(out), "--training-data", "RAF-DB basic",
                 "--metrics", "test_accuracy=0.58", "--license", "CC-BY-4.0"]) == 0
    assert "ok" in capsys.readouterr().out
    card = load_card(out)
    assert card.id == "rmn_raf" and card.architecture == "rmn_tiny" and card.crop.scale == 1.2
    assert card.input.mean == (0.5, 0.5, 0.5) and card.output == "probabilities"
    assert card.extra["checkpoint"] == {"file": "best.pt", "sha256": file_sha256(ckpt)}
    assert card.extra["training_data"] == "RAF-DB basic" and card.extra["license"] == "CC-BY-4.0"
    assert card.extra["metrics"] == {"val_accuracy": 0.61, "test_accuracy": 0.58}
    faces = builtin_faces(card, 2).inputs
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(faces)), -1).numpy()
    np.testing.assert_allclose(create_backend(card, "onnxruntime", device="cpu").predict(faces), want, atol=1e-5)


def test_export_command_errors_say_what_to_fix(tmp_path, capsys):
    from fer_ros.cli import main

    bare = tmp_path / "bare.pt"
    torch.save(build_network("rmn_tiny").state_dict(), bare)
    assert main(["export", str(bare), "--out", str(tmp_path / "x")]) == 2
    assert "--network" in capsys.readouterr().err
    assert main(["export", str(bare), "--out", str(tmp_path / "x"), "--network", "resnet18"]) == 2
    assert "do not fit" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # a bare state dict with the right --network exports
    assert main(["export", str(bare), "--out", str(tmp_path / "ok"), "--network", "rmn_tiny",
                 "--input-size", "64", "64"]) == 0


def test_import_rmn_reproduces_the_reference_network(tmp_path):
    """A checkpoint of the reference code's own network (random init, random BN statistics) -> our ONNX."""
    sys.path.insert(0, str(Path(__file__).parent))
    from rmn_reference import load_reference_resmasking, randomize_norm_layers

    from fer_ros.cli import main

    torch.manual_seed(0)
    reference = load_reference_resmasking().resmasking_dropout1(in_channels=3, num_classes=7)
    randomize_norm_layers(reference.state_dict())
    reference.eval()
    ckpt = tmp_path / "Z_resmasking_dropout1_rot30"
    torch.save({"net": reference.state_dict(), "best_val_acc": 0.73}, ckpt)
    out = tmp_path / "rmn_fer2013"
    assert main(["import-rmn", str(ckpt), "--out", str(out), "--input-size", "64"]) == 0
    card = load_card(out)
    assert card.architecture == "rmn" and card.input.color == "gray" and card.crop.scale == 1.1
    assert card.extra["metrics"]["best_val_acc"] == 0.73 and "MIT" in card.extra["license"]
    faces = builtin_faces(card, 2).inputs  # gray, pixel/255 as the reference feeds it
    got = ort_session(card.path()).run(None, {"input": faces})[0]
    with torch.no_grad():  # the reference eats the gray face replicated into three channels
        want = torch.softmax(reference(torch.from_numpy(faces).repeat(1, 3, 1, 1)), -1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
