"""The cloud trading platform and the grid connection (:mod:`gridmarl.energy.community`,
items 7 and the P2P paragraph), as pure batched functions.

Shapes: net powers ``x`` are ``[B, N]`` (+ import, - export) [kW]; prices and community totals
are ``[B]``.  The internal price is the mid-market rate ``(pi + pi_fi) / 2``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Clearing(NamedTuple):
    """Result of one step of the platform.

    Attributes:
        grid_kw: community net G = sum_n x_n ``[B]`` [kW] (+ import, - export).
        import_kw: max(G, 0) ``[B]`` [kW].
        export_kw: max(-G, 0) ``[B]`` [kW].
        grid_cost_usd: (pi imp - pi_fi exp) dt ``[B]`` [$].
        bills_usd: per-prosumer bills ``[B, N]`` [$]; they sum to ``grid_cost_usd``.
        traded_kwh: energy traded between peers Q dt ``[B]`` [kWh].
    """

    grid_kw: Tensor
    import_kw: Tensor
    export_kw: Tensor
    grid_cost_usd: Tensor
    bills_usd: Tensor
    traded_kwh: Tensor


def grid_flows(x_kw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(G, imp, exp)`` [kW] ``[B]`` of net powers ``x [B, N]`` [kW]."""
    g = x_kw.sum(-1)
    return g, g.clamp_min(0.0), (-g).clamp_min(0.0)


def grid_cost(
    import_kw: Tensor, export_kw: Tensor, price: Tensor, feed_in: float, step_h: float
) -> Tensor:
    """Grid bill of the community ``(pi imp - pi_fi exp) dt`` [$]."""
    return (price * import_kw - feed_in * export_kw) * step_h


def p2p_bills(x_kw: Tensor, price: Tensor, feed_in: float, step_h: float) -> tuple[Tensor, Tensor]:
    """Per-prosumer bills of the platform.

    Buyers' demand D = sum max(x, 0), sellers' supply S = sum max(-x, 0), traded Q = min(D, S).
    Buyer n gets ``Q x_n / D`` at the internal price ``(pi + pi_fi) / 2`` and the rest at ``pi``;
    seller n sells ``Q s_n / S`` at the internal price and the rest at ``pi_fi``.

    Args:
        x_kw: net power ``[B, N]`` [kW].
        price: import price pi ``[B]`` [$/kWh].
        feed_in: feed-in tariff pi_fi [$/kWh].
        step_h: dt [h].

    Returns:
        ``(bills [B, N] [$], traded [B] [kWh])``; ``bills.sum(-1)`` equals the grid cost.
    """
    buy = x_kw.clamp_min(0.0)
    sell = (-x_kw).clamp_min(0.0)
    d = buy.sum(-1)
    s = sell.sum(-1)
    q = torch.minimum(d, s)
    zero = torch.zeros_like(q)
    fb = torch.where(d > 0, q / torch.where(d > 0, d, torch.ones_like(d)), zero)[..., None]
    fs = torch.where(s > 0, q / torch.where(s > 0, s, torch.ones_like(s)), zero)[..., None]
    pi = price[..., None]
    p_int = 0.5 * (pi + feed_in)
    bills = buy * (fb * p_int + (1.0 - fb) * pi) - sell * (fs * p_int + (1.0 - fs) * feed_in)
    return bills * step_h, q * step_h


def clear(x_kw: Tensor, price: Tensor, feed_in: float, step_h: float) -> Clearing:
    """Clear one step: grid flows, grid cost, P2P bills and traded energy."""
    g, imp, exp = grid_flows(x_kw)
    bills, traded = p2p_bills(x_kw, price, feed_in, step_h)
    return Clearing(g, imp, exp, grid_cost(imp, exp, price, feed_in, step_h), bills, traded)


def transformer_excess(grid_kw: Tensor, limit_kw: float) -> Tensor:
    """Power above the transformer limit ``max(0, |G| - limit)`` [kW]."""
    return (grid_kw.abs() - limit_kw).clamp_min(0.0)


def peak_increment(import_kw: Tensor, peak_kw: Tensor) -> tuple[Tensor, Tensor]:
    """``(max(peak, imp) - peak, max(peak, imp))`` [kW]: the rise of the running peak import."""
    new = torch.maximum(peak_kw, import_kw)
    return new - peak_kw, new


def cost_shares(x_kw: Tensor) -> Tensor:
    """Shares ``[B, N]`` [-] of the transformer and peak costs; each row sums to 1.

    Proportional to ``max(x_n, 0) / D`` when G >= 0 and to ``max(-x_n, 0) / S`` when G < 0;
    equal shares ``1 / N`` when that denominator is 0.
    """
    g = x_kw.sum(-1, keepdim=True)
    w = torch.where(g >= 0, x_kw.clamp_min(0.0), (-x_kw).clamp_min(0.0))
    den = w.sum(-1, keepdim=True)
    equal = torch.full_like(w, 1.0 / x_kw.shape[-1])
    return torch.where(den > 0, w / torch.where(den > 0, den, torch.ones_like(den)), equal)
