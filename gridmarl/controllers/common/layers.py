"""Network building blocks shared by the learned controllers."""

from __future__ import annotations

import math

from torch import Tensor, nn


def mlp(
    in_dim: int, hidden: int, out_dim: int, layers: int = 2, act: type[nn.Module] = nn.Tanh
) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with ``act``, then a linear output."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), act()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2.0)) -> None:
    """Orthogonal weights and zero biases on every ``nn.Linear`` (the usual PPO initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            nn.init.zeros_(m.bias)


class ForecastEncoder(nn.Module):
    """LSTM over a forecast window; the final hidden state summarises it.

    Args:
        in_dim: features per forecast step ``f``.
        hidden: LSTM hidden size ``d_h`` (the output width).

    ``forward(x [M, H, f]) -> [M, d_h]``; with ``H == 0`` or ``f == 0`` it returns zeros, so
    envs without a forecast use the same actor.
    """

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.hidden = hidden
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True) if in_dim > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        """Final hidden state ``[M, d_h]`` of the LSTM run over ``x [M, H, f]``."""
        if self.lstm is None or x.shape[1] == 0:
            return x.new_zeros(x.shape[0], self.hidden)
        _, (h, _) = self.lstm(x)
        return h[-1]


class SetTransformerEncoder(nn.Module):
    """Transformer encoder over an unordered set of tokens (no positional encoding).

    Self-attention with no positional encoding is permutation-equivariant over the tokens, so
    mean pooling its output is permutation-invariant (Vaswani et al. 2017, Eq. 1 for the
    scaled dot-product attention).

    Args:
        d_model: token width.
        heads: attention heads.
        layers: encoder layers.
        ff: feed-forward width.
    """

    def __init__(self, d_model: int, heads: int, layers: int, ff: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens [M, L, d] -> [M, L, d]`` contextualised tokens."""
        return self.norm(self.encoder(tokens))
