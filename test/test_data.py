"""Training data on files: FER2013 CSV, image folders, clip folders, K-segment sampling, the face cache (core
alignment, real mediapipe), the train/eval presets, and bad input counted, reported with file and line, skip or stop."""
from __future__ import annotations

import csv
import shutil

import cv2
import numpy as np
import yaml
import pytest

from fer_ros.datatypes import Detection
from fer_ros.faces.align import align_batch, crop_face
from fer_ros.model_card import FER2013_LABELS, CropSpec, InputSpec, card_from_dict
from fer_ros_training.data.annotations import read_faces
from fer_ros_training.data.bad_input import BadInputError, BadInputLog
from fer_ros_training.data.clips import load_clip_folders, segment_indices
from fer_ros_training.data.config import DataConfig
from fer_ros_training.data.datasets import ClipDataset, FaceImageDataset
from fer_ros_training.data.face_cache import CropRecipe, FaceCache
from fer_ros_training.data.fer2013 import load_fer2013
from fer_ros_training.data.image_folders import load_image_folders
from fer_ros_training.data.items import FrameRef, ImageItem, LabelResolver, seeded_split
from fer_ros_training.data.prepare import prepare_data
from fer_ros_training.data.synthetic_files import write_clip_folders, write_fer2013_csv, write_image_folders
from fer_ros_training.data.transforms import AugmentConfig, augment, eval_preset, train_preset

