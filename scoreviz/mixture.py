"""Isotropic 2D Gaussian mixtures: the exact ground truth behind every view.

A mixture p(x0) = sum_k w_k N(x0; mu_k, s_k^2 I). Its noised law, the law of
x = alpha * X0 + sigma * Z with Z ~ N(0, I), is again a mixture:

    p_{alpha,sigma}(x) = sum_k w_k N(x; alpha mu_k, v_k I),   v_k = alpha^2 s_k^2 + sigma^2.

So log-density, score and the optimal denoiser E[X0 | x] are exact at every (alpha, sigma),
sigma = 0 included (as long as the components have s_k > 0).

Classes: each component may carry a class label c(k) (`labels`, names in `class_names`). Then
p(x | c) is the mixture of class c's components (`given(c)`), again exact at every noise level,
p(x) = sum_c pi_c p(x | c) with pi_c = sum_{c(k) = c} w_k (`class_weights`), and the score is the
posterior-weighted average of the class scores: grad log p_t(x) = sum_c P(c | x) grad log
p_t(x | c) (`class_posterior`). A mixture without labels is one class.

All evaluations use log-sum-exp and are vectorised over points and components, chunked over
points so that N x K stays bounded.

Shapes: points x (N, 2); alpha, sigma are floats or tensors of shape (N,); results (N,) or (N, 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scoreviz.errors import DataError

# Max number of (point, component) pairs evaluated at once; keeps memory ~100 MB in float64.
_CHUNK_PAIRS = 2_000_000
_LOG_2PI = math.log(2 * math.pi)


def _as_col(v: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """alpha/sigma as a (N, 1) column (or (1, 1)) in x's dtype and device."""
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    return v.reshape(-1, 1) if v.ndim else v.reshape(1, 1)


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """p(x0) = sum_k weights[k] N(means[k], stds[k]^2 I) in 2D.

    means (K, 2), stds (K,), weights (K,) summing to 1; stored in float64, evaluated in the
    dtype of the query points (float32 by default, float64 on request).
    """

    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor
    labels: torch.Tensor | None = None  # (K,) class of each component in [0, C); None: one class
    class_names: tuple[str, ...] = ()  # C names (default "class 1", ...)

    def __post_init__(self) -> None:
        means = torch.as_tensor(self.means, dtype=torch.float64).reshape(-1, 2)
        k = means.shape[0]
        stds, w = _per_component(self.stds, k, "widths"), _per_component(self.weights, k, "weights")
        if k == 0:
            raise DataError("A distribution needs at least one point or component.")
        if not all(torch.isfinite(v).all() for v in (means, stds, w)):
            raise DataError("Mixture means, widths and weights must be finite numbers.")
        if (stds < 0).any() or (w < 0).any() or w.sum() <= 0:
            raise DataError("Mixture widths and weights must be non-negative.")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "stds", stds)
        object.__setattr__(self, "weights", w / w.sum())
        self._set_labels(k)

    def _set_labels(self, k: int) -> None:
        """Validate `labels` ((K,) ints in [0, C)) and `class_names` (C names, every class used)."""
        if self.labels is None:
            object.__setattr__(self, "class_names", tuple(self.class_names)[:1] or ("all data",))
            return
        labels = torch.as_tensor(self.labels).reshape(-1).long()
        if labels.numel() != k or (labels < 0).any():
            raise DataError(f"Mixture labels: need {k} class numbers >= 0, one per component.")
        n = int(labels.max()) + 1
        names = tuple(self.class_names) or tuple(f"class {c + 1}" for c in range(n))
        if len(names) != n or torch.bincount(labels, minlength=n).min() == 0:
            raise DataError(f"Mixture labels: {len(names)} class names for classes 0..{n - 1}, "
                            "each with at least one component.")  # fmt: skip
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", names)

    # ----------------------------------------------------------------- basic facts
    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_classes(self) -> int:
        """C, the number of classes (1 without labels)."""
        return len(self.class_names)

    def component_labels(self) -> torch.Tensor:
        """(K,) class of each component (all 0 without labels)."""
        if self.labels is None:
            return torch.zeros(self.n_components, dtype=torch.long)
        return self.labels

    def class_weights(self) -> torch.Tensor:
        """pi_c = P(C = c) = sum of the weights of class c's components, shape (C,)."""
        pi = torch.zeros(self.n_classes, dtype=torch.float64)
        return pi.index_add_(0, self.component_labels(), self.weights)

    def given(self, c: int) -> GaussianMixture:
        """p(x0 | C = c): class c's components, weights renormalised (no labels)."""
        if not 0 <= int(c) < self.n_classes:
            raise DataError(f"There is no class {c}: this data has {self.n_classes} classes.")
        keep = self.component_labels() == int(c)
        return GaussianMixture(self.means[keep], self.stds[keep], self.weights[keep])

    def class_posterior(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """P(C = c | x_t = x), shape (N, C): the responsibilities summed over each class."""
        r = self.responsibilities(x, alpha, sigma)
        onehot = torch.nn.functional.one_hot(self.component_labels(), self.n_classes)
        return r @ onehot.to(r.dtype)

    def sample_labelled(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples (n, 2) of X0 with their classes (n,): the same draws as `sample(n)`."""
        if n == 0:
            return torch.zeros(0, 2, dtype=dtype), torch.zeros(0, dtype=torch.long)
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        std = torch.sqrt(self.stds[idx] ** 2)  # as `sample` computes it (alpha 1, sigma 0)
        return (self.means[idx] + std[:, None] * z).to(dtype), self.component_labels()[idx]

    def mean(self) -> torch.Tensor:
        """E[X0], shape (2,)."""
        return self.weights @ self.means

    def cov(self) -> torch.Tensor:
        """Cov[X0], shape (2, 2)."""
        m = self.mean()
        d = self.means - m
        within = (self.weights * self.stds**2).sum() * torch.eye(2, dtype=torch.float64)
        return within + (self.weights[:, None] * d).T @ d

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        alpha: float = 1.0,
        sigma: float = 0.0,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """n samples of alpha * X0 + sigma * Z, shape (n, 2)."""
        if n == 0:  # torch.multinomial refuses n = 0
            return torch.zeros(0, 2, dtype=dtype)
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        std = torch.sqrt(alpha**2 * self.stds[idx] ** 2 + sigma**2)
        return (alpha * self.means[idx] + std[:, None] * z).to(dtype)

    # ----------------------------------------------------------------- exact noised quantities
    def _params(self, x: torch.Tensor):
        return (
            self.means.to(x.dtype),
            self.stds.to(x.dtype) ** 2,
            torch.log(self.weights).to(x.dtype),
        )

    def _chunks(self, x: torch.Tensor):
        step = max(1, _CHUNK_PAIRS // self.n_components)
        return range(0, x.shape[0], step), step

    def _log_joint(self, x, alpha, sigma, expand: bool = False):
        """log w_k + log N(x; alpha mu_k, v_k I) (N, K), plus v_k (N or 1, K).

        expand: use the expanded form (`_log_joint_matmul`); `_eval` decides for all chunks."""
        mu, s2, logw = self._params(x)
        v = alpha**2 * s2[None, :] + sigma**2  # (N or 1, K)
        if (v <= 0).any():
            raise DataError(
                "This distribution has zero-width components, so it has no density at noise "
                "level 0. Use a noise level above 0 or a bandwidth above 0."
            )
        if expand:
            return _log_joint_matmul(x, alpha * mu, v, logw), v
        # Per coordinate on (N, K) tensors: a (N, K, 2) tensor summed over its last axis of 2
        # was 4-9x slower (torch reduces a size-2 inner axis badly), and the same numbers.
        dx = x[:, 0:1] - alpha * mu[:, 0]
        dy = x[:, 1:2] - alpha * mu[:, 1]
        d2 = dx * dx + dy * dy
        # the per-component terms first (v is (1, K) unless alpha/sigma vary per point): two
        # passes over (N, K) instead of four
        return (logw - torch.log(v) - _LOG_2PI) - d2 * (0.5 / v), v

    def _eval(self, x, alpha, sigma, fn):
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.float32)
        a, s = _one_if_constant(_as_col(alpha, x)), _one_if_constant(_as_col(sigma, x))
        expand = self._expandable(x, a, s)  # decided once: every chunk gives the same numbers
        rng, step = self._chunks(x)
        outs = []
        for i in rng:
            ai = a if a.shape[0] == 1 else a[i : i + step]
            si = s if s.shape[0] == 1 else s[i : i + step]
            outs.append(fn(x[i : i + step], ai, si, expand))
        return torch.cat(outs) if outs else fn(x, a, s, expand)

    def _expandable(self, x, a, s) -> bool:
        """Whether `_log_joint` may use the expanded form: one alpha and sigma for all rows,
        and no harmful cancellation in x's dtype (`_expansion_is_exact`)."""
        if a.shape[0] != 1 or s.shape[0] != 1 or x.shape[0] == 0:
            return False
        mu, s2, _ = self._params(x)
        return _expansion_is_exact(x, a * mu, a**2 * s2[None, :] + s**2)

    def log_prob(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """log p_{alpha,sigma}(x), shape (N,)."""

        def fn(x, a, s, e):
            lj, _ = self._log_joint(x, a, s, e)
            return torch.logsumexp(lj, dim=1)

        return self._eval(x, alpha, sigma, fn)

    def responsibilities(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """Posterior component probabilities P(k | x), shape (N, K)."""

        def fn(x, a, s, e):
            lj, _ = self._log_joint(x, a, s, e)
            return torch.softmax(lj, dim=1)

        return self._eval(x, alpha, sigma, fn)

    def score(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """grad_x log p_{alpha,sigma}(x) = sum_k r_k(x) (alpha mu_k - x) / v_k, shape (N, 2)."""

        def fn(x, a, s, e):
            lj, v = self._log_joint(x, a, s, e)
            r = torch.softmax(lj, dim=1) / v  # (N, K)
            mu = self.means.to(x.dtype)
            # sum_k r_k (a mu_k - x) as a matrix product (a is one value per row)
            return a * (r @ mu) - x * r.sum(1, keepdim=True)

        return self._eval(x, alpha, sigma, fn)

    def denoise(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """Optimal denoiser E[X0 | alpha X0 + sigma Z = x], shape (N, 2).

        Per component: mu_k + alpha s_k^2 / v_k (x - alpha mu_k); mixed by responsibilities.
        Equals Tweedie (x + sigma^2 score) / alpha wherever alpha > 0.
        """
        return self._eval(x, alpha, sigma, lambda x, a, s, e: self._posterior(x, a, s, e)[0])

    def posterior_trace_cov(self, x, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """tr Cov[X0 | x], shape (N,): the part of x0 no denoiser can recover."""
        return self._eval(x, alpha, sigma, lambda x, a, s, e: self._posterior(x, a, s, e)[1])

    def _posterior(self, x, a, s, e=False):
        lj, v = self._log_joint(x, a, s, e)
        r = torch.softmax(lj, dim=1)  # (N, K)
        mu, s2, _ = self._params(x)
        gain = a * s2[None, :] / v  # (N, K)
        # m_k = mu_k + gain_k (x - a mu_k), one (N, K) tensor per coordinate (no (N, K, 2))
        mx = mu[:, 0] + gain * (x[:, 0:1] - a * mu[:, 0])
        my = mu[:, 1] + gain * (x[:, 1:2] - a * mu[:, 1])
        var_k = s2[None, :] * s**2 / v  # per-coordinate posterior variance (N, K)
        m = torch.stack([(r * mx).sum(1), (r * my).sum(1)], 1)
        # Law of total variance, summed around m (not E||X0||^2 - ||m||^2, which cancels
        # catastrophically in float32 at small sigma: 28 % error at sigma = 1e-3).
        ex, ey = mx - m[:, 0:1], my - m[:, 1:2]
        between = ex * ex + ey * ey
        return m, (r * (2 * var_k + between)).sum(1)


def _one_if_constant(col: torch.Tensor) -> torch.Tensor:
    """A (N, 1) column whose rows are all equal as (1, 1).

    Samplers query the score at one t for every particle; one alpha/sigma for all rows keeps v
    a (1, K) row, which made a sampler step 2.6x cheaper (1,000 particles x 2,000 components).
    """
    if col.shape[0] > 1 and bool((col == col[0]).all()):
        return col[:1]
    return col


# Largest (|x|^2 + |alpha mu|^2) / (2 v) times the dtype's epsilon for which the expanded form
# below is used: float32 at <= 250 keeps the score within ~1e-5 relative of the direct form.
_EXPANSION_TOL = 3e-5


def _expansion_is_exact(x: torch.Tensor, amu: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether |x - a mu|^2 = |x|^2 - 2 x.a mu + |a mu|^2 cancels harmlessly in x's dtype."""
    scale = (x.square().sum(1).max() + amu.square().sum(1).max()) / (2 * v.min())
    return bool(scale * torch.finfo(x.dtype).eps <= _EXPANSION_TOL)


def _log_joint_matmul(x, amu, v, logw) -> torch.Tensor:
    """log w_k - log v_k - log 2pi - |x - a mu_k|^2 / (2 v_k) as one matrix product (N, K).

    [x, |x|^2] (N, 3) @ [a mu_k / v_k; -1 / (2 v_k)] (3, K) plus a per-component row: one pass
    over (N, K) instead of six, 2.4x faster. Only where the expansion cannot cancel (see
    `_expansion_is_exact`); v is (1, K).
    """
    iv = 1.0 / v
    row = (logw - torch.log(v) - _LOG_2PI) - amu.square().sum(1) * (0.5 * iv)
    weights = torch.cat([amu.T * iv, -0.5 * iv], 0)
    return torch.addmm(row, torch.cat([x, x.square().sum(1, keepdim=True)], 1), weights)


def _per_component(v, k: int, what: str) -> torch.Tensor:
    """A (k,) float64 copy of v, which has k entries or one for all components."""
    v = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    if v.numel() not in (1, k):
        raise DataError(
            f"Mixture {what}: need 1 or {k} values (one per component), got {v.numel()}."
        )
    return v.expand(k).clone()


def empirical(points, bandwidth: float = 0.0) -> GaussianMixture:
    """The empirical distribution of a point cloud, smoothed by N(0, bandwidth^2 I).

    Its exact score and denoiser at noise sigma are those of the mixture of N Gaussians:
    the memorising optimum that a network trained on these N points would reach if it could.
    """
    pts = torch.as_tensor(points, dtype=torch.float64).reshape(-1, 2)
    if bandwidth < 0 or not math.isfinite(bandwidth):
        raise DataError("The bandwidth must be a finite number >= 0.")
    n = pts.shape[0]
    return GaussianMixture(pts, torch.full((n,), float(bandwidth)), torch.ones(n))


# Points the memorising optimum keeps: its exact score costs O(particles x points) per step
# (1,000 particles x 200 steps: ~12 s per 1,000 points on one core), so beyond this many it is
# the optimum of a fixed random subset: it still reproduces training points, just fewer of them.
MAX_MEMORISED = 1_000


def memorising_optimum(points, max_points: int = MAX_MEMORISED, seed: int = 0) -> GaussianMixture:
    """`empirical(points)` of at most `max_points` of the (N, 2) points: all when N <= max_points,
    else a random subset fixed by `seed` (without replacement)."""
    pts = torch.as_tensor(points, dtype=torch.float64).reshape(-1, 2)
    if pts.shape[0] > max_points:
        gen = torch.Generator().manual_seed(int(seed))
        pts = pts[torch.randperm(pts.shape[0], generator=gen)[:max_points]]
    return empirical(pts)
