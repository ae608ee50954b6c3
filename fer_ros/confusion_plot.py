"""The confusion-matrix figure of every report (``fer-ros evaluate``, ``fer-ros eval-bag``, ``fer-ros replay``).

One style: rows (true class) normalised to 1 with the counts in the cells, a colour bar, and a title naming the model
and the mode, so a training evaluation and a bag report read the same way. Needs matplotlib (imported here, on call).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

FIGURE_DPI = 110
DARK_CELL = 0.5  # normalised value above which a cell's text is drawn white on the dark blue


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Path | str, title: str) -> Path:
    """Write the figure of confusion matrix ``cm`` (rows = true, columns = predicted) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=np.float64), where=rows > 0)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * n, 1.0 + 0.75 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), list(labels), rotation=45, ha="right")
    ax.set_yticks(range(n), list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({cm[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > DARK_CELL else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    return Path(path)