SPEC = InputSpec(64, 64, "rgb", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
RECIPE = CropRecipe.from_specs(SPEC, CropSpec(1.0, True))
RESOLVER = LabelResolver(FER2013_LABELS)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folders(tmp_path_factory.mktemp("img") / "root", per_class=4, seed=0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clip_folders(tmp_path_factory.mktemp("clips") / "root", per_class=2, frames=6, seed=0, video_every=4)


def _card(crop_scale: float = 1.0):
    return card_from_dict({"id": "t", "files": {"model": "m.onnx"}, "labels": list(FER2013_LABELS),
                           "input": {"height": 64, "width": 64, "color": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3},
                           "crop": {"scale": crop_scale, "rotate": True}})


# --- FER2013 --------------------------------------------------------------------------------------------------------
def test_fer2013_rows_and_usage(tmp_path):
    path = write_fer2013_csv(tmp_path / "fer.csv", per_class=5)
    bad = BadInputLog("stop")
    items = load_fer2013(path, RESOLVER, bad)
    assert len(items) == 35 and not bad.records
    assert {i.split for i in items} == {"train", "val", "test"}
    assert items[0].pixels.shape == (48, 48) and items[0].source.endswith(":2")
    faces = [FaceCache(RECIPE, bad, None).align_image(i) for i in items[:3]]
    assert faces[0].crop.shape == (64, 64, 3) and faces[0].landmarks is None


def test_fer2013_bad_rows_are_counted_with_their_line(tmp_path):
    path = tmp_path / "fer.csv"
    good = " ".join(["128"] * 2304)
    path.write_text("emotion,pixels,Usage\n"
                    f"3,{good},Training\n"
                    f"3,{' '.join(['1'] * 100)},Training\n"  # 10x10: a smaller square image is fine
                    f"9,{good},Training\n"  # emotion out of range
                    f"2,1 2 x,Training\n"  # not numbers
                    f"4,{good},Validation\n"  # unknown Usage
                    f"5,{' '.join(['1'] * 99)},PrivateTest\n")  # not square
    bad = BadInputLog("skip")
    items = load_fer2013(path, RESOLVER, bad)
    assert len(items) == 2
    assert sorted(r.line for r in bad.records) == [4, 5, 6, 7]
    assert bad.counts() == {"bad_row": 4}
    with pytest.raises(BadInputError, match=r"fer.csv:4"):
        load_fer2013(path, RESOLVER, BadInputLog("stop"))


def test_fer2013_wrong_columns_stop_even_when_skipping(tmp_path):
    path = tmp_path / "fer.csv"
    path.write_text("label,image,Usage\n3,1 2 3 4,Training\n")
    with pytest.raises(BadInputError, match=r"no column\(s\) \['emotion', 'pixels'\].*found \['label', 'image'"):
        load_fer2013(path, RESOLVER, BadInputLog("skip"))


# --- image folders ----------------------------------------------------------------------------------------------------
def test_image_folders_use_the_split_file(images):
    bad = BadInputLog("stop")
    items = load_image_folders(images, RESOLVER, bad)
    assert len(items) == 28 and not bad.records
    with open(images / "split.csv") as f:
        listed = {r["path"]: r["split"] for r in csv.DictReader(f)}
    for it in items:
        assert it.split == listed[str(it.frame.path.relative_to(images))]
        assert FER2013_LABELS[it.label] == it.frame.path.parent.name


def test_seeded_split_is_stratified_and_reproducible():
    labels = [k for k in range(7) for _ in range(20)]
    a = seeded_split(labels, {"val": 0.1, "test": 0.2}, seed=3)
    assert a == seeded_split(labels, {"val": 0.1, "test": 0.2}, seed=3)
    assert a != seeded_split(labels, {"val": 0.1, "test": 0.2}, seed=4)
    for k in range(7):
        mine = [s for s, lab in zip(a, labels) if lab == k]
        assert mine.count("val") == 2 and mine.count("test") == 4


def test_label_names_synonyms_and_map():
    r = LabelResolver(FER2013_LABELS, {"contempt": "disgust"})
    assert r("Happiness") == 3 and r("SURPRISED") == 5 and r("anger") == 0 and r("contempt") == 1
    assert r("confused") is None


def test_corrupt_image_empty_class_unknown_class(tmp_path, images):
    root = tmp_path / "root"
    shutil.copytree(images, root)
    (root / "split.csv").unlink()
    (root / "faces.csv").unlink()  # the real detector runs on the rest
    (root / "happy" / "broken.png").write_bytes(b"\x89PNG not really")
    shutil.rmtree(root / "fear")
    (root / "fear").mkdir()
    (root / "contempt").mkdir()
    cv2.imwrite(str(root / "contempt" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    bad = BadInputLog("skip")
    items = load_image_folders(root, RESOLVER, bad, {"val": 0.0, "test": 0.0})
    assert bad.counts() == {"unknown_label": 1, "empty_class": 1}
    assert any("fear" in r.file and "no images" in r.message for r in bad.records)
    cache = FaceCache(RECIPE, bad, None)
    faces = [cache.align_image(i) for i in items]
    cache.close()
    assert bad.counts()["corrupt_image"] == 1
    assert sum(f is None for f in faces) == bad.counts()["corrupt_image"] + bad.counts().get("no_face", 0)
    assert any(r.file.endswith("broken.png") for r in bad.records)
    with pytest.raises(BadInputError, match="contempt"):
        load_image_folders(root, RESOLVER, BadInputLog("stop"))
    with pytest.raises(BadInputError, match="broken.png"):
        FaceCache(RECIPE, BadInputLog("stop"), None).align_image(
            ImageItem(3, "train", str(root / "happy" / "broken.png"), FrameRef(root / "happy" / "broken.png")))


def test_bad_input_summary_and_csv(tmp_path):
    bad = BadInputLog("skip")
    bad.report("no_face", "a.png", "no face")
    bad.report("bad_row", "f.csv", "bad", line=7)
    assert bad.summary() == "bad input: bad_row 1, no_face 1"
    rows = list(csv.reader(open(bad.write_csv(tmp_path / "bad.csv"))))
    assert rows[0] == ["kind", "file", "line", "message"] and rows[2][:3] == ["bad_row", "f.csv", "7"]
    with pytest.raises(BadInputError):
        BadInputLog("ignore")


# --- face cache -------------------------------------------------------------------------------------------------------
def test_cached_crop_is_the_runtime_crop(images, tmp_path):
    """A face aligned for training equals what the node's align_batch feeds the model, after the eval preset."""
    bad = BadInputLog("stop")
    ann = read_faces(images, bad)
    path = sorted((images / "sad").glob("*.png"))[0]
    ref = FrameRef(path)
    cache = FaceCache(RECIPE, bad, tmp_path / "cache", ann)
    face = cache.align_image(ImageItem(4, "train", str(path), ref))
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    a = ann[ref.key()]
    runtime = align_batch(rgb, "rgb", [Detection(box=a.box, score=1.0, landmarks=a.landmarks)], _card())
    assert np.array_equal(eval_preset(SPEC)(face.crop[None]), runtime)
    # landmarks follow into the crop: the eyes are level after alignment
    assert abs(face.landmarks[0, 1] - face.landmarks[1, 1]) < 0.5

    again = FaceCache(RECIPE, bad, tmp_path / "cache", ann)
    cached = again.align_image(ImageItem(4, "train", str(path), ref))
    assert again.stats.hits == 1 and again.stats.aligned == 0 and np.array_equal(cached.crop, face.crop)
    wider = FaceCache(CropRecipe(64, 64, "rgb", 1.25, True), bad, tmp_path / "cache", ann)
    other = wider.align_image(ImageItem(4, "train", str(path), ref))
    assert wider.stats.hits == 0 and not np.array_equal(other.crop, face.crop)


def test_edited_file_is_not_served_from_the_cache(images, tmp_path):
    path = tmp_path / "face.png"
    shutil.copy(sorted((images / "happy").glob("*.png"))[0], path)
    bad = BadInputLog("stop")
    ann = {str(path): next(iter(read_faces(images, bad).values()))}
    item = ImageItem(3, "train", str(path), FrameRef(path))
    first = FaceCache(RECIPE, bad, tmp_path / "c", ann).align_image(item)
    img = cv2.imread(str(path))
    cv2.imwrite(str(path), 255 - img)
    c2 = FaceCache(RECIPE, bad, tmp_path / "c", ann)
    second = c2.align_image(item)
    assert c2.stats.hits == 0 and not np.array_equal(first.crop, second.crop)


def test_real_detector_aligns_synthetic_faces_and_reports_faceless_images(images, tmp_path):
    cfg = DataConfig.from_dict({"format": "image_folders", "root": str(images), "cache_dir": None,
                                "annotations": False})
    data = prepare_data(cfg, FER2013_LABELS, RECIPE, progress=False, splits=("test",))
    assert data.stats.no_face == 0 and len(data.splits["test"].labels) == 7
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((96, 96, 3), 127, np.uint8))
    bad = BadInputLog("skip")
    cache = FaceCache(RECIPE, bad, tmp_path / "c", no_face="skip")
    assert cache.align_image(ImageItem(6, "train", str(blank), FrameRef(blank))) is None
    cache.close()
    assert bad.counts() == {"no_face": 1} and "blank.png" in bad.records[0].file
    cache = FaceCache(RECIPE, bad, tmp_path / "c", no_face="skip")  # the 'no face' verdict is cached, still reported
    assert cache.align_image(ImageItem(6, "train", str(blank), FrameRef(blank))) is None
    assert cache.stats.hits == 1 and bad.counts() == {"no_face": 2}
    # the default policy crops the whole image as the face box instead, and says so (a separate cache entry)
    cache = FaceCache(RECIPE, bad, tmp_path / "c")
    whole = cache.align_image(ImageItem(6, "train", str(blank), FrameRef(blank)))
    assert whole.located == "whole_image" and whole.landmarks is None and whole.crop.shape == (64, 64, 3)
    assert cache.stats.hits == 0 and cache.stats.located == {"whole_image": 1} and bad.counts() == {"no_face": 2}


def test_a_tight_crop_data_set_of_real_faces_loses_no_image(tmp_path):
    """Real tight face crops, as FER2013 and RAF-DB's aligned set ship them: the LFW subset's 25x25 photographs,
    saved at 48 px like FER2013 rows. RetinaFace needs head context and misses most of them; by default each one is
    still a training face (the whole image cropped as the face box, by the runtime's crop_face), every image says
    how it was located, and ``no_face: skip`` counts what it leaves out instead of dropping it silently."""
    from skimage import data as skdata

    faces = skdata.lfw_subset()[:20]  # the first 100 of the subset are faces
    root = tmp_path / "tight"
    for i, face in enumerate(faces):
        folder = root / FER2013_LABELS[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        gray = cv2.resize((face * 255).round().astype(np.uint8), (48, 48), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"lfw{i:02d}.png"), gray)
    splits = ("train", "val", "test")
    cfg = DataConfig.from_dict({"format": "image_folders", "root": str(root), "cache_dir": None,
                                "annotations": False})
    prepared = prepare_data(cfg, FER2013_LABELS, RECIPE, progress=False, splits=splits)
    kept = sum(len(prepared.splits[s].labels) for s in splits)
    located = prepared.stats.located
    assert kept == len(faces) and sum(located.values()) == len(faces), located
    # about half are found at 48 px (51 of the subset's 100 here): both ways occur
    assert set(located) == {"detector", "whole_image"}, located
    # a whole-image face is exactly the runtime's crop of the box that is the whole image
    cache = FaceCache(RECIPE, BadInputLog("skip"), None)
    for path in sorted(root.glob("*/*.png")):
        face = cache.align_image(ImageItem(0, "train", str(path), FrameRef(path)))
        if face.located == "whole_image":
            break
    cache.close()
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    expected = crop_face(rgb, np.array([0, 0, 48, 48], np.float32), None, 64, 64, scale=RECIPE.scale,
                         rotate=RECIPE.rotate)
    assert face.located == "whole_image" and np.array_equal(face.crop, expected)
    # skipping instead: what is left out is counted as no_face, one record per image
    bad = BadInputLog("skip")
    skip = DataConfig.from_dict({"format": "image_folders", "root": str(root), "cache_dir": None,
                                 "annotations": False, "no_face": "skip"})
    skipped = prepare_data(skip, FER2013_LABELS, RECIPE, bad=bad, progress=False, splits=splits)
    kept_skip = sum(len(skipped.splits[s].labels) for s in splits)
    assert kept_skip == located.get("detector", 0)
    assert kept_skip + bad.counts().get("no_face", 0) == len(faces)


# --- clips ------------------------------------------------------------------------------------------------------------
def test_clip_folders_frames_videos_and_peaks(clips):
    bad = BadInputLog("stop")
    items = load_clip_folders(clips, RESOLVER, bad)
    assert len(items) == 14 and all(len(c.frames) == 6 for c in items)
    videos = [c for c in items if c.frames[0].index is not None]
    assert len(videos) == 3 and all(c.peak is None for c in videos)
    assert all(c.peak is not None for c in items if c.frames[0].index is None)
    cache = FaceCache(RECIPE, bad, None, read_faces(clips, bad))
    faces = cache.align_clip(videos[0])
    assert len(faces) == 6 and faces[0].crop.shape == (64, 64, 3)


def test_clip_without_any_face_is_reported(tmp_path):
    root = tmp_path / "clips"
    folder = root / "sad" / "empty_clip"
    folder.mkdir(parents=True)
    for k in range(3):
        cv2.imwrite(str(folder / f"{k:06d}.png"), np.full((96, 96, 3), 90 + k, np.uint8))
    bad = BadInputLog("skip")
    items = load_clip_folders(root, RESOLVER, bad, {"val": 0, "test": 0})
    cache = FaceCache(RECIPE, bad, None, no_face="skip")
    assert cache.align_clip(items[0]) == []
    cache.close()
    assert bad.counts() == {"clip_no_face": 1}
    assert bad.records[0].file.endswith("empty_clip") and "no face in any of its 3 frames" in bad.records[0].message
    with pytest.raises(BadInputError, match="empty_clip"):
        FaceCache(RECIPE, BadInputLog("stop"), None, no_face="skip").align_clip(items[0])


def test_k_segment_sampling():
    idx, mask = segment_indices(12, 3)
    assert idx.tolist() == [1, 5, 9] and mask.all()  # middle of [0,4), [4,8), [8,12)
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx, _ = segment_indices(12, 3, rng)
        assert 0 <= idx[0] < 4 <= idx[1] < 8 <= idx[2] < 12
    idx, mask = segment_indices(2, 3, rng)
    assert idx.tolist() == [0, 1, 1] and mask.tolist() == [True, True, False]
    with pytest.raises(ValueError):
        segment_indices(0, 3)


def test_clip_dataset_samples_k_frames(clips):
    cfg = DataConfig.from_dict({"format": "clips", "root": str(clips), "cache_dir": None, "split": {}})
    data = prepare_data(cfg, FER2013_LABELS, RECIPE, progress=False)
    split = data.splits["train"]
    ds = ClipDataset(split.faces, split.labels, train_preset(SPEC), segments=3, train=True, seed=1)
    ds.set_epoch(1)
    sample = ds[0]
    frames, mask = sample["input"]
    assert frames.shape == (3, 3, 64, 64) and mask.tolist() == [True] * 3
    assert np.array_equal(ds[0]["input"][0], frames)  # same (seed, epoch, index): same sample
    ds.set_epoch(2)
    assert not np.array_equal(ds[0]["input"][0], frames)


# --- transforms -------------------------------------------------------------------------------------------------------
def test_augmentation_is_one_draw_per_stack_and_bounded(images):
    path = sorted((images / "angry").glob("*.png"))[0]
    bad = BadInputLog("stop")
    ann = read_faces(images, bad)
    face = FaceCache(RECIPE, bad, None, ann).align_image(ImageItem(0, "train", str(path), FrameRef(path)))
    stack = np.stack([face.crop, face.crop])
    out = augment(stack, AugmentConfig(), np.random.default_rng(3))
    assert out.shape == stack.shape and out.dtype == np.uint8 and np.array_equal(out[0], out[1])
    flip_only = augment(stack, AugmentConfig(hflip=1, rotation=0, translate=0, brightness=0, contrast=0),
                        np.random.default_rng(0))
    assert np.array_equal(flip_only[0], face.crop[:, ::-1])
    with pytest.raises(Exception, match="rotation"):
        AugmentConfig.from_dict({"rotation": 180})
    with pytest.raises(Exception, match="unknown keys"):
        AugmentConfig.from_dict({"rotate": 10})


def test_image_dataset_eval_is_deterministic_and_train_varies(images):
    cfg = DataConfig.from_dict({"format": "image_folders", "root": str(images), "cache_dir": None})
    data = prepare_data(cfg, FER2013_LABELS, RECIPE, progress=False)
    split = data.splits["train"]
    ev = FaceImageDataset(split.faces, split.labels, eval_preset(SPEC))
    assert np.array_equal(ev[0]["input"], ev[0]["input"]) and ev[0]["has_landmarks"]
    assert np.array_equal(ev[0]["input"].numpy(), eval_preset(SPEC)(split.faces[0].crop[None])[0])
    tr = FaceImageDataset(split.faces, split.labels, train_preset(SPEC), train=True, seed=0)
    tr.set_epoch(1)
    a = tr[0]["input"]
    tr.set_epoch(2)
    assert not np.array_equal(a, tr[0]["input"])


def test_crop_face_is_the_function_used(images):
    """Sanity: the cache's crop is crop_face's, not a private re-implementation."""
    bad = BadInputLog("stop")
    ann = read_faces(images, bad)
    key, a = next(iter(ann.items()))
    rgb = cv2.cvtColor(cv2.imread(key), cv2.COLOR_BGR2RGB)
    face = FaceCache(CropRecipe(48, 48, "rgb", 1.25, True), bad, None, ann).align_image(
        ImageItem(0, "train", key, FrameRef(images / key)))
    assert np.array_equal(face.crop, crop_face(rgb, a.box, a.landmarks, 48, 48, scale=1.25, rotate=True))


# --- landmarks follow the augmentation ------------------------------------------------------------------------------
# Five landmarks at pixel centres (continuous coordinates), deliberately asymmetric, and one colour per point.
DOT_POINTS = np.array([[20.5, 22.5], [41.5, 25.5], [30.5, 36.5], [23.5, 47.5], [42.5, 45.5]], np.float32)
DOT_COLORS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255]], np.uint8)
DOT_RADIUS = 3  # pixels: large enough to survive a rotated, zoomed bilinear resample


