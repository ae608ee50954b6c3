"""Issue 14.10: the compare study's tradeoff plot keeps every model name inside its axes (names at the right edge
ran off the figure). Real matplotlib, the figure rendered."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fer_ros_training.commands.compare import ModelResult, tradeoff_figure  # noqa: E402


def _result(name: str, ms: float, accuracy: float, gflops: float) -> ModelResult:
    return ModelResult(name=name, network=name, input="64x64 rgb", parameters=1, gflops=gflops, onnx_mb=1.0,
                       cpu_ms={1: ms, 8: ms}, gpu_ms=None, train_seconds_per_epoch=1.0, epochs=1, loss="ce",
                       accuracy=accuracy, macro_f1=accuracy, per_class={}, robustness={}, test_faces=1,
                       without_landmarks=0, checkpoint="-")


def test_tradeoff_names_stay_inside_the_axes():
    results = [_result("compare_small_inception_resnet_prelu", 9.5, 0.97, 2.0),
               _result("compare_small_feratt_ce_long_name", 0.4, 0.41, 0.1),
               _result("middle_model", 4.0, 0.7, 1.0)]
    fig = tradeoff_figure(plt, results)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    box = ax.get_window_extent(renderer)
    names = [t for t in ax.texts if t.get_text() in {r.name for r in results}]
    assert len(names) == 3
    for text in names:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, \
            text.get_text()
    plt.close(fig)
