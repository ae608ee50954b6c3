"""Exception types of fer_ros. Each says what is wrong and what to do about it.

Configuration errors (model, card, parameters, engine) are raised at start-up and stop it; per-frame errors
(``FrameError`` and subclasses) drop one frame and never the pipeline.
"""


class FerRosError(Exception):
    """Base class of every error fer_ros raises on purpose."""


# --- start-up / configuration -------------------------------------------------------------------------------------
class ConfigError(FerRosError, ValueError):
    """A configuration value or parameter is invalid; the message names it and the accepted values."""


class ModelCardError(FerRosError):
    """A model card is missing, unreadable, incomplete or inconsistent with its model file."""


class ModelLoadError(FerRosError):
    """A model file is missing or cannot be loaded by the chosen backend."""


class BackendUnavailableError(FerRosError):
    """The requested inference backend cannot run here (library not installed, no GPU)."""


class EngineMismatchError(ModelLoadError):
    """A TensorRT engine was built for another model, precision, TensorRT version or GPU."""


class DetectorUnavailableError(FerRosError):
    """No face detector can run here (mediapipe missing and no OpenCV cascade)."""


# --- per frame ----------------------------------------------------------------------------------------------------
# Each per-frame error names the counter it is counted under (``reason``): the node's /diagnostics
# (``rejected_<reason>``) and eval-bag's report use the same names, one per kind of rejection.
class FrameError(FerRosError):
    """One frame could not be processed; the next frame is unaffected."""

    reason = "failure"  # a library failing on one frame (detector, face mesh)


class InvalidFrameError(FrameError, ValueError):
    """The frame is empty, zero-sized, of the wrong dtype, channel count or size, or not decodable."""

    reason = "corrupt"  # every geometry or data error, including sides outside the accepted range


class ImageTooLargeError(InvalidFrameError):
    """A well-formed image whose header asks for more pixels than the node's pixel budget (``max_image_pixels``):
    refused before decoding, so a small compressed file cannot make the node allocate gigabytes."""

    reason = "too_large"


class ModelOutputError(FrameError):
    """The model returned NaN/inf or a vector of the wrong length for a frame."""

    reason = "model_output"