def _dotted_face():
    from fer_ros_training.data.face_cache import AlignedFace

    crop = np.full((64, 64, 3), 128, np.uint8)
    for (x, y), color in zip(DOT_POINTS, DOT_COLORS):
        cv2.circle(crop, (int(x), int(y)), DOT_RADIUS, tuple(int(c) for c in color), -1)
    return AlignedFace(crop, DOT_POINTS.copy())


def _color_under(image_chw, point_01):
    """uint8 colour of the pixel under a [0, 1]-normalised landmark of a normalised (C, H, W) input (mean/std 0.5)."""
    img = np.clip((np.asarray(image_chw).transpose(1, 2, 0) * 0.5 + 0.5) * 255, 0, 255)
    x, y = np.asarray(point_01) * (img.shape[1], img.shape[0])
    return img[int(np.floor(y)), int(np.floor(x))]


@pytest.mark.parametrize("hflip", [0.0, 1.0])
def test_landmarks_land_on_their_dots_after_augmentation(hflip):
    from fer_ros_training.data.transforms import FIVE_POINT_MIRROR

    face = _dotted_face()
    cfg = AugmentConfig(hflip=hflip, rotation=25, translate=0.1, scale=0.1, brightness=0, contrast=0)
    images = FaceImageDataset([face], [0], train_preset(SPEC, cfg), train=True, seed=5)
    clips = ClipDataset([[face] * 4], [0], train_preset(SPEC, cfg), segments=3, train=True, seed=5)
    order = FIVE_POINT_MIRROR if hflip else tuple(range(5))
    moved = 0.0
    for epoch in range(1, 7):  # six different draws
        images.set_epoch(epoch)
        clips.set_epoch(epoch)
        for image, sample in ((images[0]["input"], images[0]), (clips[0]["input"][0][1], clips[0])):
            lm = sample["landmarks"].numpy()
            assert sample["has_landmarks"]
            for i in range(5):
                # point i sits on a dot, and on the dot of the face part it names in the new image: after a flip
                # the image-left eye is the subject's other eye, drawn in the other eye's colour
                got = _color_under(image.numpy(), lm[i])
                assert np.abs(got - DOT_COLORS[order[i]]).max() < 60, (epoch, i, got)
            left_eye, right_eye = lm[0] * 64, lm[1] * 64
            assert left_eye[0] < right_eye[0] and lm[3][0] < lm[4][0]  # "image-left" still means left
            moved = max(moved, float(np.abs(lm * 64 - DOT_POINTS).max()))
    assert moved > 5  # the draws really moved the points


