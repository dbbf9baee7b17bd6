"""PV and heat-pump COP models of the energy domain: weather series -> per-kWp PV output, COP.

PV model (pvlib PVWatts chain, per kWp, vectorised over orientations)
--------------------------------------------------------------------
1. Solar position at the middle of each step (``pvlib.solarposition.get_solarposition``, site
   ``community.latitude_deg/longitude_deg``, data clock = UTC + ``utc_offset_h``).
2. GHI/DHI/DNI from the dataset's columns as :mod:`gridmarl.energy.citylearn` describes
   (Irradiance); plane-of-array irradiance with ``pvlib.irradiance
   .get_total_irradiance(model="haydavies", dni_extra=get_extra_radiation(...))``, albedo 0.25.
3. Beam angle-of-incidence loss ``pvlib.iam.physical`` (PVWatts applies the AOI loss before
   the DC model).
4. Cell temperature ``pvlib.temperature.faiman`` (u0 = 25, u1 = 6.84, wind 1 m/s: the data
   have no wind) from the dataset's air temperature.
5. ``pvlib.pvsystem.pvwatts_dc(pdc0 = 1 kW, gamma_pdc)`` × (1 − ``losses_pct``/100)
   (``pvlib.pvsystem.pvwatts_losses()`` defaults give 14.08 %, the config default is 14 %).
6. ``pvlib.inverter.pvwatts(pdc0 = 1 kW, eta_inv_nom = inverter_eta)``: DC/AC ratio 1.
P_pv = kWp × that output [kW].  Weather between the data's rows is interpolated linearly
(:mod:`gridmarl.energy.data`; each row's value is taken at the middle of its interval), so
Δt = 0.5 / 0.25 h gets PV computed at the finer step.

Heat-pump COP: ``cop = clip(cop_nominal + cop_slope_per_c · (T_out − 7), 1.0, 6.0)`` [-].
"""

from __future__ import annotations

from datetime import timedelta, timezone

import numpy as np
import pandas as pd
import pvlib

COP_REF_C = 7.0  # [C] outdoor temperature at which cop_nominal holds
COP_MIN, COP_MAX = 1.0, 6.0  # [-] clip of the linear COP model
FAIMAN_WIND_M_S = 1.0  # [m/s] wind speed for the cell temperature (the data have no wind)
ALBEDO = 0.25  # [-] ground reflectance for the transposition


def pv_ac_per_kwp(
    time: pd.DatetimeIndex,
    step_h: float,
    *,
    horizontal_w_m2: np.ndarray,
    dni_w_m2: np.ndarray,
    temp_air_c: np.ndarray,
    tilt_deg: np.ndarray,
    azimuth_deg: np.ndarray,
    latitude_deg: float,
    longitude_deg: float,
    utc_offset_h: float,
    horizontal_is_global: bool,
    gamma_pdc: float = -0.004,
    losses_pct: float = 14.0,
    inverter_eta: float = 0.96,
) -> np.ndarray:
    """PVWatts AC output per kWp [kW/kWp], ``[T, K]`` for K orientations (module docstring).

    Args:
        time: ``[T]`` start of each step, dataset local time (naive).
        step_h: Δt [h]; the sun is placed at the middle of each step.
        horizontal_w_m2: ``[T]`` the dataset's "diffuse" column [W/m2] (GHI if
            ``horizontal_is_global``).
        dni_w_m2: ``[T]`` direct normal irradiance [W/m2].
        temp_air_c: ``[T]`` air temperature [C].
        tilt_deg, azimuth_deg: ``[K]`` panel tilt from horizontal and azimuth (180 = south) [deg].
    """
    tz = timezone(timedelta(hours=utc_offset_h))
    mid = (time + pd.Timedelta(hours=step_h / 2)).tz_localize(tz)
    sun = pvlib.solarposition.get_solarposition(mid, latitude_deg, longitude_deg)
    zen = sun["apparent_zenith"].to_numpy()[:, None]
    sazi = sun["azimuth"].to_numpy()[:, None]
    cosz = np.clip(np.cos(np.radians(zen)), 0.0, None)
    horiz = np.clip(np.asarray(horizontal_w_m2, float)[:, None], 0.0, None)
    dni = np.clip(np.asarray(dni_w_m2, float)[:, None], 0.0, None)
    if horizontal_is_global:
        ghi, dhi = horiz, np.clip(horiz - dni * cosz, 0.0, None)
    else:
        ghi, dhi = horiz + dni * cosz, horiz
    dni_extra = pvlib.irradiance.get_extra_radiation(mid).to_numpy()[:, None]
    tilt = np.asarray(tilt_deg, float)[None, :]
    azim = np.asarray(azimuth_deg, float)[None, :]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azim, zen, sazi, dni, ghi, dhi, dni_extra=dni_extra, albedo=ALBEDO, model="haydavies"
    )
    aoi = pvlib.irradiance.aoi(tilt, azim, zen, sazi)
    effective = np.nan_to_num(poa["poa_direct"] * pvlib.iam.physical(aoi) + poa["poa_diffuse"])
    t_cell = pvlib.temperature.faiman(
        np.nan_to_num(poa["poa_global"]),
        np.asarray(temp_air_c, float)[:, None],
        wind_speed=FAIMAN_WIND_M_S,
    )
    pdc = pvlib.pvsystem.pvwatts_dc(effective, t_cell, pdc0=1.0, gamma_pdc=gamma_pdc)
    pdc = np.clip(pdc, 0.0, None) * (1.0 - losses_pct / 100.0)
    ac = pvlib.inverter.pvwatts(pdc, pdc0=1.0, eta_inv_nom=inverter_eta)
    return np.clip(np.nan_to_num(np.asarray(ac, float)), 0.0, None)


def heat_pump_cop(outdoor_c: np.ndarray, cop_nominal: float, cop_slope_per_c: float) -> np.ndarray:
    """COP = clip(cop_nominal + cop_slope_per_c · (T_out − 7 C), 1, 6) [-], same shape as T_out."""
    return np.clip(
        cop_nominal + cop_slope_per_c * (np.asarray(outdoor_c) - COP_REF_C), COP_MIN, COP_MAX
    )
