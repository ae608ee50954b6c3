"""Model lookup by id and by path, and the search order of the model folders."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fer_ros.errors import ModelCardError
from fer_ros.registry import (DEFAULT_MODEL, MODEL_PATH_ENV, SHARE_SUBDIR, list_models, resolve_model,
                              search_dirs)

SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"


def _copy_default(parent: Path, new_id: str | None = None) -> Path:
    """A copy of the default model under ``parent/<id>`` (card id changed when ``new_id`` is given)."""
    src = SOURCE_MODELS / DEFAULT_MODEL
    dst = parent / (new_id or DEFAULT_MODEL)
    dst.mkdir(parents=True)
    shutil.copy(src / "model.onnx", dst / "model.onnx")
    data = yaml.safe_load((src / "model.yaml").read_text())
    data["id"] = new_id or data["id"]
    data["source"] = {"note": "copy for a registry test"}
    (dst / "model.yaml").write_text(yaml.safe_dump(data))
    return dst


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(MODEL_PATH_ENV, raising=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    return monkeypatch


def test_default_id_resolves_to_the_source_tree(clean_env):
    card = resolve_model()
    assert card.id == DEFAULT_MODEL
    assert card.directory.resolve() == (SOURCE_MODELS / DEFAULT_MODEL).resolve()
    assert DEFAULT_MODEL in list_models()


@pytest.mark.parametrize("form", ["folder", "yaml", "model file"])
def test_paths_load_directly(clean_env, tmp_path, form):
    d = _copy_default(tmp_path, "my_model")
    arg = {"folder": d, "yaml": d / "model.yaml", "model file": d / "model.onnx"}[form]
    card = resolve_model(str(arg))
    assert card.id == "my_model" and card.directory == d


def test_user_path_overrides_the_source_tree(clean_env, tmp_path):
    override = _copy_default(tmp_path / "mine")
    clean_env.setenv(MODEL_PATH_ENV, str(tmp_path / "mine"))
    assert resolve_model(DEFAULT_MODEL).directory == override
    assert search_dirs()[0] == tmp_path / "mine"
    assert list_models()[DEFAULT_MODEL] == override / "model.yaml"


def test_installed_share_folder_is_searched(clean_env, tmp_path):
    prefix = tmp_path / "install" / "fer_ros"
    _copy_default(prefix / SHARE_SUBDIR, "installed_only")
    clean_env.setenv("AMENT_PREFIX_PATH", f"/nonexistent:{prefix}")
    assert resolve_model("installed_only").directory == prefix / SHARE_SUBDIR / "installed_only"


def test_unknown_id_lists_what_exists(clean_env):
    with pytest.raises(ModelCardError, match=rf"no model 'rmn_affectnet' \(known: .*{DEFAULT_MODEL}"):
        resolve_model("rmn_affectnet")


@pytest.mark.parametrize("arg", ["/nonexistent", "/nonexistent/model.yaml", "models/typo", "~/no_such_model"])
def test_a_missing_path_says_it_does_not_exist_and_what_is_accepted(clean_env, arg):
    with pytest.raises(ModelCardError) as info:
        resolve_model(arg)
    text = str(info.value)
    assert f"model path {Path(arg).expanduser()} does not exist" in text, text
    assert f"known: {DEFAULT_MODEL}" in text and str(SOURCE_MODELS) in text, text  # the ids, and where they are
    assert "model.yaml" in text and "model folder" in text, text  # and the path forms
    assert "no model card at" not in text, text


def test_empty_name_is_an_error(clean_env):
    with pytest.raises(ModelCardError, match="empty model name"):
        resolve_model("  ")


def test_a_folder_without_card_is_skipped_by_id(clean_env, tmp_path):
    (tmp_path / "half" / "broken").mkdir(parents=True)
    clean_env.setenv(MODEL_PATH_ENV, str(tmp_path / "half"))
    with pytest.raises(ModelCardError, match="no model 'broken'"):
        resolve_model("broken")


def test_find_engines_reports_sidecars(clean_env, tmp_path):
    from fer_ros.inference.engine_meta import GpuInfo, write_engine_meta
    from fer_ros.registry import find_engines

    d = _copy_default(tmp_path / "mine", "with_engines")
    (d / "good.engine").write_bytes(b"x")
    write_engine_meta(d / "good.engine", model_id="with_engines", precision="fp16", onnx_path=d / "model.onnx",
                      input_shapes={"input": {"min": [1, 1, 64, 64], "opt": [4, 1, 64, 64], "max": [8, 1, 64, 64]}},
                      tensorrt_version="10.3.0", gpu=GpuInfo("Orin", "8.7"))
    (d / "stale.engine").write_bytes(b"x")
    clean_env.setenv(MODEL_PATH_ENV, str(tmp_path / "mine"))
    found = {p.name: text for p, text in find_engines()}
    assert found["good.engine"] == "with_engines model, fp16, TensorRT 10.3.0, Orin (sm 8.7)"
    assert found["stale.engine"].startswith("unusable: engine") and "no sidecar" in found["stale.engine"]


@pytest.mark.parametrize("edit,field", [
    (lambda c: c["input"].update(height="sixty-four"), "input.height"),
    (lambda c: c["input"].update(mean=0.5), "input.mean"),
    (lambda c: c.update(input=None), "input"),
    (lambda c: c["temporal"].update(window="x"), "temporal.window"),
    (lambda c: c["crop"].update(scale="big"), "crop.scale"),
    (lambda c: c.update(labels="happy"), "labels"),
])
def test_a_wrongly_typed_card_field_is_refused_naming_it_and_the_fix(clean_env, tmp_path, edit, field):
    source = resolve_model(DEFAULT_MODEL).directory
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    card = yaml.safe_load((folder / "model.yaml").read_text())
    edit(card)
    (folder / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    with pytest.raises(ModelCardError, match=rf"{field} is .*, it must be .*write it like") as info:
        resolve_model(str(folder / "model.yaml"))
    assert "\n" not in str(info.value)


def test_integers_where_numbers_are_expected_are_taken(clean_env, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(resolve_model(DEFAULT_MODEL).directory, folder)
    card = yaml.safe_load((folder / "model.yaml").read_text())
    card["crop"]["scale"], card["input"]["mean"], card["input"]["std"] = 1, [0], [1]
    (folder / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    loaded = resolve_model(str(folder))
    assert loaded.crop.scale == 1.0 and loaded.input.mean == (0.0,) and loaded.input.std == (1.0,)
