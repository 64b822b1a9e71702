"""Backend ``sam``: one SAM mask per grid point, SamPredictor's single-click path, batched.

Per image: encode once (``set_image``'s resize + preprocess), prompt with the n² cell centres (the points of
``build_point_grid(n)`` scaled to the image), one positive point each, decoded in chunks; per point keep the
output ``select`` names — ``max-pred-iou``: of the three ``multimask_output=True`` masks the one with the
highest predicted IoU (ties: the first), SAM's own single-click rule; ``single``: ``multimask_output=False`` —
and upsample only that low-res mask to full resolution (``postprocess_masks``), threshold at 0
(``mask_threshold``). torch is imported only here (and in the torch greedy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gtok_cli.errors import InputError, UsageError
from gtok_cli.geometry.candidates import Candidates, grid_points_px

if TYPE_CHECKING:
    import torch

SELECT_RULES = ("max-pred-iou", "single")
MODEL_TYPES = ("vit_h", "vit_l", "vit_b")
DTYPES = ("fp32", "bf16")


@dataclass
class SamTimings:
    """Seconds spent per stage (accumulated over images)."""

    encoder: float = 0.0
    decoder: float = 0.0
    upsample: float = 0.0
    images: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def load_sam(checkpoint: str | Path, model_type: str, device: str = "cpu") -> Any:
    """``sam_model_registry[model_type]`` with weights from a local file only (nothing is downloaded)."""
    import torch
    from segment_anything import sam_model_registry

    if model_type not in MODEL_TYPES:
        raise UsageError(f"--model-type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(
            "SAM checkpoint not found", file=str(path), field="--sam-checkpoint", reason="file.missing"
        )
    model = sam_model_registry[model_type]()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # a wrong file or a wrong --model-type: say which, in one line
        raise InputError(
            f"cannot load a {model_type} SAM state dict: {str(exc).splitlines()[0][:200]}",
            file=str(path),
            field="--sam-checkpoint",
            reason="checkpoint.invalid",
        ) from None
    return model.to(device).eval()


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _timed(timings: SamTimings, stage: str, device: torch.device) -> Iterator[None]:
    _sync(device)
    t0 = time.perf_counter()
    yield
    _sync(device)
    setattr(timings, stage, getattr(timings, stage) + time.perf_counter() - t0)


class SamCandidateMaker:
    """Turns images into :class:`Candidates` with one SAM model (kept on its device)."""

    def __init__(
        self,
        model: Any,
        *,
        grid: int = 32,
        select: str = "max-pred-iou",
        dtype: str = "fp32",
        prompt_chunk: int = 64,
        keep_on_device: bool | None = None,
    ) -> None:
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        if select not in SELECT_RULES:
            raise UsageError(f"--select must be one of {', '.join(SELECT_RULES)}, got {select!r}")
        if dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.model = model.eval()
        self.grid = grid
        self.select = select
        self.dtype = dtype
        self.prompt_chunk = prompt_chunk
        self.device = torch.device(model.device)
        # on a GPU the candidates stay there for the torch greedy; on CPU they are bit-packed as they come
        self.keep_on_device = self.device.type == "cuda" if keep_on_device is None else keep_on_device
        self.transform = ResizeLongestSide(model.image_encoder.img_size)
        self.timings = SamTimings()

    def _autocast(self) -> Any:
        import torch

        if self.dtype == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def encode(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Image embeddings ``(B, 256, 64, 64)`` of RGB uint8 ``(H, W, 3)`` images, one encoder pass."""
        import torch

        batch, input_sizes = [], []
        for image in images:
            resized = self.transform.apply_image(image)
            t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
            input_sizes.append((int(t.shape[1]), int(t.shape[2])))
            batch.append(self.model.preprocess(t[None].float())[0])
        with torch.inference_mode(), _timed(self.timings, "encoder", self.device), self._autocast():
            features = self.model.image_encoder(torch.stack(batch))
        return features, input_sizes

    def candidates(self, images: list[np.ndarray]) -> list[Candidates]:
        """Candidates for a batch of images (encoded together; prompts decoded per image in chunks)."""
        if not images:
            return []
        features, input_sizes = self.encode(images)
        out = []
        for b, image in enumerate(images):
            out.append(
                self._decode_image(features[b : b + 1], input_sizes[b], image.shape[0], image.shape[1])
            )
            self.timings.images += 1
        return out

    def _decode_image(
        self, features: torch.Tensor, input_size: tuple[int, int], height: int, width: int
    ) -> Candidates:
        import torch

        n = self.grid
        k_total = n * n
        points = self.transform.apply_coords(grid_points_px(n, width, height), (height, width))
        coords = torch.as_tensor(points, dtype=torch.float32, device=self.device)[:, None, :]
        labels = torch.ones((k_total, 1), dtype=torch.int64, device=self.device)
        multimask = self.select == "max-pred-iou"
        dense: torch.Tensor | None = None
        packed: np.ndarray | None = None
        if self.keep_on_device:
            dense = torch.empty((k_total, height, width), dtype=torch.bool, device=self.device)
        else:
            packed = np.empty((k_total, height, (width + 7) // 8), dtype=np.uint8)
        features = features.float() if self.dtype == "fp32" else features
        image_pe = self.model.prompt_encoder.get_dense_pe()
        for s in range(0, k_total, self.prompt_chunk):
            e = min(s + self.prompt_chunk, k_total)
            with torch.inference_mode(), _timed(self.timings, "decoder", self.device), self._autocast():
                sparse, dense_emb = self.model.prompt_encoder(
                    points=(coords[s:e], labels[s:e]), boxes=None, masks=None
                )
                low_res, pred_iou = self.model.mask_decoder(
                    image_embeddings=features,
                    image_pe=image_pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense_emb,
                    multimask_output=multimask,
                )
                pick = torch.argmax(pred_iou.float(), dim=1)  # first maximum; (B,) zeros when single
                chosen = low_res[torch.arange(e - s, device=self.device), pick].float()
            with torch.inference_mode(), _timed(self.timings, "upsample", self.device):
                up = self.model.postprocess_masks(chosen[:, None], input_size, (height, width))[:, 0]
                hard = up > self.model.mask_threshold
                if dense is not None:
                    dense[s:e] = hard
                else:
                    assert packed is not None
                    packed[s:e] = np.packbits(hard.cpu().numpy(), axis=-1)
        return Candidates(n, width, height, packed=packed, dense=dense, source=f"sam:{self.select}")