def test_68_point_mirror_follows_the_face_mesh_on_a_flipped_real_face():
    from skimage import data as skdata

    from fer_ros_training.data.datasets import augmented_face
    from fer_ros_training.data.face_cache import AlignedFace
    from fer_ros_training.data.transforms import AugmentDraw
    from fer_ros_training.features import crop_mesh_points, mesh_to_ibug68

    crop = cv2.resize(np.ascontiguousarray(skdata.astronaut()[20:260, 100:340]), (128, 128),
                      interpolation=cv2.INTER_AREA)
    face = AlignedFace(crop, None)
    face.landmarks68 = mesh_to_ibug68(crop_mesh_points(crop))
    draw = AugmentDraw(128, 128, flip=True)
    flipped = draw.apply(crop[None])[0]
    moved = augmented_face(face, flipped, draw).landmarks68
    seen = mesh_to_ibug68(crop_mesh_points(flipped))  # what the mesh finds on the flipped face
    err = np.linalg.norm(moved - seen, axis=1)
    unswapped = np.linalg.norm(np.column_stack([128 - face.landmarks68[:, 0], face.landmarks68[:, 1]]) - seen, axis=1)
    eye_distance = float(np.linalg.norm(seen[36] - seen[45]))
    assert err.max() < 0.15 * eye_distance, err.max()
    assert unswapped.max() > 0.5 * eye_distance  # without the mirror table the points would sit on the other side


