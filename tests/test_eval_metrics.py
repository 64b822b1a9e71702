"""Every metric of `gtok eval` on hand-made exports, with the expected numbers worked out by hand (in the
comments): perfect, off by one cell, wrong order, garbage, empty, repeated, missing."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from _eval_helpers import export_of, qwen3, ref_record, write_predictions
from _export_helpers import region

from gtok_cli.eval import EvalOptions, evaluate

BOX = [100.0, 100.0, 300.0, 300.0]


# ---- rec, boxes --------------------------------------------------------------------------------------------
def test_rec_boxes_by_hand(tmp_path: Path) -> None:
    """qwen3-vl on 1000x1000 images: the numbers in the text are pixels."""
    export = export_of(
        tmp_path, [ref_record(k, BOX) for k in range(9)], "--scheme", "qwen3-vl", "--task", "rec"
    )
    answers = {
        "r0": qwen3((100, 100, 300, 300)),  # perfect: 1
        "r1": qwen3((200, 100, 400, 300)),  # shifted by half the box: 20000 / 60000 = 1/3
        "r2": qwen3((300, 300, 100, 100)),  # corners in the wrong order: unreadable, a miss
        "r3": "I cannot see it",  # garbage: a miss
        "r4": "",  # empty: a miss
        "r5": qwen3((200, 100, 400, 300), (100, 100, 300, 300)),  # repeated: the first box is the answer: 1/3
        # r6: no prediction: a miss
        "r7": qwen3((100, 100, 300, 350)),  # 40000 / 50000 = 0.8
        "r8": qwen3((100, 100, 300, 280)),  # 36000 / 40000 = 0.9
    }
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": k, "text": t} for k, t in answers.items()])
    report = evaluate(preds, export)
    ious = [1, 1 / 3, 0, 0, 0, 1 / 3, 0, 0.8, 0.9]
    assert report.n == 9
    assert report.metrics["acc@0.5"] == pytest.approx(3 / 9)
    assert report.metrics["acc@0.75"] == pytest.approx(3 / 9)
    assert report.metrics["acc@0.9"] == pytest.approx(2 / 9)
    assert report.metrics["miou"] == pytest.approx(sum(ious) / 9)
    assert {k: report.counts[k] for k in ("missing", "unknown_id", "duplicate", "format_error")} == {
        "missing": 1,
        "unknown_id": 0,
        "duplicate": 0,
        "format_error": 3,
    }
    # per dataset: even k refcoco (r0 r2 r4 r6 r8: 1, 0, 0, 0, 0.9), odd refcocog (r1 r3 r5 r7)
    by = report.breakdown["dataset"]
    assert by["refcoco"]["n"] == 5 and by["refcoco"]["miou"] == pytest.approx(1.9 / 5)
    assert by["refcocog"]["acc@0.5"] == pytest.approx(1 / 4)
    assert report.breakdown["split"]["val"]["n"] == 4 and report.breakdown["split"]["testA"]["n"] == 5


def test_rec_grid_off_by_one_cell(tmp_path: Path) -> None:
    """grid 32 on 320x320: 10 px cells. Truth [100, 100, 200, 200] is written <grid_10_10><grid_19_19>, which
    reads back as the cell centres (105, 105, 195, 195): IoU 8100 / 10000. One cell to the right:
    (115, 105, 205, 195): intersection 85 x 90 = 7650, union 8100 + 10000 - 7650 = 10450."""
    recs = [ref_record(k, [100.0, 100.0, 200.0, 200.0], w=320, h=320) for k in range(2)]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--task", "rec")
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "r0", "text": "<box><grid_10_10><grid_19_19></box>"},
            {"id": "r1", "text": "<box><grid_11_10><grid_20_19></box>"},
        ],
    )
    report = evaluate(preds, export)
    assert report.metrics["miou"] == pytest.approx((0.81 + 7650 / 10450) / 2)
    assert report.metrics["acc@0.75"] == pytest.approx(0.5)


def test_strict_scores_only_what_the_codec_reads(tmp_path: Path) -> None:
    export = export_of(tmp_path, [ref_record(0, BOX)], "--scheme", "qwen3-vl", "--task", "rec")
    preds = write_predictions(
        tmp_path / "p.jsonl", [{"id": "r0", "text": "[{'bbox_2d': [100, 100, 300, 300]}]"}]
    )
    lenient = evaluate(preds, export)
    strict = evaluate(preds, export, options=EvalOptions(strict=True))
    assert lenient.metrics["miou"] == 1.0 and lenient.counts["lenient"]["python_literal"] == 1
    assert lenient.counts["format_error"] == 0
    assert strict.metrics["miou"] == 0.0 and strict.counts["format_error"] == 1
    assert strict.counts["lenient"]["python_literal"] == 0


# ---- rec, masks --------------------------------------------------------------------------------------------
# grid 4 on a 40x40 image: 10 px cells. The region's mask tokens are the two top-left cells (x 0..20, y 0..10,
# 200 px); its real mask the square x 0..20, y 0..20 (400 px), as an uncompressed column-major RLE.
SQUARE = {"size": [40, 40], "counts": [0] + [20, 20] * 19 + [20, 820]}
TOKENS = {
    "grid": 4,
    "anchors": [[0, 0], [1, 0]],
    "iou": 0.5,
    "backend": "cells",
    "tau": 0.9,
    "variant": "sorted",
}


def _mask_export(tmp_path: Path) -> tuple[Path, Path]:
    recs = [
        ref_record(k, [0.0, 0.0, 20.0, 20.0], w=40, h=40, mask=SQUARE, mask_tokens=TOKENS) for k in range(4)
    ]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--grid", "4", "--task", "rec", "--shape", "mask")
    return export, tmp_path / "export.records.jsonl"


def _seg(*cells: tuple[int, int]) -> str:
    return "<seg>" + "".join(f"<grid_{i}_{j}>" for i, j in cells) + "</seg>"


def test_rec_masks_by_hand(tmp_path: Path) -> None:
    export, records = _mask_export(tmp_path)
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "r0", "text": _seg((0, 0), (1, 0))},  # the truth's anchors: 200 px
            {"id": "r1", "text": _seg((0, 0), (1, 0), (0, 1), (1, 1))},  # the whole square: 400 px
            {"id": "r2", "text": _seg((3, 3))},  # elsewhere: 100 px, nothing shared
            # r3 missing
        ],
    )
    real = evaluate(preds, export, records=[str(records)])
    # real mask (400 px): IoUs 200/400, 400/400, 0/500, 0/400
    assert real.metrics["giou"] == pytest.approx((0.5 + 1.0) / 4)
    assert real.metrics["ciou"] == pytest.approx((200 + 400) / (400 + 400 + 500 + 400))
    assert real.info["truth_mask"] == {"mask": 4}
    cells = evaluate(preds, export)
    # no records: the truth is the anchors' cells (200 px): IoUs 1, 200/400, 0/300, 0/200
    assert cells.metrics["giou"] == pytest.approx((1.0 + 0.5) / 4)
    assert cells.metrics["ciou"] == pytest.approx((200 + 200) / (200 + 400 + 300 + 200))
    assert cells.info["truth_mask"] == {"anchors": 4}


# ---- point -------------------------------------------------------------------------------------------------
# 1000x1000; the region's box is BOX, its real mask the box's left half x 100..200, y 100..300 (RLE)
LEFT_HALF = {"size": [1000, 1000], "counts": [100100] + [200, 800] * 99 + [200, 800700]}


def _point(x: float, y: float) -> str:
    return f'[{{"point_2d": [{x}, {y}]}}]'


def test_point_hit_rate_by_hand(tmp_path: Path) -> None:
    recs = [ref_record(k, BOX, mask=LEFT_HALF) for k in range(4)]
    export = export_of(tmp_path, recs, "--scheme", "qwen3-vl", "--task", "point")
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "r0", "text": _point(150, 200)},  # inside the mask
            {"id": "r1", "text": _point(250, 200)},  # inside the box, outside the mask
            {"id": "r2", "text": "garbage"},
            {"id": "r3", "text": _point(500, 500)[:-1] + ", " + _point(150, 150)[1:]},  # first point outside
        ],
    )
    with_masks = evaluate(preds, export, records=[str(tmp_path / "export.records.jsonl")])
    assert with_masks.metrics["hit_rate"] == pytest.approx(1 / 4) and with_masks.info["truth"] == {"mask": 4}
    boxes_only = evaluate(preds, export)
    assert boxes_only.metrics["hit_rate"] == pytest.approx(2 / 4) and boxes_only.info["truth"] == {"box": 4}


# ---- detect ------------------------------------------------------------------------------------------------
def _instances(k: int, regions: list[tuple[str, list[float]]]) -> dict[str, Any]:
    return {
        "id": f"img{k}",
        "dataset": "coco",
        "split": "val2017",
        "task": "instances",
        "text": None,
        "image": {"file": f"{k}.jpg", "width": 1000, "height": 1000, "id": k},
        "regions": [region(b, label=lab, ann_id=10 * k + j) for j, (lab, b) in enumerate(regions)],
        "source": {"image_id": k},
    }


CAT_A, DOG_B, CAT_C = [100.0, 100.0, 300.0, 300.0], [500.0, 500.0, 700.0, 800.0], [0.0, 600.0, 200.0, 900.0]


def test_detect_by_hand_and_against_cocoeval(tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    recs = [_instances(0, [("cat", CAT_A), ("dog", DOG_B), ("cat", CAT_C)]), _instances(1, [("dog", DOG_B)])]
    export = export_of(tmp_path, recs, "--scheme", "qwen3-vl", "--task", "detect")

    def item(label: str, b: list[float]) -> str:
        return f'{{"bbox_2d": [{int(b[0])}, {int(b[1])}, {int(b[2])}, {int(b[3])}], "label": "{label}"}}'

    line0 = [("dog", DOG_B), ("cat", CAT_A), ("cat", [800.0, 0.0, 900.0, 100.0]), ("bird", CAT_C)]
    line1 = [("dog", [500.0, 500.0, 700.0, 600.0])]  # IoU 20000 / 60000 with the dog: not a match at 0.5
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "img0", "text": "[" + ", ".join(item(lab, b) for lab, b in line0) + "]"},
            {"id": "img1", "text": "[" + ", ".join(item(lab, b) for lab, b in line1) + "]"},
        ],
    )
    report = evaluate(preds, export)
    # greedy by label: line 0 matches dog and cat A (2 of 4 predicted, 2 of 3 truths), line 1 nothing
    assert report.metrics["precision@0.5"] == pytest.approx(2 / 5)
    assert report.metrics["recall@0.5"] == pytest.approx(2 / 4)
    # COCOeval run directly on the same boxes, scores 1 - rank / len(answer)
    cats = {"cat": 1, "dog": 2, "bird": 3}
    truths = [(0, "cat", CAT_A), (0, "dog", DOG_B), (0, "cat", CAT_C), (1, "dog", DOG_B)]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 0}, {"id": 1}],
        "categories": [{"id": c, "name": n} for n, c in cats.items()],
        "annotations": [
            {"id": j + 1, "image_id": i, "category_id": cats[lab], "iscrowd": 0,
             "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])}
            for j, (i, lab, b) in enumerate(truths)
        ],
    }  # fmt: skip
    dets = [
        {"image_id": i, "category_id": cats[lab], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
         "score": 1 - r / len(line)}
        for i, line in ((0, line0), (1, line1))
        for r, (lab, b) in enumerate(line)
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert report.metrics["map"] == pytest.approx(ev.stats[0])
    assert report.metrics["ap50"] == pytest.approx(ev.stats[1])
    assert report.metrics["ap75"] == pytest.approx(ev.stats[2])
    assert 0 < report.metrics["ap50"] < 1


def test_detect_labels_from_the_text_before_each_span(tmp_path: Path) -> None:
    """grid writes ``label <box>…</box>; label <box>…</box>``: the labels come from the text."""
    recs = [_instances(0, [("cat", [0.0, 0.0, 100.0, 100.0]), ("dog", [200.0, 200.0, 300.0, 300.0])])]
    for r in recs:
        r["image"].update(width=320, height=320)
    export = export_of(tmp_path, recs, "--scheme", "grid", "--task", "detect")
    swapped = "dog <box><grid_0_0><grid_9_9></box>; cat <box><grid_20_20><grid_29_29></box>"
    right = "cat <box><grid_0_0><grid_9_9></box>; dog <box><grid_20_20><grid_29_29></box>"
    for text, matched in ((right, 1.0), (swapped, 0.0)):
        preds = write_predictions(tmp_path / "p.jsonl", [{"line": 0, "text": text}])
        assert evaluate(preds, export).metrics["recall@0.5"] == matched


# ---- grounded caption --------------------------------------------------------------------------------------
def test_grounded_caption_by_hand(tmp_path: Path) -> None:
    """kosmos2 on 320x320 (10 px cells): a cat [0, 0, 100, 100] is patches 0000..0297 (read back as
    (5, 5, 95, 95): IoU 0.81); the dog [200, 200, 300, 300] is answered with patches 0000..0066 (IoU 0)."""
    rec = {
        "id": "f0",
        "dataset": "flickr30k",
        "split": "test",
        "task": "grounded_caption",
        "text": "a cat and a dog",
        "image": {"file": "f0.jpg", "width": 320, "height": 320, "id": 0},
        "regions": [
            region([0.0, 0.0, 100.0, 100.0], phrase="a cat", span=[0, 5]),
            region([200.0, 200.0, 300.0, 300.0], phrase="a dog", span=[10, 15]),
        ],
        "source": {"image_id": 0},
    }
    export = export_of(tmp_path, [rec], "--scheme", "kosmos2", "--task", "grounded-caption")
    text = (
        "<phrase> a cat</phrase><object><patch_index_0000><patch_index_0297></object> and "
        "<phrase> a dog</phrase><object><patch_index_0000><patch_index_0066></object> near "
        "<phrase> a bird</phrase><object><patch_index_0000><patch_index_0297></object>"
    )
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "f0", "text": text}])
    report = evaluate(preds, export)
    assert report.metrics == {"recall@1": 0.5, "phrase_precision": pytest.approx(1 / 3)}


# ---- refine ------------------------------------------------------------------------------------------------
def test_refine_turns_by_hand(tmp_path: Path) -> None:
    """grid 32 on 320x320, offset step half a cell (5 px). The proposal <grid_10_10><grid_19_19> reads
    (105, 105, 195, 195): IoU 0.81 with [100, 100, 200, 200]; offsets (-1, -1) and (1, 1) move the corners to
    (100, 100, 200, 200): IoU 1."""
    recs = [ref_record(k, [100.0, 100.0, 200.0, 200.0], w=320, h=320) for k in range(2)]
    export = export_of(tmp_path, recs, "--scheme", "grid", "--task", "refine", "--refine-turns", "2")
    proposal = "<box><grid_10_10><grid_19_19></box>"
    move = "<offset><box><OFF_-1_-1><OFF_1_1></box></offset>"
    stay = "<offset><box><OFF_0_0><OFF_0_0></box></offset>"
    preds = write_predictions(
        tmp_path / "p.jsonl",
        [{"id": "r0", "turns": [proposal, move, stay]}, {"id": "r1", "turns": [proposal]}],  # r1 stops early
    )
    report = evaluate(preds, export)
    assert report.metrics["miou_turn0"] == pytest.approx(0.81)
    assert report.metrics["miou_turn1"] == pytest.approx((1.0 + 0.81) / 2)
    assert report.metrics["miou_turn2"] == pytest.approx((1.0 + 0.81) / 2)
    assert report.metrics["gain"] == pytest.approx(0.19 / 2)
    broken = write_predictions(
        tmp_path / "b.jsonl", [{"id": "r0", "turns": [proposal, "<offset><box><OFF_9"]}]
    )
    bad = evaluate(broken, export)
    assert bad.counts["format_error"] == 1 and bad.metrics["miou_turn2"] == pytest.approx(0.81 / 2)
