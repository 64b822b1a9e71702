"""Backend ``sam`` on CPU: a tiny random SAM built from segment-anything's own modules, and a random vit_b
checkpoint loaded through the CLI."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from PIL import Image
from typer.testing import CliRunner

pytestmark = pytest.mark.sam
torch = pytest.importorskip("torch")
sa = pytest.importorskip("segment_anything")

from gtok_cli.geometry.candidates import grid_points_px  # noqa: E402
from gtok_cli.geometry.sam import SamCandidateMaker  # noqa: E402
from gtok_cli.masks import MaskSolverConfig, MaskTokenizer, anchors_to_mask  # noqa: E402
from gtok_cli.masks.greedy import greedy_numpy  # noqa: E402
from gtok_cli.masks.greedy_torch import greedy_torch  # noqa: E402


def tiny_sam(seed: int = 0) -> Any:
    """img_size 256, 1 block of width 32: runs 1024 prompts in about a second on CPU."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim = 32
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=256,
            patch_size=16,
            embed_dim=32,
            depth=1,
            num_heads=2,
            mlp_ratio=2.0,
            out_chans=dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(0,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim, image_embedding_size=(16, 16), input_image_size=(256, 256), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=2,
            iou_head_hidden_dim=16,
        ),
    )
    return sam.eval()


def test_tiny_sam_model_runs() -> None:
    """The random decoder gives masks neither all empty nor all full (else the tests below are void)."""
    model = tiny_sam()
    image = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    cands = SamCandidateMaker(model, grid=8).candidates([image])[0]
    areas = cands.stats.areas
    assert 0 < areas.sum() < 64 * 30 * 40


@pytest.mark.parametrize("select", ["max-pred-iou", "single"])
def test_candidates_equal_sam_predictor(select: str) -> None:
    """Each candidate is exactly what SamPredictor.predict gives for that one point under the same rule."""
    from segment_anything import SamPredictor

    model = tiny_sam()
    rng = np.random.default_rng(1)
    image = (rng.random((45, 60, 3)) * 255).astype(np.uint8)
    maker = SamCandidateMaker(model, grid=32, select=select, prompt_chunk=100)
    cands = maker.candidates([image])[0]
    assert len(cands) == 1024 and cands.packed.shape == (1024, 45, 8)
    predictor = SamPredictor(model)
    predictor.set_image(image)
    points = grid_points_px(32, 60, 45)
    for k in (0, 31, 500, 1023):
        masks, scores, _ = predictor.predict(
            point_coords=points[k : k + 1],
            point_labels=np.array([1]),
            multimask_output=select == "max-pred-iou",
        )
        want = masks[int(np.argmax(scores))]
        agree = (cands.mask(k) == want).mean()
        assert agree > 0.999, (k, agree)  # chunked vs single decoding may flip a pixel at logit ~0


def test_sam_backend_end_to_end_tiny(tmp_path: Path) -> None:
    model = tiny_sam()
    rng = np.random.default_rng(2)
    img = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    masks = [np.zeros((48, 64), dtype=bool) for _ in range(3)]
    masks[0][10:30, 5:40] = True
    masks[1][:, 32:] = True
    masks[2][40:, :8] = True
    from pycocotools import mask as mask_utils

    def rle(m: np.ndarray) -> dict[str, Any]:
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return {"size": r["size"], "counts": r["counts"].decode()}

    regions = [
        {
            "bbox": [0, 0, 1, 1],
            "mask": rle(m),
            "label": None,
            "category_id": None,
            "iscrowd": False,
            "ann_id": i,
            "phrase": None,
            "span": None,
        }
        for i, m in enumerate(masks)
    ]
    record = {
        "id": "r",
        "dataset": "x",
        "split": None,
        "task": "instances",
        "text": None,
        "image": {"file": "a.png", "width": 64, "height": 48, "id": 1},
        "regions": regions,
        "source": {},
    }
    cfg = MaskSolverConfig(backend="sam", grid=16, tau=0.9, model_type="tiny", device="cpu")
    tok = MaskTokenizer(cfg, sam_model=model, images_root=tmp_path)
    from gtok_cli.masks.solver import ImageRef

    cands = tok.candidates_for([ImageRef("a.png", 64, 48)])[0]
    out = tok.tokenize_image([record], cands)[0]
    for region, gt in zip(out["regions"], masks, strict=True):
        mt = region["mask_tokens"]
        assert mt["backend"] == "sam" and mt["select"] == "max-pred-iou" and mt["grid"] == 16
        union = anchors_to_mask(mt["anchors"], cands)
        assert mt["iou"] == pytest.approx((gt & union).sum() / max((gt | union).sum(), 1), abs=0)
    # the torch greedy (the GPU path, here on CPU) chooses the same anchors on real SAM candidates
    for variant in ("sorted", "best-gain"):
        want = greedy_numpy(cands.packed, masks, tau=0.9, variant=variant)
        got = greedy_torch(
            cands.dense_torch("cpu"), torch.from_numpy(np.stack(masks)), tau=0.9, variant=variant
        )
        assert [g.indices for g in got] == [w.indices for w in want]


def test_vit_b_checkpoint_through_the_cli(tmp_path: Path) -> None:
    from segment_anything import sam_model_registry

    from gtok_cli.cli import app

    torch.manual_seed(0)
    ckpt = tmp_path / "sam_vit_b_random.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), ckpt)
    img = (np.random.default_rng(3).random((24, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "b.png")
    m = [[4.0, 4.0, 20.0, 4.0, 20.0, 16.0, 4.0, 16.0]]
    record = {
        "id": "v",
        "dataset": "x",
        "split": None,
        "task": "referring",
        "text": "t",
        "image": {"file": "b.png", "width": 32, "height": 24, "id": 2},
        "regions": [
            {
                "bbox": [4, 4, 20, 16],
                "mask": m,
                "label": None,
                "category_id": None,
                "iscrowd": False,
                "ann_id": 1,
                "phrase": None,
                "span": None,
            }
        ],
        "source": {},
    }
    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps(record) + b"\n")
    out = tmp_path / "out.jsonl"
    args = [
        "masks",
        str(src),
        "--out",
        str(out),
        "--images",
        str(tmp_path),
        "--backend",
        "sam",
        "--sam-checkpoint",
        str(ckpt),
        "--model-type",
        "vit_b",
        "--grid",
        "4",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    mt = orjson.loads(out.read_bytes())["regions"][0]["mask_tokens"]
    assert (mt["backend"], mt["model_type"], mt["grid"]) == ("sam", "vit_b", 4)
    assert 0.0 <= mt["iou"] <= 1.0 and all(0 <= i < 4 and 0 <= j < 4 for i, j in mt["anchors"])


def test_wrong_checkpoint_is_one_line_exit_2(tmp_path: Path) -> None:
    from gtok_cli.cli import app

    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam().state_dict(), ckpt)
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "x", "image": {"file": "a.png", "width": 2, "height": 2}, "regions": []}\n')
    args = [
        "masks",
        str(src),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--images",
        str(tmp_path),
        "--backend",
        "sam",
    ]
    bad = CliRunner().invoke(
        app, [*args, "--sam-checkpoint", str(ckpt), "--model-type", "vit_b", "--device", "cpu"]
    )
    assert bad.exit_code == 2 and "cannot load a vit_b SAM state dict" in bad.output, bad.output
    assert "Traceback" not in bad.output
