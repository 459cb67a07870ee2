"""Cached core calls for the Data/forward, Train and Score-field pages (bounded st.cache_data).

Cache keys are the hashable settings: distribution key (a registry name, or "upload:<sha>" so an
upload's content is part of the key), process key, t, grid sizes, model id. Unhashable objects
are passed as leading-underscore arguments (`_dist`, `_model`), which Streamlit does not hash:
the key string beside each one must identify it. Times are rounded to 4 decimals first, so
slider positions map to stable keys. Values are small numpy arrays / dataclasses.

Torch runs on one intra-op thread here as everywhere (`scoreviz.threads`).

Training is never cached here (a cache would replay, not show, a progress bar); finished models
are shared through `scoreviz.ui.state.shared_models`.
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st
import torch

from scoreviz import forward, grids
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import get_process


def model_key(result) -> str | None:
    """Cache key of a TrainResult: its model id plus how many steps it really ran (Stop)."""
    if result is None:
        return None
    return f"{result.model_id}:{len(result.history)}"


def tkey(t: float) -> float:
    """The cache key of a time: rounded to 4 decimals."""
    return round(float(t), 4)


@st.cache_data(max_entries=32, show_spinner=False)
def samples(dist_key: str, _dist: GaussianMixture, n: int, seed: int) -> np.ndarray:
    """n clean samples x_0 (n, 2) float32 for `seed`."""
    gen = torch.Generator().manual_seed(int(seed))
    return _dist.sample(n, generator=gen).numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def noised(dist_key: str, _dist: GaussianMixture, process_key: str, t: float, n: int, seed: int):
    """(x_0, x_t) of n particles at time t; the same x_0 and eps at every t (float32 numpy)."""
    traj = forward.forward_trajectory(_dist, get_process(process_key), [0.0, t], n=n, seed=seed)
    return traj[0], traj[1]


@st.cache_data(max_entries=64, show_spinner=False)
def density_grid(dist_key: str, _dist: GaussianMixture, process_key: str, t: float, n: int):
    """(Grid, exact p_t on it (n, n)) over the view range of time t."""
    process = get_process(process_key)
    grid = grids.make_grid(n, forward.view_range(process, t))
    logp = grids.log_density_grid(_dist, process, t, grid)
    return grid, grids.finite(np.exp(logp.astype(np.float64)))


@st.cache_data(max_entries=16, show_spinner=False)
def prior_check(
    dist_key: str, _dist: GaussianMixture, process_key: str, pairs: int | None = None
) -> forward.PriorMismatch:
    """KL(p_1 || prior) by Monte Carlo; with `pairs`, on at most pairs / K points (>= 1,024,
    <= 8,192): its cost grows with the number of components K (uploads: up to 2,000)."""
    n = 8192 if pairs is None else int(np.clip(pairs // _dist.n_components, 1024, 8192))
    return forward.prior_mismatch(_dist, get_process(process_key), n=n)


@st.cache_data(max_entries=16, show_spinner=False)
def animation_data(
    dist_key: str, _dist: GaussianMixture, process_key: str, n_frames: int, n: int, seed: int
):
    """(times (F,), trajectory (F, n, 2), ranges (F, 2)) of the forward-diffusion animation."""
    process = get_process(process_key)
    times = np.linspace(0.0, 1.0, n_frames)
    times[0] = 0.0
    traj = forward.forward_trajectory(_dist, process, times, n=n, seed=seed)
    ranges = np.array([forward.view_range(process, t) for t in times])
    return times, traj, ranges


@st.cache_data(max_entries=64, show_spinner=False)
def score_field(
    model_id: str | None,
    _model,
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    t: float,
    n_arrows: int = 25,
) -> grids.ScoreField:
    """The score field bundle at t (learned part only if a model is given; keyed by model_id)."""
    process = get_process(process_key)
    learned_fn = None if _model is None else _model.score_fn()
    return grids.score_field(
        _dist, process, t, learned_fn, forward.view_range(process, t), n_arrows=n_arrows
    )


@st.cache_data(max_entries=16, show_spinner=False)
def mean_loss_floor(
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    weighting: str,
    dae_t: float | None,
    time_sampling: str = "uniform",
    n_mc: int = 1024,
) -> float | None:
    """The exact minimum of the training loss (`losses.training_floor`) for a model trained with
    `time_sampling` (TrainConfig.time_sampling), None if not finite."""
    from scoreviz import losses, training

    process = get_process(process_key)
    density = None
    if time_sampling != "uniform":
        density = functools.partial(training.time_density, process, scheme=time_sampling)
    value = losses.training_floor(_dist, process, weighting, dae_t, density, n_mc=n_mc)
    return value if np.isfinite(value) else None
