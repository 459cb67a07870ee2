"""Cached computations of the DAE, Loss-vs-t and Sampling pages (bounded st.cache_data).

Keys are hashable settings: distribution key ("upload:<sha>" for an upload), process key, model
key (`cache.model_key`: model id + steps it really ran), sampler config, sizes, seed. Unhashable
objects travel as leading-underscore arguments (`_dist`, `_model`, `_models`), which Streamlit
does not hash; the key argument beside each one identifies it. Values are numpy arrays, small
DataFrames and dataclasses of arrays. Nothing here trains (see `train_dae`, which is not cached).

Torch runs on one thread (`scoreviz.threads`). Each computation takes one of the server's few
heavy-computation slots on a cache miss (`limits.heavy`), waiting visibly for one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from scoreviz import analysis
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import get_process
from scoreviz.text import escape
from scoreviz.ui.cache import model_key
from scoreviz.ui.limits import heavy

EXACT = "exact E[x₀|x̃]"  # display name of the exact denoiser

ModelKeys = tuple[tuple[str, str], ...]  # ((display name, model key), ...)


def model_keys(models: Mapping[str, Any]) -> ModelKeys:
    """The cache key of a name -> TrainResult mapping."""
    return tuple((name, model_key(res)) for name, res in models.items())


def matching_models(sel, kind: str) -> dict[str, Any]:
    """This session's models of `kind` ("score" | "dae") trained on the sidebar's data+process."""
    models = st.session_state.get("models", {})
    return {
        name: res
        for name, res in models.items()
        if res.config.model.kind == kind
        and res.config.distribution == sel.dist_key
        and res.config.process == sel.process_key
    }


def active_score_model(sel):
    """(name, TrainResult) of the model to compare with, or (None, None).

    The active model if it is a score model for the sidebar's distribution and process, else the
    newest such model of this session.
    """
    ok = matching_models(sel, "score")
    name = sel.model_name
    if name in ok:
        return name, ok[name]
    if ok:
        name = list(ok)[-1]
        return name, ok[name]
    return None, None


def mismatch_note(sel) -> str | None:
    """Why the active model is not shown (trained on other data or process), or None.

    Markdown with the user's text escaped (no code spans: a backtick in a name escaped them)."""
    res = sel.model
    if res is None:
        return None
    cfg = res.config
    if cfg.distribution == sel.dist_key and cfg.process == sel.process_key:
        return None
    return (
        f"The active model “{escape(sel.model_name)}” was trained on {escape(cfg.distribution)} "
        f"with the {escape(cfg.process)} process, but the sidebar shows {escape(sel.dist_key)} / "
        f"{escape(sel.process_key)}. "
        "Select those in the sidebar to compare it with the exact answer."
    )


# ---------------------------------------------------------------------------- DAE
def _denoisers(_models: Mapping[str, Any], _dist, process) -> dict[str, Callable]:
    out = {name: res.model.denoise for name, res in _models.items()}
    out[EXACT] = analysis.exact_denoiser(_dist, process)
    return out


@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def dae_panels(
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    keys: ModelKeys,
    _models: Mapping[str, Any],
    sigmas: tuple[float, ...],
    n: int,
    seed: int,
) -> list[analysis.Reconstruction]:
    """Reconstructions by every model in `_models` and by the exact denoiser, per sigma."""
    process = get_process(process_key)
    return analysis.reconstructions(
        _denoisers(_models, _dist, process), _dist, process, sigmas, n=n, seed=seed
    )


@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def dae_error(
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    keys: ModelKeys,
    _models: Mapping[str, Any],
    n_sigmas: int = 24,
    n: int = 1024,
    seed: int = 0,
) -> pd.DataFrame:
    """Reconstruction error vs sigma (log grid over the process' range) and the exact MMSE."""
    process = get_process(process_key)
    sigmas = analysis.sigma_grid(process, n_sigmas)
    return analysis.reconstruction_error(
        _denoisers(_models, _dist, process), _dist, process, sigmas, n=n, seed=seed
    )


