"""Cached heavy computations of the DAE, Loss-vs-t and Sampling pages, and which of this
session's models a page compares.

Each cached function is a `scoreviz.pipelines` piece behind one bounded st.cache_data keyed by
the hashable `Problem` and the view's settings (`cache.cached`), taking one of the server's few
heavy-computation slots on a cache miss (`limits.heavy`), waiting visibly for one. Torch runs on
one thread (`scoreviz.threads`). Nothing here trains but `train_dae`, which is not cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from scoreviz import pipelines
from scoreviz.problem import Problem
from scoreviz.text import escape
from scoreviz.ui.cache import cached, shared_figure, warmed

EXACT = pipelines.EXACT  # the exact denoiser's display name in the DAE view


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
dae_view = cached(pipelines.dae_view, 16, heavy=True)
dae_error = cached(pipelines.dae_error_view, 16, heavy=True)


def train_dae(problem: Problem, sigma: float, steps: int, seed: int, on_progress: Callable):
    """Train a classical DAE at one sigma now (not cached: a cache would replay no progress),
    reusing an identical finished model from the server-wide store (built-in data only)."""
    from scoreviz.ui.state import shared_models

    return pipelines.train_dae(problem, sigma, steps, seed, on_progress, store=shared_models())


# ---------------------------------------------------------------------------- loss vs t
loss_bins = cached(pipelines.loss_bins, 16, heavy=True)
loss_floors = cached(pipelines.loss_floors, 16, heavy=True)
weighting_floors = cached(pipelines.weighting_floors, 16, heavy=True)


def loss_view(problem: Problem, s: pipelines.LossSettings) -> pipelines.LossView:
    """The Loss-vs-t view from cached pieces (the floors do not depend on the model)."""
    return pipelines.loss_view(problem, s, bins=loss_bins, floors=loss_floors)


# ---------------------------------------------------------------------------- sampling
sampling_row = cached(pipelines.sampling_view_row, 16, heavy=True)


def sampling_view(problem: Problem, s: pipelines.SamplingSettings) -> pipelines.SamplingView:
    """The Sampling view with each row cached on its own (showing a row again costs nothing)."""
    from scoreviz.ui.cache import samples

    return pipelines.sampling_view(problem, s, row=sampling_row, samples=samples)


def _dae_figure(problem, settings, hidden: tuple[str, ...]):
    from scoreviz.figures.dae import dae_figure

    return dae_figure(dae_view(problem, settings).without(list(hidden)))


dae_figure = shared_figure(_dae_figure, 128)  # the DAE page's main figure, shared


dae_sigmas = pipelines.dae_sigmas  # the panels' noise levels (core: scenes' tests read them)


def warm_dae(problem: Problem, lo: float, hi: float, n: int, seed: int, hidden: tuple) -> None:
    """The DAE page's main figure for the range (lo, hi), built and frozen (a `prefetch` job)."""
    settings = pipelines.DaeSettings(dae_sigmas(lo, hi), n, seed)
    warmed(dae_figure(problem, settings, hidden))


def _sampling_figure(problem, settings, x0_hat: bool, trails: bool, height: int):
    from scoreviz.figures.sampling import sampling_figure

    view = sampling_view(problem, settings)
    return sampling_figure(view, x0_hat=x0_hat, trails=trails, height=height)


# the Sampling animation, shared: every student at the defaults gets the same built figure
sampling_figure = shared_figure(_sampling_figure, 32)
