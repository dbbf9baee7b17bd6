"""Running normalisers for observations and value targets.

Both are ``nn.Module`` buffers, so they travel with ``state_dict`` (and hence the checkpoint)
and with ``.to(device)``.  Statistics are frozen unless ``update`` is called, which only the
training loop does: at decision time every agent is normalised by the same fixed statistics,
so normalising never couples one agent's action to another agent's observation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RunningMeanStd(nn.Module):
    """Per-feature running mean and variance (parallel Welford / Chan et al. merge).

    Args:
        shape: feature shape (the trailing dimensions of the data).
        clip: normalised values are clipped to ``[-clip, clip]``.
        eps: floor on the variance.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-4) -> None:
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merge a batch ``[..., *shape]`` into the statistics."""
        nd = self.mean.dim()
        if x.numel() == 0:  # e.g. no forecast (H = 0): nothing to merge
            return
        flat = (
            x.detach().reshape(-1, *x.shape[x.dim() - nd :]).to(torch.float64)
            if nd
            else x.detach().reshape(-1).to(torch.float64)
        )
        if flat.shape[0] == 0:
            return
        b_mean = flat.mean(0)
        b_var = flat.var(0, unbiased=False)
        b_count = float(flat.shape[0])
        tot = self.count + b_count
        delta = b_mean - self.mean
        new_mean = self.mean + delta * b_count / tot
        m2 = self.var * self.count + b_var * b_count + delta.pow(2) * self.count * b_count / tot
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / tot)
        self.count.copy_(tot)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x − mean) / std``, clipped, in ``x``'s dtype."""
        std = torch.sqrt(self.var.clamp_min(self.eps)).to(x.dtype)
        return ((x - self.mean.to(x.dtype)) / std).clamp(-self.clip, self.clip)

    def denormalize(self, y: Tensor) -> Tensor:
        """Inverse of ``normalize`` (without the clip)."""
        std = torch.sqrt(self.var.clamp_min(self.eps)).to(y.dtype)
        return y * std + self.mean.to(y.dtype)


class ValueNorm(RunningMeanStd):
    """Scalar normaliser of value targets (MAPPO's "value normalization", Yu et al. 2022,
    "The surprising effectiveness of PPO in cooperative multi-agent games", §4.1 and
    Appendix: the critic regresses on normalised returns, predictions are de-normalised for
    GAE).  No clipping of the normalised targets."""

    def __init__(self) -> None:
        super().__init__((), clip=float("inf"), eps=1e-8)