def train_dae(sel, sigma: float, steps: int, on_progress: Callable[[float], None]):
    """Train a classical DAE at one sigma now (not cached: a cache would replay no progress).

    Reuses an identical finished model from the server-wide store (built-in data only).
    """
    from scoreviz.models import ModelConfig
    from scoreviz.training import TrainConfig, train
    from scoreviz.ui.state import shared_models

    config = TrainConfig(
        distribution=sel.dist_key,
        process=sel.process_key,
        model=ModelConfig(kind="dae", dae_sigma=float(sigma)),
        steps=int(steps),
        seed=sel.seed,
    )
    upload = sel.dist_key.startswith("upload:")
    cached = None if upload else shared_models().get(config.model_id)
    if cached is not None:
        return cached
    result = train(
        config,
        progress=lambda p: on_progress(p.step / p.steps),
        dist=sel.dist if upload else None,
    )
    if not upload:
        shared_models().put(result.model_id, result)
    return result


# ---------------------------------------------------------------------------- loss vs t
@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def loss_bins(
    key: str,
    _model,
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    weightings: tuple[str, ...],
    n_bins: int,
    per_bin: int,
    seed: int,
) -> pd.DataFrame:
    """The model's DSM loss per t bin under each weighting (fresh samples for `seed`)."""
    return analysis.binned_loss(
        _model.score_fn(),
        _dist,
        get_process(process_key),
        weightings,
        n_bins=n_bins,
        per_bin=per_bin,
        seed=seed,
    )


@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def exact_loss_bins(
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    weightings: tuple[str, ...],
    n_bins: int,
    per_bin: int,
    seed: int,
) -> pd.DataFrame:
    """The exact score's DSM loss per t bin (what a perfect model would show: the floor)."""
    from scoreviz.score import exact_score_fn

    process = get_process(process_key)
    return analysis.binned_loss(
        exact_score_fn(_dist, process), _dist, process, weightings, n_bins, per_bin, seed
    )


@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def loss_floors(
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    weightings: tuple[str, ...],
    n_bins: int,
    nodes: int = 3,
    n_mc: int = 1024,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(floor at the quadrature nodes, floor averaged per t bin) for each weighting."""
    process = get_process(process_key)
    edges = analysis.t_bins(process, n_bins)
    return analysis.floor_by_bin(_dist, process, weightings, edges, n_mc=n_mc, nodes=nodes)


@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def weighting_floors(
    dist_key: str, _dist: GaussianMixture, process_key: str, n: int = 40, n_mc: int = 1024
) -> pd.DataFrame:
    """The floor of every weighting at n noise levels log-spaced over the process' range."""
    from scoreviz.losses import WEIGHTINGS

    process = get_process(process_key)
    sigmas = analysis.sigma_grid(process, n, smallest=1e-3)
    t = process.t_from_sigma(np.asarray(sigmas)).numpy()
    return analysis.floor_curve(_dist, process, tuple(WEIGHTINGS), t, n_mc)


# ---------------------------------------------------------------------------- sampling
@st.cache_data(max_entries=16, show_spinner=False)
@heavy
def sampling_run(
    key: str | None,
    _model,
    dist_key: str,
    _dist: GaussianMixture,
    process_key: str,
    config,
    max_particles: int = 1000,
    n_grid: int = 15,
    train_key: str | None = None,
    _train_points=None,
    memorised: bool = False,
) -> dict:
    """Sample with the model's score (or an exact one when key is None) and prepare the view.

    The exact score is that of `_dist`, or with `memorised` that of the empirical distribution
    of `_train_points` (the memorising optimum; of a fixed subset of `mixture.MAX_MEMORISED`
    points beyond that many, to bound its cost). train_key identifies the training points.
    Returns frames (analysis.SamplingFrames), field_xy / field_score / ranges for the animation,
    final (the finite final samples, (N, 2)) and report (metrics.sample_report of them against
    `_dist`, plus metrics.memorisation_report when `_train_points` is given).
    """
    from scoreviz.mixture import memorising_optimum
    from scoreviz.pipelines import sampling_row
    from scoreviz.score import exact_score_fn

    process = get_process(process_key)
    if _model is not None:
        score_fn = _model.score_fn()
    elif memorised:
        score_fn = exact_score_fn(memorising_optimum(_train_points), process)
    else:
        score_fn = exact_score_fn(_dist, process)
    row = sampling_row(score_fn, _dist, process, config, max_particles, n_grid, _train_points)
    return row.as_dict()
