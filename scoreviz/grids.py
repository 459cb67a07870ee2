"""Quantities on a regular 2D grid: exact density of p_t, learned and exact score fields, error.

A `Grid` of G x G points is stored row-major with y as the row: `points[i * G + j] = (xs[j],
ys[i])`, so any per-point value `v` of shape (G*G,) reshapes to `v.reshape(G, G)` with rows =
y and columns = x, which is what a Plotly heatmap expects (`z[row][col]`).

Everything returns float32 numpy arrays with non-finite values replaced (a figure never has to
draw NaN/inf), so the figure builders stay pure and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess
from scoreviz.score import ScoreFn, exact_score_fn, full_t


@dataclass(frozen=True, eq=False)
class Grid:
    """G x G points covering [lo, hi]^2 (or a rectangle: `make_grid`'s y_range); xs, ys (G,),
    points (G*G, 2) float32."""

    xs: np.ndarray
    ys: np.ndarray

    @property
    def size(self) -> int:
        return len(self.xs)

    @property
    def points(self) -> np.ndarray:
        xx, yy = np.meshgrid(self.xs, self.ys)  # (G, G), rows = y
        return np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)

    @property
    def spacing(self) -> float:
        return float(self.xs[1] - self.xs[0]) if self.size > 1 else 1.0


def make_grid(
    n: int, xy_range: tuple[float, float], y_range: tuple[float, float] | None = None
) -> Grid:
    """n x n points on [lo, hi]^2, or on xy_range x y_range (cell centres, so arrows never sit
    on the frame; with a y_range the cells are rectangles, n a side either way)."""
    lo, hi = xy_range
    step = (hi - lo) / n
    c = (lo + step * (np.arange(n) + 0.5)).astype(np.float32)
    if y_range is None:
        return Grid(xs=c, ys=c.copy())
    ylo, yhi = y_range
    ys = (ylo + (yhi - ylo) / n * (np.arange(n) + 0.5)).astype(np.float32)
    return Grid(xs=c, ys=ys)


def finite(a: np.ndarray, limit: float = 1e6) -> np.ndarray:
    """float32 copy with NaN -> 0 and +-inf / huge values clipped to +-limit."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=limit, neginf=-limit)
    return np.clip(a, -limit, limit).astype(np.float32)


@torch.no_grad()
def log_density_grid(
    dist: GaussianMixture, process: NoiseProcess, t: float, grid: Grid
) -> np.ndarray:
    """Exact log p_t on the grid, shape (G, G) (rows = y), float32; -inf clipped to -1e6."""
    alpha, sigma, _ = process.at(t)
    x = torch.as_tensor(grid.points, dtype=torch.float64)
    lp = dist.log_prob(x, alpha, sigma)
    return finite(lp.numpy()).reshape(grid.size, grid.size)


@torch.no_grad()
def score_on_points(score_fn: ScoreFn, t: float, points: np.ndarray) -> np.ndarray:
    """score_fn(x, t) at (N, 2) points, float32 numpy with non-finite values made finite."""
    x = torch.as_tensor(points, dtype=torch.float32)
    return finite(score_fn(x, full_t(t, x.shape[0])).float().numpy())


def score_error_grid(learned: np.ndarray, exact: np.ndarray, sigma: float, size: int):
    """sigma_t^2 ||s_theta - grad log p_t||^2 per grid point, shape (G, G), float32."""
    d = learned.astype(np.float64) - exact.astype(np.float64)
    return finite(sigma**2 * (d**2).sum(1)).reshape(size, size)


@dataclass(frozen=True, eq=False)
class ScoreField:
    """Everything the score-field view draws at one t (all float32 numpy).

    arrows: `grid` (G*G points) with `exact` and `learned` scores (G*G, 2), learned None when
    there is no model; background: `density` = exact p_t on `bg_grid` (B, B); error: sigma^2
    ||s_theta - s||^2 on `err_grid` (B, B, the same grid as the density), None without a model.
    """

    t: float
    sigma: float
    alpha: float
    grid: Grid
    exact: np.ndarray
    learned: np.ndarray | None
    bg_grid: Grid
    density: np.ndarray
    err_grid: Grid
    error: np.ndarray | None

    @property
    def mean_error(self) -> float | None:
        """Plain grid average of sigma^2 ||s_theta - s||^2: every place counts, also empty ones."""
        return None if self.error is None else float(self.error.mean())

    @property
    def weighted_error(self) -> float | None:
        """Its average under p_t (density-weighted on the grid): where x_t actually lands.

        This approximates `metrics.score_error` at this t (which averages over samples of p_t).
        """
        if self.error is None:
            return None
        w = self.density.astype(np.float64)
        total = w.sum()
        return float((w * self.error).sum() / total) if total > 0 else self.mean_error


def score_field(
    dist: GaussianMixture,
    process: NoiseProcess,
    t: float,
    learned_fn: ScoreFn | None,
    xy_range: tuple[float, float],
    n_arrows: int = 25,
    n_bg: int = 48,
) -> ScoreField:
    """Exact (and learned, if given) score on an arrow grid, exact density, and error heatmap.

    n_arrows^2 arrows; density and error share one n_bg x n_bg grid (so the density can weight
    the error).
    """
    exact_fn = exact_score_fn(dist, process)
    alpha, sigma, _ = process.at(t)
    grid, bg = make_grid(n_arrows, xy_range), make_grid(n_bg, xy_range)
    exact = score_on_points(exact_fn, t, grid.points)
    density = np.exp(log_density_grid(dist, process, t, bg).astype(np.float64))
    learned = error = None
    if learned_fn is not None:
        learned = score_on_points(learned_fn, t, grid.points)
        e_pts = bg.points
        err_l = score_on_points(learned_fn, t, e_pts)
        err_e = score_on_points(exact_fn, t, e_pts)
        error = score_error_grid(err_l, err_e, sigma, bg.size)
    return ScoreField(
        t=float(t),
        sigma=sigma,
        alpha=alpha,
        grid=grid,
        exact=exact,
        learned=learned,
        bg_grid=bg,
        density=finite(density),
        err_grid=bg,
        error=error,
    )
