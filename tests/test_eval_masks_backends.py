"""RES under both mask backends, and ``rec --shape auto`` exports that mix boxes and masks.

``sam``: a tiny random SAM (segment-anything's own modules, tests/test_masks_sam.py) on a real sample image;
the predicted mask must be the union of the SAM candidates at the decoded anchors, i.e. what
``geometry.sam.SamCandidateMaker`` gives for the image (the rule ``gtok masks --backend sam`` solves with).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from _eval_helpers import export_of, ref_record, write_predictions
from conftest import SAMPLE_DATA
from PIL import Image

from gtok_cli.eval import EvalOptions, evaluate
from gtok_cli.scoring import mask_iou

TOKENS = {
    "grid": 4,
    "anchors": [[0, 0], [1, 0]],
    "iou": 0.5,
    "backend": "cells",
    "tau": 0.9,
    "variant": "sorted",
}


def test_sam_backend_is_the_union_of_sam_candidates(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from test_masks_sam import tiny_sam

    from gtok_cli.geometry.candidates import anchors_to_mask
    from gtok_cli.geometry.sam import SamCandidateMaker

    images = tmp_path / "images"
    images.mkdir()
    src = sorted((SAMPLE_DATA / "coco" / "val2017").glob("*.jpg"))[0]
    with Image.open(src) as im:
        im.convert("RGB").resize((64, 48)).save(images / "img0.jpg")
        im.convert("RGB").resize((64, 48)).save(images / "img1.jpg")
    recs = [ref_record(k, [0.0, 0.0, 32.0, 24.0], w=64, h=48, mask_tokens=TOKENS) for k in range(2)]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--grid", "4", "--task", "rec", "--shape", "mask")
    anchors = [(0, 0), (1, 0), (1, 1)]
    text = "<seg>" + "".join(f"<grid_{i}_{j}>" for i, j in anchors) + "</seg>"
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "r0", "text": text}, {"id": "r1", "text": text}])
    from gtok_cli.scoring.sam_masks import SamAnchorMasks

    model = tiny_sam()
    sam = SamAnchorMasks(model, images)
    per = tmp_path / "per.jsonl"
    report = evaluate(preds, export, options=EvalOptions(mask_backend="sam"), sam=sam, per_sample=per)
    image = np.asarray(Image.open(images / "img0.jpg").convert("RGB"))
    cands = SamCandidateMaker(model, grid=4, keep_on_device=False).candidates([image])[0]
    want_pred = anchors_to_mask(anchors, cands)
    truth = np.zeros((48, 64), dtype=bool)
    truth[:12, :32] = True  # the truth anchors' cells: (0, 0) and (1, 0) of a 4x4 grid on 64x48
    rows = [orjson.loads(x) for x in per.read_bytes().splitlines()]
    assert rows[0]["iou"] == pytest.approx(mask_iou(want_pred, truth))
    assert report.metrics["giou"] == pytest.approx(mask_iou(want_pred, truth))


def test_sam_backend_needs_its_weights_and_images(tmp_path: Path) -> None:
    from gtok_cli.errors import UsageError

    recs = [ref_record(0, [0.0, 0.0, 32.0, 24.0], w=64, h=48, mask_tokens=TOKENS)]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--grid", "4", "--task", "rec", "--shape", "mask")
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "r0", "text": "<seg><grid_0_0></seg>"}])
    with pytest.raises(UsageError, match="--sam-checkpoint PATH and --images DIR"):
        evaluate(preds, export, options=EvalOptions(mask_backend="sam", sam_checkpoint="w.pth"))
    shutil.rmtree(export)


def test_auto_shape_scores_boxes_and_masks_apart(tmp_path: Path) -> None:
    """Two lines with mask tokens (written as masks), two without (written as boxes): box keys over the box
    lines, mask keys over the mask lines."""
    recs = [
        ref_record(k, [0.0, 0.0, 20.0, 20.0], w=40, h=40, mask_tokens=TOKENS if k < 2 else None)
        for k in range(4)
    ]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--grid", "4", "--task", "rec", "--shape", "auto")
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "r0", "text": "<seg><grid_0_0><grid_1_0></seg>"},  # the truth cells: IoU 1
            {"id": "r1", "text": "<seg><grid_0_0></seg>"},  # half of them: IoU 0.5
            {"id": "r2", "text": "<box><grid_0_0><grid_1_1></box>"},  # (5, 5, 15, 15): IoU 100 / 400
            # r3 missing
        ],
    )
    report = evaluate(preds, export)
    assert report.metrics["giou"] == pytest.approx(0.75) and report.metrics["miou"] == pytest.approx(0.125)
    assert report.info["mask_lines"] == 2 and report.info["box_lines"] == 2
