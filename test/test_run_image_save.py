"""Issue 14.10: ``fer-ros run-image --save`` writes the image with what was found drawn on it (real astronaut
photograph, real detector and model)."""
from __future__ import annotations

import json

import cv2
import numpy as np
from skimage import data

from fer_ros.cli import main


def test_save_draws_the_found_face(tmp_path, capsys):
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "astronaut.png"), image)
    assert main(["run-image", str(tmp_path / "astronaut.png"), "--json", "--save", str(tmp_path / "out.png")]) == 0
    found = json.loads(capsys.readouterr().out)
    (face,) = found["faces"]
    drawn = cv2.imread(str(tmp_path / "out.png"))
    x0, y0, x1, y1 = (int(round(v)) for v in face["box"])
    changed = np.abs(drawn.astype(int) - image.astype(int)).sum(axis=2) > 0
    assert changed[(y0 + y1) // 2, x0] and changed[(y0 + y1) // 2, x1]  # the box's left and right edges
    assert not changed[:, : max(0, x0 - 40)].any()  # nothing drawn far left of the face
    # several images: one drawing each, in the folder
    assert main(["run-image", str(tmp_path / "astronaut.png"), "--sample", "--save", str(tmp_path / "drawn")]) == 0
    names = sorted(p.name for p in (tmp_path / "drawn").iterdir())
    assert names == ["astronaut_faces.jpg", "sample_astronaut_faces.jpg"]
