"""The cloud trading platform: zero-sum bills, shares, transformer and peak terms."""

from __future__ import annotations

import pytest
import torch

from gridmarl.energy import market

T64 = torch.float64


def test_two_prosumer_bills_by_hand() -> None:
    x = torch.tensor([[3.0, -1.0]], dtype=T64)
    price = torch.tensor([0.3], dtype=T64)
    bills, traded = market.p2p_bills(x, price, 0.1, 1.0)
    # Q = 1 kWh at (0.3 + 0.1) / 2 = 0.2; the buyer's other 2 kWh at 0.3
    assert bills[0].tolist() == pytest.approx([1 * 0.2 + 2 * 0.3, -0.2])
    assert traded.item() == pytest.approx(1.0)
    clr = market.clear(x, price, 0.1, 1.0)
    assert clr.grid_cost_usd.item() == pytest.approx(0.6)
    assert (clr.grid_kw.item(), clr.import_kw.item(), clr.export_kw.item()) == (2.0, 2.0, 0.0)


def test_bills_sum_to_grid_bill_for_random_x() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(256, 9, generator=g, dtype=T64) * 3
    x[:8] = x[:8].abs()  # all buyers
    x[8:16] = -x[8:16].abs()  # all sellers
    x[16:20] = 0.0
    price = 0.07 + torch.rand(256, generator=g, dtype=T64) * 0.5  # import price >= feed-in
    clr = market.clear(x, price, 0.07, 0.25)
    torch.testing.assert_close(clr.bills_usd.sum(-1), clr.grid_cost_usd, rtol=0, atol=1e-12)
    # peers never pay more than the grid price nor earn less than the feed-in
    assert torch.all(clr.bills_usd <= x.clamp_min(0) * price[:, None] * 0.25 + 1e-12)
    sellers = x < 0
    assert torch.all(clr.bills_usd[sellers] <= (x * 0.07 * 0.25)[sellers] + 1e-12)


def test_shares_sum_to_one_and_follow_the_direction_of_g() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(128, 6, generator=g, dtype=T64)
    x[0] = 0.0
    s = market.cost_shares(x)
    torch.testing.assert_close(s.sum(-1), torch.ones(128, dtype=T64))
    assert torch.all(s >= 0)
    assert s[0].tolist() == pytest.approx([1 / 6] * 6)
    imp = market.cost_shares(torch.tensor([[2.0, 6.0, -1.0]], dtype=T64))
    assert imp[0].tolist() == pytest.approx([0.25, 0.75, 0.0])
    exp = market.cost_shares(torch.tensor([[1.0, -3.0, -1.0]], dtype=T64))
    assert exp[0].tolist() == pytest.approx([0.0, 0.75, 0.25])


def test_transformer_excess_and_peak_increment() -> None:
    over = market.transformer_excess(torch.tensor([5.0, -12.0, 10.0]), 10.0)
    assert over.tolist() == [0.0, 2.0, 0.0]
    inc, peak = market.peak_increment(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 2.0]))
    assert inc.tolist() == [1.0, 0.0]
    assert peak.tolist() == [3.0, 2.0]
