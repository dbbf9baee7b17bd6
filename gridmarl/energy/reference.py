"""A slow, per-env, per-agent pure-Python twin of :class:`gridmarl.energy.env.CommunityEnv`.

It implements the model of :mod:`gridmarl.energy.community` line by line with Python floats and
explicit loops over envs and prosumers, written independently of the tensor code, so that the
differential tests can check the batched env (physics, market, rewards and ``info``) against it.
It does not build observations.
"""

from __future__ import annotations

from collections.abc import Sequence

from gridmarl.energy.community import Community

# Per-step quantities the reference returns, named like the env's ``Step.info`` keys.
INFO_KEYS = (
    "cost_usd",
    "grid_kw",
    "import_kw",
    "export_kw",
    "grid_cost_usd",
    "p2p_traded_kwh",
    "over_kwh",
    "peak_kw",
    "degradation_usd",
    "comfort_c_h",
    "ev_unmet_kwh",
    "clipped_kw",
)


class ReferenceCommunityEnv:
    """Reference stepping of ``len(starts)`` envs with fixed start offsets.

    Args:
        community: the community and its series.
        starts: start offset into the span of each env [steps].
        episode_steps: steps per episode T.
    """

    def __init__(self, community: Community, starts: Sequence[int], episode_steps: int) -> None:
        self.c = community
        self.starts = [int(s) for s in starts]
        self.episode_len = int(episode_steps)
        self.a = [float(v) for v in community.thermal_a()]
        self.reset()

    def _present(self, s: int, n: int) -> bool:
        c = self.c
        return bool(c.has_ev[n]) and 0 <= s < c.steps and bool(c.ev_present[s, n])

    def _deadline_floor(self, b: int, n: int, s: int, start: int) -> float:
        """The deadline guard's least charge power of EV ``n`` in env ``b`` at span step ``s``
        [kW]: 0 unless its stay departs within the episode (community.py item 2)."""
        c, dt = self.c, self.c.step_h
        stay = 0
        while self._present(s + stay, n):
            stay += 1
        # a departure the episode bills: absent after the stay, within the episode
        if not (s + stay < c.steps and s + stay <= start + self.episode_len):
            return 0.0
        need = max(0.0, float(c.ev_target_kwh[n]) - self.ev[b][n]) / c.ev_eta
        later = max(0.0, stay * dt - dt) * float(c.ev_kw[n])
        return min(max(0.0, (need - later) / dt), float(c.ev_kw[n]))

    def reset(self) -> None:
        """Initial device states of every env (EVs present at the first step arrive)."""
        c = self.c
        self.t = 0
        self.battery = [[float(c.battery_init_kwh[n]) for n in range(c.n)] for _ in self.starts]
        self.theta = [[float(c.theta_init_c[n]) for n in range(c.n)] for _ in self.starts]
        self.peak = [0.0 for _ in self.starts]
        self.ev = [
            [float(c.ev_arrival_kwh[s, n]) if self._present(s, n) else 0.0 for n in range(c.n)]
            for s in self.starts
        ]

    def step(
        self, discrete: Sequence[Sequence[int]], continuous: Sequence[Sequence[Sequence[float]]]
    ) -> dict[str, list]:
        """One step of every env.

        Args:
            discrete: ``[B][N]`` heat-pump modes.
            continuous: ``[B][N][2]`` (battery setpoint, EV request).

        Returns:
            dict with ``reward [B][N]``, ``team_reward [B]`` and the per-env scalars
            ``cost_usd, grid_kw, import_kw, export_kw, grid_cost_usd, p2p_traded_kwh, over_kwh,
            peak_kw, degradation_usd, comfort_c_h, ev_unmet_kwh, clipped_kw`` ([B] lists).
        """
        c = self.c
        dt = c.step_h
        m_max = c.hp_modes - 1
        fi = c.feed_in_usd_per_kwh
        out: dict[str, list] = {k: [] for k in ("reward", "team_reward", *INFO_KEYS)}
        for b, start in enumerate(self.starts):
            s = start + self.t
            price = float(c.price_usd_per_kwh[s])
            tout = float(c.outdoor_c[s])
            x: list[float] = []
            own: list[float] = []
            deg_sum = comfort_sum = unmet_sum = clip_sum = 0.0
            for n in range(c.n):
                # heat pump
                has_hp = bool(c.has_hp[n])
                m = min(max(int(discrete[b][n]), 0), m_max) if has_hp else 0
                p_hp = float(c.hp_kw[n]) * m / m_max
                # battery
                e = self.battery[b][n]
                u_b = min(max(float(continuous[b][n][0]), -1.0), 1.0)
                p = u_b * float(c.battery_kw[n])
                p_c = p_d = 0.0
                if p >= 0:
                    p_c = min(p, max(0.0, (float(c.battery_kwh[n]) - e) / (c.eta_charge * dt)))
                else:
                    p_d = min(
                        -p, max(0.0, (e - float(c.battery_min_kwh[n])) * c.eta_discharge / dt)
                    )
                clip_sum += abs(p - (p_c - p_d))
                self.battery[b][n] = e + (c.eta_charge * p_c - p_d / c.eta_discharge) * dt
                # EV
                present = self._present(s, n)
                u_ev = min(max(float(continuous[b][n][1]), -1.0), 1.0)
                want = (u_ev + 1.0) / 2.0 * float(c.ev_kw[n])
                p_ev = 0.0
                if present:
                    head = max(0.0, (float(c.ev_kwh[n]) - self.ev[b][n]) / (c.ev_eta * dt))
                    floor = self._deadline_floor(b, n, s, start) if c.ev_deadline_guard else 0.0
                    p_ev = min(max(want, floor), head)
                clip_sum += abs(want - p_ev)
                self.ev[b][n] += c.ev_eta * p_ev * dt
                unmet = 0.0
                if present and not self._present(s + 1, n):
                    unmet = max(0.0, float(c.ev_target_kwh[n]) - self.ev[b][n])
                # thermal
                viol = 0.0
                if has_hp:
                    a = self.a[n]
                    th = a * self.theta[b][n] + (1.0 - a) * (
                        tout + float(c.r_c_per_kw[n]) * float(c.cop[s, n]) * p_hp
                    )
                    self.theta[b][n] = th
                    viol = max(0.0, float(c.theta_lo_c[n]) - th) + max(
                        0.0, th - float(c.theta_hi_c[n])
                    )
                deg = c.degradation_usd_per_kwh * (p_c + p_d) * dt
                comfort = c.comfort_usd_per_c_h * viol * dt
                unmet_usd = c.unmet_usd_per_kwh * unmet
                deg_sum += deg
                comfort_sum += viol * dt
                unmet_sum += unmet
                own.append(deg + comfort + unmet_usd)
                x.append(float(c.load_kw[s, n]) + p_hp + p_ev + p_c - p_d - float(c.pv_kw[s, n]))
            # grid and platform
            g = sum(x)
            imp, exp = max(g, 0.0), max(-g, 0.0)
            grid_cost = (price * imp - fi * exp) * dt
            demand = sum(max(v, 0.0) for v in x)
            supply = sum(max(-v, 0.0) for v in x)
            traded = min(demand, supply)
            p_int = (price + fi) / 2.0
            bills = []
            for v in x:
                if v > 0:
                    peer = traded * v / demand
                    bills.append((peer * p_int + (v - peer) * price) * dt)
                elif v < 0:
                    peer = traded * (-v) / supply
                    bills.append(-(peer * p_int + (-v - peer) * fi) * dt)
                else:
                    bills.append(0.0)
            over = max(0.0, abs(g) - c.transformer_kw)
            over_usd = c.over_limit_usd_per_kwh * over * dt
            new_peak = max(self.peak[b], imp)
            peak_usd = c.peak_usd_per_kw * (new_peak - self.peak[b])
            self.peak[b] = new_peak
            weights = [max(v, 0.0) if g >= 0 else max(-v, 0.0) for v in x]
            total_w = sum(weights)
            shares = [w / total_w if total_w > 0 else 1.0 / c.n for w in weights]
            rewards = [-(bills[n] + own[n] + shares[n] * (over_usd + peak_usd)) for n in range(c.n)]
            cost = grid_cost + sum(own) + over_usd + peak_usd
            # arrivals for the next step
            for n in range(c.n):
                if self._present(s + 1, n) and not self._present(s, n):
                    self.ev[b][n] = float(c.ev_arrival_kwh[s + 1, n])
            for k, v in (
                ("reward", rewards),
                ("team_reward", -cost),
                ("cost_usd", cost),
                ("grid_kw", g),
                ("import_kw", imp),
                ("export_kw", exp),
                ("grid_cost_usd", grid_cost),
                ("p2p_traded_kwh", traded * dt),
                ("over_kwh", over * dt),
                ("peak_kw", new_peak),
                ("degradation_usd", deg_sum),
                ("comfort_c_h", comfort_sum),
                ("ev_unmet_kwh", unmet_sum),
                ("clipped_kw", clip_sum),
            ):
                out[k].append(v)
        self.t += 1
        return out

    def device_state(self) -> dict[str, list]:
        """``battery_kwh``, ``ev_kwh``, ``theta_c`` ``[B][N]`` and ``peak_kw`` ``[B]``."""
        return {
            "battery_kwh": [list(r) for r in self.battery],
            "ev_kwh": [list(r) for r in self.ev],
            "theta_c": [list(r) for r in self.theta],
            "peak_kw": list(self.peak),
        }
