"""The DAE page's pipeline: noisy points denoised by every model and by the exact E[x0 | x~] at a
few noise levels, the reconstruction error against sigma, and a classical DAE's training
(`views/dae.py`, `figures/dae.py`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scoreviz import analysis, training
from scoreviz.data_io import is_custom_key
from scoreviz.distributions import DISTRIBUTIONS
from scoreviz.mixture import GaussianMixture
from scoreviz.models import ModelConfig
from scoreviz.pipelines.common import EXACT
from scoreviz.problem import Problem
from scoreviz.processes import PROCESSES


def denoiser_kinds(problem: Problem) -> dict[str, str]:
    """Display name -> colour role ("learned", "dae", "exact") of every denoiser of the view."""
    kinds = {m.name: m.result.config.model.kind for m in problem.models}
    return {n: "dae" if k == "dae" else "learned" for n, k in kinds.items()} | {EXACT: "exact"}


def short_label(name: str, problem: Problem, limit: int = 28) -> str:
    """A model's name as a legend shows it: its " · "-separated parts that only repeat the
    data and process (registry keys, their labels, "upload:<sha>", "seed N", id hashes) left
    out, at most `limit` characters. "DAE σ=0.5 · eight_gaussians · vp_linear" -> "DAE σ=0.5"."""

    known = set(DISTRIBUTIONS) | set(PROCESSES) | {problem.dist_key, problem.process_key}
    known |= {label for label, _ in DISTRIBUTIONS.values()} | {p.label for p in PROCESSES.values()}
    parts = [p for p in name.split(" · ") if p.strip()]
    kept = [
        p
        for p in parts
        if p.strip() not in known
        and not is_custom_key(p.strip())
        and not re.fullmatch(r"seed \d+|[0-9a-f]{4,12}", p.strip())  # seeds, id hashes
    ]
    out = " · ".join(kept) or parts[0] if parts else name
    return out if len(out) <= limit else out[: limit - 1] + "…"


def denoiser_labels(problem: Problem) -> dict[str, str]:
    """Display name -> short legend label (`short_label`) of every denoiser of the view."""
    return {m.name: short_label(m.name, problem) for m in problem.models} | {EXACT: EXACT}


def _denoisers(problem: Problem) -> dict[str, Callable]:
    out = {m.name: m.result.model.denoise for m in problem.models}
    out[EXACT] = analysis.exact_denoiser(problem.dist, problem.process)
    return out


def dae_sigmas(lo: float, hi: float, panels: int = 4) -> tuple[float, ...]:
    """The DAE page's noise levels for its range slider at (lo, hi): `panels` log-spaced from
    lo to hi, or lo alone when they are equal."""
    return (lo,) if lo == hi else tuple(float(s) for s in np.geomspace(lo, hi, panels))


@dataclass(frozen=True)
class DaeSettings:
    """Noise levels of the panels, points per panel, seed."""

    sigmas: tuple[float, ...]
    n: int = 80
    seed: int = 0


@dataclass(frozen=True, eq=False)
class DaeView:
    """One analysis.Reconstruction per sigma; kinds: denoiser name -> colour role; labels:
    denoiser name -> short legend label (no registry keys)."""

    panels: tuple[analysis.Reconstruction, ...]
    kinds: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)

    def without(self, hidden) -> DaeView:
        """The same view with the denoisers named in `hidden` left out of every panel."""
        keep = set(self.kinds) - set(hidden)
        return DaeView(tuple(p.only(keep) for p in self.panels), self.kinds, self.labels)


def dae_view(problem: Problem, s: DaeSettings) -> DaeView:
    """Reconstructions by every model of the problem and by the exact denoiser, per sigma."""
    denoisers = _denoisers(problem)
    panels = analysis.reconstructions(
        denoisers, problem.dist, problem.process, s.sigmas, n=s.n, seed=s.seed
    )
    return DaeView(tuple(panels), denoiser_kinds(problem), denoiser_labels(problem))


@dataclass(frozen=True, eq=False)
class DaeErrorView:
    """analysis.reconstruction_error's table; kinds, labels as in DaeView; marks: DAE name ->
    its sigma."""

    table: pd.DataFrame
    kinds: dict[str, str]
    marks: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)


def dae_error_points(dist: GaussianMixture) -> int:
    """Points per sigma of the error curve: 1,024, fewer for big mixtures (24 sigmas x n points
    x every component, twice): 256 for an upload merged to 2,000 components."""
    return int(np.clip(2**19 // dist.n_components, 256, 1024))


def dae_error_view(
    problem: Problem, n_sigmas: int = 24, n: int = 1024, seed: int = 0
) -> DaeErrorView:
    """Reconstruction error vs sigma (log grid over the process' range) and the exact MMSE."""
    sigmas = analysis.sigma_grid(problem.process, n_sigmas)
    table = analysis.reconstruction_error(
        _denoisers(problem), problem.dist, problem.process, sigmas, n=n, seed=seed
    )
    marks = {
        m.name: m.result.config.model.dae_sigma
        for m in problem.models
        if m.result.config.model.kind == "dae"
    }
    return DaeErrorView(table, denoiser_kinds(problem), marks, denoiser_labels(problem))


def dae_train_config(problem: Problem, sigma: float, steps: int, seed: int):
    """The TrainConfig of a classical DAE at one sigma on the problem's data and process."""

    model = ModelConfig(kind="dae", dae_sigma=float(sigma))
    return training.TrainConfig(
        distribution=problem.dist_key,
        process=problem.process_key,
        model=model,
        steps=int(steps),
        seed=seed,
    )


def train_dae(problem: Problem, sigma: float, steps: int, seed: int, on_progress, store=None):
    """Train a classical DAE at one sigma (on_progress(fraction done)); reuse an identical
    finished one from `store` (get(model_id) / put(model_id, result)), built-in data only."""
    config = dae_train_config(problem, sigma, steps, seed)
    upload = is_custom_key(problem.dist_key)
    store = None if upload else store
    cached = None if store is None else store.get(config.model_id)
    if cached is not None:
        return cached

    def progress(p) -> None:
        on_progress(p.step / p.steps)

    result = training.train(config, progress=progress, dist=problem.dist if upload else None)
    if store is not None:
        store.put(result.model_id, result)
    return result
