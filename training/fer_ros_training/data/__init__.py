"""Training data: loaders for FER2013, image folders and clip folders; faces found and aligned once by the core's
code and cached; train/eval presets; a synthetic expression generator; bad input counted and reported.

The usual entry point is :func:`prepare_data` (config -> aligned faces per split), then
``fer_ros_training.trainer.make_dataset`` for torch datasets. Modules:

- ``items``, ``fer2013``, ``image_folders``, ``clips``: list labelled items of each layout (docs/formats.md);
- ``annotations``: known faces in ``ROOT/faces.csv``;
- ``face_cache``: locate (detector or annotation), align (``fer_ros.faces.align``) and cache every face;
- ``transforms``: augmentation of the seeds and the runtime's normalisation;
- ``datasets``: torch datasets for images, K-segment clips and the fusion inputs;
- ``synthetic``, ``synthetic_files``: drawn expression faces and clips, written in the real layouts;
- ``bad_input``: the skip|stop policy and the report;
- ``config``, ``prepare``: the ``data:`` config section and the preparation pipeline.
"""
from __future__ import annotations

from fer_ros_training.data.bad_input import BadInputError, BadInputLog
from fer_ros_training.data.config import DataConfig
from fer_ros_training.data.face_cache import AlignedFace, CropRecipe, FaceCache
from fer_ros_training.data.prepare import PreparedData, PreparedSplit, prepare_data

__all__ = ["AlignedFace", "BadInputError", "BadInputLog", "CropRecipe", "DataConfig", "FaceCache", "PreparedData",
           "PreparedSplit", "prepare_data"]
