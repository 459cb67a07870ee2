"""Slider stops: the values the app's t and σ sliders offer, and the one "nearest stop" rule.

A value from anywhere (a link, a scene, a default, a prefetch step) is moved to the nearest stop
of its slider by `nearest`, so the widgets, the URL table (`scoreviz.ui.links`) and the
background prefetch agree on what "the next stop" is. Plain data: no Streamlit.

    stops = t_stops(process)          # [t_min, 0.01, 0.02, ..., 1.0]
    nearest(stops, 0.234)             # 0.23
    nearest(sigma_stops(process), 0.5, log=True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from scoreviz.analysis import sigma_bounds
from scoreviz.processes import NoiseProcess

T_STEP = 0.01  # t slider resolution (plus t_min itself as the first stop)


def t_stops(process: NoiseProcess) -> list[float]:
    """The t slider's stops: t_min, then 0.01, 0.02, ..., 1.0 (all above t_min)."""
    grid = [round(k * T_STEP, 4) for k in range(1, round(1 / T_STEP) + 1)]
    return [float(process.t_min)] + [t for t in grid if t > process.t_min + 1e-9]


_T_LABELS: dict[str, dict[float, str]] = {}  # process name -> stop -> label (read-only)


def t_labels(process: NoiseProcess) -> dict[float, str]:
    """Each t stop's label "t = 0.1  (σ = 0.322)", computed once per process (one vectorised
    call). Formatting the ~100 stops one by one, on every rerun, was 70 % of a slider move's
    server time (py-spy under benchmarks/loadgen.py)."""
    labels = _T_LABELS.get(process.name)
    if labels is None:
        stops = t_stops(process)
        sigma = process.at(torch.tensor(stops, dtype=torch.float64)).sigma
        labels = {
            t: f"t = {t:.3g}  (σ = {float(s):.3g})" for t, s in zip(stops, sigma, strict=True)
        }
        _T_LABELS[process.name] = labels  # same for every session: shared, never changed
    return labels


def sigma_stops(process: NoiseProcess, n: int = 25, smallest: float = 1e-2) -> list[float]:
    """The σ sliders' stops: n noise levels log-spaced over the process' range, 3 significant
    digits (the range's ends exact)."""
    lo, hi = sigma_bounds(process, smallest)
    inner = [float(f"{s:.3g}") for s in np.geomspace(lo, hi, n)[1:-1]]
    return sorted({lo, hi, *(s for s in inner if lo < s < hi)})


def nearest_index(stops: Sequence[float], value: float, log: bool = False) -> int:
    """Index of the stop nearest to `value` (on a log scale with log=True: σ stops, value > 0).
    Ties go to the first such stop."""
    if log:
        return min(range(len(stops)), key=lambda k: abs(math.log(stops[k] / value)))
    return min(range(len(stops)), key=lambda k: abs(stops[k] - value))


def nearest(stops: Sequence[float], value: float, log: bool = False) -> float:
    """The stop nearest to `value` (see `nearest_index`)."""
    return stops[nearest_index(stops, value, log)]