def test_a_generated_data_set_is_reused_only_with_the_settings_that_made_it(tmp_path):
    """Issue 14.5: a data.synthetic root generated earlier with other settings was reused, so the same config gave
    other results on another machine. Its synthetic.yaml now says what made it; other settings generate it again."""
    root = tmp_path / "gen"
    cfg = DataConfig.from_dict({"format": "image_folders", "root": str(root), "cache_dir": None,
                                "synthetic": {"per_class": 2, "image_size": 64}, "annotations": True})
    first = prepare_data(cfg, FER2013_LABELS, RECIPE, seed=3, progress=False)
    assert len(list(root.glob("*/*.png"))) == 14 and (root / "synthetic.yaml").is_file()
    stamp = (root / "split.csv").stat().st_mtime_ns
    again = prepare_data(cfg, FER2013_LABELS, RECIPE, seed=3, progress=False)  # same settings: reused as it is
    assert (root / "split.csv").stat().st_mtime_ns == stamp
    assert again.splits["train"].sources == first.splits["train"].sources
    cfg.synthetic = {"per_class": 3, "image_size": 64}
    prepare_data(cfg, FER2013_LABELS, RECIPE, seed=3, progress=False)
    assert len(list(root.glob("*/*.png"))) == 21  # generated again, no old image left behind
    assert yaml.safe_load((root / "synthetic.yaml").read_text())["synthetic"]["per_class"] == 3
