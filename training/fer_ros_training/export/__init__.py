"""From checkpoint to robot: ONNX export with parity checks and model cards, TensorRT engines, validation.

Modules (each imported only when used, so ``fer-ros build-engine`` on the robot needs no torch):
- ``onnx_export``: ``export_model(model, card, out_dir, faces)`` -> ONNX file(s) + ``model.yaml``.
- ``face_samples``: real model-ready faces (built-in public-domain ones, or the user's images) via the core's
  alignment.
- ``card_fields``: the card an export writes and its provenance fields.
- ``tensorrt_build`` / ``calibration``: engines per precision with polygraphy; INT8 calibration data and cache.
- ``validate``: engine (or any backend) against the ONNX on held-out faces.
- ``cli`` / ``engine_cli`` / ``validate_cli`` / ``import_rmn``: the ``fer-ros`` subcommands.
"""
