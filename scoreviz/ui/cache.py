"""Streamlit caching of the view pipelines (`scoreviz.pipelines`): one bounded st.cache_data per
pipeline piece, keyed by the hashable `Problem` (its keys: distribution key, "upload:<sha>" for
an upload, process key, model keys) and the view's settings. Values are the pipelines' frozen
dataclasses of arrays. This module adds no logic of its own: a notebook calls the same
functions from `scoreviz.pipelines` uncached.

`cached(fn, n)` makes such a wrapper; `heavy=True` (the computations in `compute.py`) also takes
one of the server's few heavy-computation slots on a cache miss (`limits.heavy`).

Training is never cached here (a cache would replay, not show, a progress bar); finished models
are shared through `scoreviz.ui.state.shared_models`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from scoreviz import pipelines
from scoreviz.problem import Problem
from scoreviz.problem import model_key as model_key  # re-exported: pages key their models by it
from scoreviz.ui.limits import heavy as heavy_slot

HASH_FUNCS = {Problem: lambda p: p.key}  # the mixture and models ride along unhashed
tkey = pipelines.tkey


def cached(fn, max_entries: int, heavy: bool = False):
    """fn(problem, ...) behind a bounded st.cache_data that hashes a Problem by its keys."""
    inner = heavy_slot(fn) if heavy else fn
    return st.cache_data(max_entries=max_entries, show_spinner=False, hash_funcs=HASH_FUNCS)(inner)


def problem_of(sel, name: str | None = None, model=None) -> Problem:
    """The sidebar's data and process (a `state.Selection`), with `model` under `name` if given."""
    return Problem(sel.dist_key, sel.dist, sel.process_key).with_model(name, model)


samples = cached(pipelines.data_samples, 32)
noised = cached(pipelines.noised, 64)
density_at = cached(pipelines.density_at, 64)
prior_check = cached(pipelines.prior_view, 16)
animation = cached(pipelines.forward_animation_view, 16)
score_field = cached(pipelines.score_field_view, 64)
mean_loss_floor = cached(pipelines.mean_loss_floor, 16)


def forward_view(problem: Problem, s: pipelines.ForwardSettings) -> pipelines.ForwardView:
    """The Data & forward view from cached pieces (p_0 is not recomputed when t moves)."""
    return pipelines.forward_view(problem, s, noised=noised, density=density_at)


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


def _field_figure(problem: Problem, t: float, n_arrows: int, scaled: bool, overlay: bool):
    from scoreviz.figures.fields import field_figure as build

    return build(score_field(problem, t, n_arrows), scaled, overlay)


def _difference_figure(problem: Problem, t: float, n_arrows: int, scaled: bool):
    from scoreviz.figures.fields import difference_figure as build

    return build(score_field(problem, t, n_arrows), scaled)


def _forward_pair(problem: Problem, s: pipelines.ForwardSettings):
    from scoreviz.figures.forward import forward_pair_figure

    return forward_pair_figure(forward_view(problem, s))


def _forward_schedule(problem: Problem, t: float):
    from scoreviz.figures.forward import schedule_figure
    from scoreviz.forward import schedule_table

    return schedule_figure(schedule_table(problem.process), t)


# One cache per figure, so a page sends its main figure before it builds the next one: the
# browser draws the main chart while the server builds the rest (benchmarks/bench.py --only
# redraw). The Score field figure at t; learned − exact at t (None without a model):
field_figure = shared_figure(_field_figure, 256)
difference_figure = shared_figure(_difference_figure, 256)
# Data & forward at settings.t: the data | noised pair; the schedule with t marked
forward_pair = shared_figure(_forward_pair, 128)
forward_schedule = shared_figure(_forward_schedule, 128)


def warmed(fig) -> None:
    """A shared figure with its dict built too (what `present.show_chart` sends): the last step
    of every `prefetch` job."""
    if fig is not None:
        frozen(fig).to_dict()


def warm_field(problem: Problem, t: float, n_arrows: int, scaled: bool, overlay: bool) -> None:
    """The Score field's figures at t, built and frozen (a `prefetch` job)."""
    warmed(field_figure(problem, tkey(t), n_arrows, scaled, overlay))
    if problem.model is not None:
        warmed(difference_figure(problem, tkey(t), n_arrows, scaled))


def warm_forward(problem: Problem, t: float, n: int, grid: int, grid_data: int, seed: int) -> None:
    """The Data & forward figures at t, built and frozen (a `prefetch` job)."""
    warmed(forward_pair(problem, pipelines.ForwardSettings(t, n, grid, grid_data, seed)))
    warmed(forward_schedule(problem, tkey(t)))
