"""Cached page pipelines: every page's `scoreviz.pipelines` pieces behind one bounded cache
each, one section per page, and the shared figures the pages draw.

- `cached(fn, n)`: fn(problem, ...) behind a bounded st.cache_data keyed by the hashable
  `Problem` (its keys: distribution key, "upload:<sha>" for an upload, process key, model keys)
  and the view's settings; values are the pipelines' frozen dataclasses of arrays. `heavy=True`
  (the expensive pieces) also takes one of the server's few heavy-computation slots on a miss
  (`limits.heavy`), waiting visibly for one.
- `shared_figure(build, n)`: a built Plotly figure per argument set, the same object for every
  session (st.cache_resource); `warm_*` fill them in the background (`prefetch`).

This module adds no logic of its own: a notebook calls the same functions from
`scoreviz.pipelines` uncached. Training is never cached here (a cache would replay, not show, a
progress bar); finished models are shared through `models.shared_models`. Torch runs on one
thread (`scoreviz.threads`).
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from scoreviz import costs, mixture, pipelines
from scoreviz.data_io import is_custom_key
from scoreviz.figures import dae as dae_figures
from scoreviz.figures import fields as field_figures
from scoreviz.figures import forward as forward_figures
from scoreviz.figures import guidance as guidance_figures
from scoreviz.figures import likelihood as likelihood_figures
from scoreviz.figures import sampling as sampling_figures
from scoreviz.figures import steps as steps_figures
from scoreviz.forward import schedule_table
from scoreviz.problem import Problem
from scoreviz.ui.limits import heavy as heavy_slot
from scoreviz.ui.training_runner import train_and_wait

# The figure builders are called through their modules, so a test can wrap one (monkeypatch).

# ---------------------------------------------------------------------------- the machinery
HASH_FUNCS = {Problem: lambda p: p.key}  # the mixture and models ride along unhashed
tkey = pipelines.tkey  # t as a cache key (rounded: float noise must not miss)


def cached(fn, max_entries: int, heavy: bool = False):
    """fn(problem, ...) behind a bounded st.cache_data that hashes a Problem by its keys."""
    inner = heavy_slot(fn) if heavy else fn
    return st.cache_data(max_entries=max_entries, show_spinner=False, hash_funcs=HASH_FUNCS)(inner)


def problem_of(sel, name: str | None = None, model=None) -> Problem:
    """The sidebar's data and process (a `models.Selection`), with `model` under `name` if given."""
    return Problem(sel.dist_key, sel.dist, sel.process_key).with_model(name, model)


SHARED_FIGURES: list = []  # every shared_figure cache, for clear_shared_figures


def shared_figure(build, max_entries: int = 128):
    """build(problem, ...) -> go.Figure (or a tuple of them) behind a bounded st.cache_resource:
    one built figure per argument set, handed to every session as the same object.

    Why: building a Plotly figure (its validators, deep copies) was the biggest part of a slider
    move's server CPU (the Score field pair: ~125 ms; the cached view under it: ~0.2 ms), and
    every student at the same t asks for the same figure. The objects are shared, so nothing
    may change them after building: `st.plotly_chart` only reads a figure, and
    `present.for_projector` works on a copy.
    """
    shared = st.cache_resource(max_entries=max_entries, show_spinner=False, hash_funcs=HASH_FUNCS)(
        build
    )
    SHARED_FIGURES.append(shared)
    return shared


class _Frozen(go.Figure):
    """A go.Figure whose `to_dict` is computed once (see `frozen`)."""

    def to_dict(self) -> dict:
        done = self.__dict__.get("_scoreviz_dict")
        if done is None:
            done = self.__dict__["_scoreviz_dict"] = super().to_dict()
        return _fresh(done)


