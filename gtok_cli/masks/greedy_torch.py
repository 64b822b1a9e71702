"""The greedy of ``greedy.py`` in torch, batched over all objects of an image (the GPU path).

Same variants, tie-breaking and exact integer decisions as the numpy path, so both give the same anchors;
runs on CPU torch too (tests compare it with numpy). Pixel counts of candidate × object products come from
float matrix products of 0/1 matrices, exact while the image has fewer than 2**24 pixels (else float64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gtok_cli.masks.greedy import GreedyResult, _check

if TYPE_CHECKING:
    import torch


def _counts(rows: torch.Tensor, cands: torch.Tensor, chunk: int) -> torch.Tensor:
    """``rows (O, P) bool`` · ``cands (K, P) bool``ᵀ → int64 ``(O, K)`` overlap pixel counts."""
    import torch

    fdt = torch.float32 if rows.shape[1] < 2**24 else torch.float64
    r = rows.to(fdt)
    out = torch.empty(rows.shape[0], cands.shape[0], dtype=torch.int64, device=rows.device)
    for s in range(0, cands.shape[0], chunk):
        out[:, s : s + chunk] = torch.round(r @ cands[s : s + chunk].to(fdt).T).to(torch.int64)
    return out


def greedy_torch(
    candidates: torch.Tensor,
    gt_masks: torch.Tensor,
    *,
    tau: float = 0.9,
    variant: str = "sorted",
    max_tokens: int | None = None,
    chunk: int = 256,
) -> list[GreedyResult]:
    """``candidates`` bool ``(K, H, W)``, ``gt_masks`` bool ``(O, H, W)``, on one device → results."""
    import torch

    _check(tau, variant, max_tokens)
    n_obj = gt_masks.shape[0]
    if n_obj == 0:
        return []
    dev = candidates.device
    c_all = candidates.reshape(candidates.shape[0], -1)
    g = gt_masks.to(dev).reshape(n_obj, -1)
    inter = _counts(g, c_all, chunk)
    gt_area = g.sum(dim=1)
    rel = torch.nonzero((inter > 0).any(dim=0)).squeeze(1)  # ascending grid index
    c = c_all[rel]
    inter = inter[:, rel]
    touching = inter > 0
    i_count = torch.zeros(n_obj, dtype=torch.int64, device=dev)
    u_count = gt_area.clone()
    n_chosen = torch.zeros(n_obj, dtype=torch.int64, device=dev)
    union = torch.zeros_like(g)
    cap = max_tokens if max_tokens is not None else c.shape[0] + 1
    done = (gt_area == 0) | ~touching.any(dim=1)
    steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (accepted, cand, I, U)

    def accept(pick: torch.Tensor, ok: torch.Tensor, new_i: torch.Tensor, new_u: torch.Tensor) -> None:
        nonlocal union, i_count, u_count, n_chosen, done
        union = torch.where(ok[:, None], union | c[pick], union)
        i_count = torch.where(ok, new_i, i_count)
        u_count = torch.where(ok, new_u, u_count)
        n_chosen = n_chosen + ok.to(torch.int64)
        steps.append((ok, pick, i_count, u_count))

    def reached() -> torch.Tensor:
        return (i_count.double() / u_count.clamp(min=1).double() >= tau) | (n_chosen >= cap)

    if c.shape[0] == 0:
        pass
    elif variant == "sorted":
        areas = c.sum(dim=1)
        own_iou = inter.double() / (areas[None, :] + gt_area[:, None] - inter).clamp(min=1).double()
        key = torch.where(touching, own_iou, torch.full_like(own_iou, -1.0))
        order = torch.sort(key, dim=1, descending=True, stable=True).indices
        n_touch = touching.sum(dim=1)
        for t in range(int(n_touch.max())):
            pick = order[:, t]
            active = ~done & (t < n_touch)
            grown = union | c[pick]
            new_i = (grown & g).sum(dim=1)
            new_u = (grown | g).sum(dim=1)
            ok = active & (new_i * u_count > i_count * new_u)
            accept(pick, ok, new_i, new_u)
            done = done | reached() | (t + 1 >= n_touch)
            if t % 8 == 7 and bool(done.all()):
                break
    else:
        alive = touching.clone()
        while not bool(done.all()):
            free = ~union
            a = _counts(g & free, c, chunk)
            b = _counts(~g & free, c, chunk)
            alive &= a > 0
            score = (i_count[:, None] + a).double() / (u_count[:, None] + b).double()
            score = torch.where(alive, score, torch.full_like(score, -1.0))
            pick = torch.argmax(score, dim=1)  # first maximum = lowest grid index
            a_p = a.gather(1, pick[:, None]).squeeze(1)
            b_p = b.gather(1, pick[:, None]).squeeze(1)
            gain = alive.gather(1, pick[:, None]).squeeze(1) & (
                (i_count + a_p) * u_count > i_count * (u_count + b_p)
            )
            ok = ~done & gain
            accept(pick, ok, i_count + a_p, u_count + b_p)
            done = done | ~gain | reached()
    return _collect(steps, rel, i_count, u_count, gt_area, n_obj)


def _collect(
    steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    rel: torch.Tensor,
    i_count: torch.Tensor,
    u_count: torch.Tensor,
    gt_area: torch.Tensor,
    n_obj: int,
) -> list[GreedyResult]:
    import torch

    rel_l = rel.cpu().tolist()
    chosen: list[list[int]] = [[] for _ in range(n_obj)]
    path: list[list[float]] = [[] for _ in range(n_obj)]
    if steps:
        ok = torch.stack([s[0] for s in steps]).cpu().tolist()
        pick = torch.stack([s[1] for s in steps]).cpu().tolist()
        ic = torch.stack([s[2] for s in steps]).cpu().tolist()
        uc = torch.stack([s[3] for s in steps]).cpu().tolist()
        for t in range(len(steps)):
            for o in range(n_obj):
                if ok[t][o]:
                    chosen[o].append(rel_l[pick[t][o]])
                    path[o].append(ic[t][o] / uc[t][o])
    ia, ua, ga = i_count.cpu().tolist(), u_count.cpu().tolist(), gt_area.cpu().tolist()
    return [
        GreedyResult(tuple(chosen[o]), tuple(path[o]), ia[o], ua[o] if ga[o] else 0, ga[o])
        for o in range(n_obj)
    ]
