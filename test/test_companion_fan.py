"""The companion role with a Frame Attention Network: one ring buffer of embeddings per REP-155 id, forgotten when
the face leaves the detector's list. The FAN is test_temporal's tiny seeded network exported to ONNX (needs torch)."""
from __future__ import annotations

import numpy as np

from fer_ros.companion import CompanionClassifier, crop_to_input
from fer_ros.faces.align import normalize
from fer_ros.inference import create_backend
from fer_ros.model_card import load_card
from test_hri_core import crops  # noqa: F401  (fixture: real face crops)
from test_temporal import WINDOW, fan, torch  # noqa: F401  (fixture: the tiny exported FAN)


def test_companion_fan_buffers_are_keyed_by_the_rep155_id_and_forgotten_with_it(fan, crops):
    """With a Frame Attention Network each id keeps its own ring buffer of the last WINDOW embeddings."""
    net, folder = fan
    classifier = CompanionClassifier(create_backend(load_card(folder), "onnxruntime"))
    classifier.update_tracked(["a", "b"])
    for t in range(WINDOW + 1):
        classifier.add("a", *crops["astro"])
        if t > 0:  # b is seen one frame later
            classifier.add("b", *crops["hopper"])
        used = {r.face_id: r.frames_used for r in classifier.classify()}
        assert used["a"] == min(t + 1, WINDOW) and used.get("b", 0) == min(t, WINDOW)
    classifier.update_tracked(["b"])  # a leaves, and comes back: a new face with an empty buffer
    classifier.update_tracked(["a", "b"])
    classifier.add("a", *crops["astro"])
    classifier.add("b", *crops["hopper"])
    result = {r.face_id: r for r in classifier.classify()}
    assert result["a"].frames_used == 1 and result["b"].frames_used == WINDOW
    single = torch.softmax(net(torch.from_numpy(normalize(crop_to_input(*crops["astro"], classifier.card)[None],
                                                          classifier.card.input)[None])), dim=1)[0]
    np.testing.assert_allclose(result["a"].probabilities, single.detach().numpy(), atol=1e-4)