def _fresh(obj):
    """New dicts and lists over the same leaves (strings, numbers: immutable)."""
    if isinstance(obj, dict):
        return {k: _fresh(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fresh(v) for v in obj]
    return obj


def frozen(fig):
    """`fig`, promised never to change again, with its `to_dict` computed once.

    Why: st.plotly_chart calls `to_dict` on every rerun of every session, a deep copy of the
    figure that also base64-encodes every array: 0.23 s of server CPU for the Sampling animation,
    ~4 s of one core when 16 students open Sampling together (benchmarks/loadgen.py). A shared
    figure is built once, so its dict can be too; each call still gets its own containers.
    Anything but a plain go.Figure is returned as it is.
    """
    if type(fig) is go.Figure:
        fig.__class__ = _Frozen
    return fig


def clear_shared_figures() -> None:
    """Empty every shared figure cache (tests that change what the builders compute)."""
    for shared in SHARED_FIGURES:
        shared.clear()


def warmed(fig) -> None:
    """A shared figure with its dict built too (what `charts.draw_figure` sends): the last step
    of every `prefetch` job."""
    if fig is not None:
        frozen(fig).to_dict()


# ---------------------------------------------------------------------------- Data & forward
samples = cached(pipelines.data_samples, 32)  # exact samples of the data (Sampling's too)
noised = cached(pipelines.noised, 64)
density_at = cached(pipelines.density_at, 64)
prior_check = cached(pipelines.prior_view, 16)
animation = cached(pipelines.forward_animation_view, 16)


def forward_view(problem: Problem, s: pipelines.ForwardSettings) -> pipelines.ForwardView:
    """The Data & forward view from cached pieces (p_0 is not recomputed when t moves)."""
    return pipelines.forward_view(problem, s, noised=noised, density=density_at)


def _forward_pair(problem: Problem, s: pipelines.ForwardSettings):
    return forward_figures.forward_pair_figure(forward_view(problem, s))


def _forward_schedule(problem: Problem, t: float):
    return forward_figures.schedule_figure(schedule_table(problem.process), t)


# One cache per figure, so a page sends its main figure before it builds the next one: the
# browser draws the main chart while the server builds the rest (benchmarks/bench.py --only
# redraw). At settings.t: the data | noised pair; the schedule with t marked.
forward_pair = shared_figure(_forward_pair, 128)
forward_schedule = shared_figure(_forward_schedule, 128)


def warm_forward(problem: Problem, t: float, n: int, grid: int, grid_data: int, seed: int) -> None:
    """The Data & forward figures at t, built and frozen (a `prefetch` job)."""
    warmed(forward_pair(problem, pipelines.ForwardSettings(t, n, grid, grid_data, seed)))
    warmed(forward_schedule(problem, tkey(t)))


# ---------------------------------------------------------------------------- Score field
score_field = cached(pipelines.score_field_view, 64)


def _field_figure(problem: Problem, t: float, n_arrows: int, scaled: bool, overlay: bool):
    return field_figures.field_figure(score_field(problem, t, n_arrows), scaled, overlay)


def _difference_figure(problem: Problem, t: float, n_arrows: int, scaled: bool):
    return field_figures.difference_figure(score_field(problem, t, n_arrows), scaled)


# The Score field figure at t; learned − exact at t (None without a model)
field_figure = shared_figure(_field_figure, 256)
difference_figure = shared_figure(_difference_figure, 256)


velocity_field = cached(pipelines.velocity_field_view, 64)


def _velocity_figure(problem: Problem, t: float, n_arrows: int):
    return field_figures.velocity_field_figure(velocity_field(problem, t, n_arrows))


# The flow-matching velocity at t, learned beside exact (the Score field page's velocity view)
velocity_figure = shared_figure(_velocity_figure, 128)


def warm_field(problem: Problem, t: float, n_arrows: int, scaled: bool, overlay: bool) -> None:
    """The Score field's figures at t, built and frozen (a `prefetch` job)."""
    warmed(field_figure(problem, tkey(t), n_arrows, scaled, overlay))
    if problem.model is not None:
        warmed(difference_figure(problem, tkey(t), n_arrows, scaled))


# ---------------------------------------------------------------------------- DAE
dae_view = cached(pipelines.dae_view, 16, heavy=True)
dae_error = cached(pipelines.dae_error_view, 16, heavy=True)


def train_dae(problem: Problem, sigma: float, steps: int, seed: int, on_progress: Callable):
    """Train a classical DAE at one sigma now (not cached: a cache would replay no progress), as
    a training job in the training slots (`training_runner.train_and_wait`): an identical model
    finished or being trained for another session is reused (built-in data only)."""
    config = pipelines.dae_train_config(problem, sigma, steps, seed)
    upload = is_custom_key(problem.dist_key)
    name = f"DAE σ={sigma:.3g}"
    return train_and_wait(config, name, problem.dist if upload else None, on_progress)


def _dae_figure(problem, settings, hidden: tuple[str, ...]):
    return dae_figures.dae_figure(dae_view(problem, settings).without(list(hidden)))


dae_figure = shared_figure(_dae_figure, 128)  # the DAE page's main figure, shared


dae_sigmas = pipelines.dae_sigmas  # the panels' noise levels (core: scenes' tests read them)


def warm_dae(problem: Problem, lo: float, hi: float, n: int, seed: int, hidden: tuple) -> None:
    """The DAE page's main figure for the range (lo, hi), built and frozen (a `prefetch` job)."""
    settings = pipelines.DaeSettings(dae_sigmas(lo, hi), n, seed)
    warmed(dae_figure(problem, settings, hidden))


# ---------------------------------------------------------------------------- Loss vs t
loss_bins = cached(pipelines.loss_bins, 16, heavy=True)
loss_floors = cached(pipelines.loss_floors, 16, heavy=True)
weighting_floors = cached(pipelines.weighting_floors, 16, heavy=True)
mean_loss_floor = cached(pipelines.mean_loss_floor, 16)


def loss_view(problem: Problem, s: pipelines.LossSettings) -> pipelines.LossView:
    """The Loss-vs-t view from cached pieces (the floors do not depend on the model)."""
    return pipelines.loss_view(problem, s, bins=loss_bins, floors=loss_floors)


# ---------------------------------------------------------------------------- Sampling
sampling_row = cached(pipelines.sampling_view_row, 16, heavy=True)
MAX_ROW_SECONDS = 20.0  # estimated server seconds one Sampling row may cost (costs.py)


def row_seconds(problem: Problem, row: str, s: pipelines.SamplingSettings) -> float:
    """Estimated seconds of one Sampling row (`costs.sampling_seconds`) with its score."""
    if row == "learned" and problem.model is not None:
        return costs.sampling_seconds(s.config, model=problem.model.config.model)
    if row == "memorised" and problem.train_points is not None:
        k = min(len(problem.train_points), mixture.MAX_MEMORISED)
        return costs.sampling_seconds(s.config, components=k)
    return costs.sampling_seconds(s.config, components=problem.dist.n_components)


def check_rows(problem: Problem, s: pipelines.SamplingSettings) -> None:
    """ConfigError (what to change) when a row would cost more than MAX_ROW_SECONDS: a new
    seed misses the cache, so without it one student could keep a core busy for 90 s a row."""
    for row in s.rows:
        what = f"The {pipelines.ROWS[row]} row"
        costs.check_sampling_budget(s.config, row_seconds(problem, row, s), MAX_ROW_SECONDS, what)


def sampling_view(problem: Problem, s: pipelines.SamplingSettings) -> pipelines.SamplingView:
    """The Sampling view with each row cached on its own (showing a row again costs nothing),
    refused up front when a row is over its budget (`check_rows`)."""
    check_rows(problem, s)
    return pipelines.sampling_view(problem, s, row=sampling_row, samples=samples)


# Path length / chord of the PF-ODE's paths, exact and learned (a caption line on Sampling)
straightness = cached(pipelines.straightness_view, 16, heavy=True)


def _sampling_figure(problem, settings, x0_hat: bool, trails: bool, height: int):
    view = sampling_view(problem, settings)
    return sampling_figures.sampling_figure(view, x0_hat=x0_hat, trails=trails, height=height)


# the Sampling animation, shared: every student at the defaults gets the same built figure
sampling_figure = shared_figure(_sampling_figure, 32)


# ---------------------------------------------------------------------------- Sampling: steps
# The quality-vs-steps chart, on demand (a toggle): the exact curve is shared by every model.
steps_curve = cached(pipelines.steps_curve, 16, heavy=True)
w2_floor = cached(pipelines.w2_floor, 16)


def steps_view(problem: Problem, s: pipelines.StepsSettings) -> pipelines.StepsView:
    """The quality-vs-steps view from cached curves (the exact one without the model)."""
    return pipelines.steps_view(problem, s, curve=steps_curve, floor=w2_floor)


def _steps_figure(problem: Problem, s: pipelines.StepsSettings):
    return steps_figures.steps_figure(steps_view(problem, s))


steps_figure = shared_figure(_steps_figure, 32)


# ---------------------------------------------------------------------------- Likelihood
likelihood_truth = cached(pipelines.likelihood_truth, 16, heavy=True)
likelihood_learned = cached(pipelines.likelihood_learned, 16, heavy=True)


def likelihood_view(problem: Problem, s: pipelines.LikelihoodSettings) -> pipelines.LikelihoodView:
    """The Likelihood view from cached parts (the exact part is shared by every model)."""
    return pipelines.likelihood_view(problem, s, truth=likelihood_truth, learned=likelihood_learned)


def _likelihood_figure(problem: Problem, s: pipelines.LikelihoodSettings):
    return likelihood_figures.likelihood_figure(likelihood_view(problem, s))


likelihood_figure = shared_figure(_likelihood_figure, 32)


# ---------------------------------------------------------------------------- Guidance
# One view per (problem, class, w, sampler): every w stop is computed once and kept, so moving
# the slider back and forth redraws from the cache; the curve over w needs only the exact
# scores (called with problem.exact(): shared by every model of the data).
guidance_view = cached(pipelines.guidance_view, 64, heavy=True)
guidance_curve = cached(pipelines.guidance_curve, 16, heavy=True)


def _guidance_figures(problem: Problem, s: pipelines.GuidanceSettings):
    view = guidance_view(problem, s)
    return guidance_figures.guidance_figure(view), guidance_figures.shares_figure(view)


def _guidance_curve_figure(problem: Problem, c: int, sampler_w: float):
    return guidance_figures.curve_figure(guidance_curve(problem.exact(), c), sampler_w)


guidance_figures_at = shared_figure(_guidance_figures, 128)  # (samples, mode weights) at w
guidance_curve_figure = shared_figure(_guidance_curve_figure, 128)


def warm_guidance(problem: Problem, w: float, c: int, sampler: str) -> None:
    """The Guidance figures at weight w, built and frozen (a `prefetch` job)."""
    for fig in guidance_figures_at(problem, pipelines.GuidanceSettings(c, w, sampler)):
        warmed(fig)
