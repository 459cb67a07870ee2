"""GaussianMixture: the exact ground truth, checked against independent oracles.

Oracles: autograd of the log-density (score), Tweedie's formula (denoiser), numerical quadrature
(normalisation, mean, covariance), Monte-Carlo moments (sampling), second-order Tweedie via the
autograd Hessian and the denoising MSE identity (posterior covariance), a hand-built mixture
(`empirical`). Every check runs in float64 with tight tolerances unless it is about float32.
"""

import math

import pytest
import torch

import scoreviz.mixture as mixture_mod
from scoreviz.distributions import DISTRIBUTIONS, get_distribution
from scoreviz.errors import DataError
from scoreviz.mixture import GaussianMixture, empirical

NAMES = list(DISTRIBUTIONS)
# (alpha, sigma): clean data, slightly noised, mostly noise with alpha < 1, VE-like, near prior.
LEVELS = [(1.0, 0.0), (1.0, 0.05), (0.8, 0.3), (0.3, 0.95), (1.0, 2.0), (0.02, 1.0)]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _query_points(dist: GaussianMixture, alpha: float, sigma: float, n: int = 256):
    """Points where p_{alpha,sigma} has mass, plus a few uniform points around it (float64)."""
    on = dist.sample(n, generator=_gen(1), alpha=alpha, sigma=sigma, dtype=torch.float64)
    around = (torch.rand(64, 2, generator=_gen(2), dtype=torch.float64) - 0.5) * 6
    return torch.cat([on, around])


def _autograd_score(dist, x, alpha, sigma):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(dist.log_prob(x, alpha, sigma).sum(), x)
    return grad


def _autograd_laplacian(dist, x, alpha, sigma):
    """tr of the Hessian of log p_{alpha,sigma} at each point, shape (N,)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(dist.log_prob(x, alpha, sigma).sum(), x, create_graph=True)
    lap = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(2):
        (h,) = torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)
        lap = lap + h[:, i]
    return lap


# --------------------------------------------------------------------------- score / denoiser
@pytest.mark.parametrize("name", NAMES)
def test_score_is_autograd_of_log_prob(name):
    dist = get_distribution(name)
    for alpha, sigma in LEVELS:
        x = _query_points(dist, alpha, sigma)
        score = dist.score(x, alpha, sigma)
        expected = _autograd_score(dist, x, alpha, sigma)
        assert score.dtype == torch.float64
        torch.testing.assert_close(score, expected, rtol=1e-9, atol=1e-9, msg=f"{alpha=} {sigma=}")


@pytest.mark.parametrize("name", NAMES)
def test_denoise_is_tweedie(name):
    dist = get_distribution(name)
    for alpha, sigma in LEVELS:
        x = _query_points(dist, alpha, sigma)
        tweedie = (x + sigma**2 * dist.score(x, alpha, sigma)) / alpha
        torch.testing.assert_close(
            dist.denoise(x, alpha, sigma), tweedie, rtol=1e-9, atol=1e-9, msg=f"{alpha=} {sigma=}"
        )


def test_denoise_at_sigma_zero_is_identity_over_alpha():
    dist = get_distribution("two_moons")
    x = _query_points(dist, 1.0, 0.0)
    torch.testing.assert_close(dist.denoise(x, 0.5, 0.0), x / 0.5, rtol=1e-12, atol=1e-12)


def test_score_of_single_gaussian_closed_form():
    """One component N(mu, s^2 I): score = (alpha mu - x) / (alpha^2 s^2 + sigma^2)."""
    mu, s = torch.tensor([[0.7, -1.2]], dtype=torch.float64), 0.4
    g = GaussianMixture(mu, torch.tensor([s]), torch.ones(1))
    x = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-3.0, 5.0]], dtype=torch.float64)
    for alpha, sigma in LEVELS:
        v = alpha**2 * s**2 + sigma**2
        torch.testing.assert_close(g.score(x, alpha, sigma), (alpha * mu - x) / v)
        d2 = ((x - alpha * mu) ** 2).sum(1)
        torch.testing.assert_close(
            g.log_prob(x, alpha, sigma), -d2 / (2 * v) - math.log(2 * math.pi * v)
        )


def test_per_sample_alpha_sigma_match_scalar_calls():
    dist = get_distribution("pinwheel")
    x = _query_points(dist, 1.0, 0.3)[:40]
    alpha = torch.linspace(0.1, 1.0, 40, dtype=torch.float64)
    sigma = torch.linspace(0.0, 1.5, 40, dtype=torch.float64)
    batched = dist.score(x, alpha, sigma)
    one_by_one = torch.stack(
        [dist.score(x[i : i + 1], float(alpha[i]), float(sigma[i]))[0] for i in range(40)]
    )
    torch.testing.assert_close(batched, one_by_one, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- quadrature
def _grid(lim: float, n: int):
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    return torch.stack([xx.ravel(), yy.ravel()], 1), (g[1] - g[0]).item() ** 2


@pytest.mark.parametrize(
    "name, alpha, sigma, lim",
    [("eight_gaussians", 1.0, 0.0, 4.0), ("two_moons", 1.0, 0.0, 4.0), ("skewed", 0.3, 0.95, 7.0)],
)
def test_density_integrates_to_one_with_right_moments(name, alpha, sigma, lim):
    """Riemann sum on a fine grid (spacing < 1/4 of the narrowest width: spectrally accurate)."""
    dist = get_distribution(name)
    x, cell = _grid(lim, 401 if lim < 5 else 351)  # spacing 0.02 < 0.1 / 4, or 0.04 < 0.95 / 4
    p = dist.log_prob(x, alpha, sigma).exp() * cell
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
    mean = p @ x
    cov = (p[:, None] * (x - mean)).T @ (x - mean)
    torch.testing.assert_close(mean, alpha * dist.mean(), rtol=0, atol=1e-6)
    expected_cov = alpha**2 * dist.cov() + sigma**2 * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(cov, expected_cov, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", NAMES)
def test_noised_samples_match_noised_moments(name):
    """Mean alpha*m and covariance alpha^2 C + sigma^2 I, within Monte-Carlo error (n = 40k)."""
    dist = get_distribution(name)
    n = 40_000
    for alpha, sigma in [(1.0, 0.0), (0.3, 0.95), (1.0, 2.0)]:
        x = dist.sample(n, generator=_gen(3), alpha=alpha, sigma=sigma, dtype=torch.float64)
        cov = alpha**2 * dist.cov() + sigma**2 * torch.eye(2, dtype=torch.float64)
        scale = float(torch.trace(cov)) / 2
        # 5 standard errors of the mean, ~6 of the covariance entries (kurtosis <= 3 here)
        tol_mean, tol_cov = 5 * math.sqrt(scale / n), 6 * scale * math.sqrt(3 / n)
        torch.testing.assert_close(x.mean(0), alpha * dist.mean(), rtol=0, atol=tol_mean)
        torch.testing.assert_close(torch.cov(x.T), cov, rtol=0, atol=tol_cov)


def test_samples_land_in_components_by_weight():
    """skewed: 80 % of samples near the heavy mode, 20 % near the light one."""
    dist = get_distribution("skewed")
    x = dist.sample(20_000, generator=_gen(4), dtype=torch.float64)
    heavy = int(torch.argmax(dist.weights))
    nearest = torch.cdist(x, dist.means).argmin(1)  # modes are ~8 widths apart: no ambiguity
    assert float((nearest == heavy).double().mean()) == pytest.approx(0.8, abs=0.015)


def test_sample_zero_points():
    x = get_distribution("rings").sample(0, dtype=torch.float64)
    assert x.shape == (0, 2) and x.dtype == torch.float64


def test_sample_dtype_and_generator_reproducible():
    dist = get_distribution("rings")
    a = dist.sample(100, generator=_gen(7))
    b = dist.sample(100, generator=_gen(7))
    assert a.dtype == torch.float32 and a.shape == (100, 2)
    assert torch.equal(a, b)
    assert dist.sample(5, generator=_gen(7), dtype=torch.float64).dtype == torch.float64


# --------------------------------------------------------------------------- posterior covariance
def test_posterior_trace_cov_single_component_closed_form():
    """N(mu, s^2 I): Cov[X0 | x] = s^2 sigma^2 / (alpha^2 s^2 + sigma^2) I, whatever x."""
    s = 0.5
    g = GaussianMixture(torch.tensor([[1.0, 2.0]]), torch.tensor([s]), torch.ones(1))
    x = torch.randn(50, 2, generator=_gen(5), dtype=torch.float64) * 3
    for alpha, sigma in LEVELS:
        expected = 2 * s**2 * sigma**2 / (alpha**2 * s**2 + sigma**2)
        got = g.posterior_trace_cov(x, alpha, sigma)
        torch.testing.assert_close(got, torch.full_like(got, expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_posterior_trace_cov_is_second_order_tweedie(name):
    """Cov[X0 | x] = sigma^2/alpha^2 (I + sigma^2 Hess log p(x)); the trace via autograd."""
    dist = get_distribution(name)
    for alpha, sigma in [(1.0, 0.05), (0.8, 0.3), (0.3, 0.95)]:
        x = _query_points(dist, alpha, sigma, n=64)
        lap = _autograd_laplacian(dist, x, alpha, sigma)
        expected = sigma**2 / alpha**2 * (2 + sigma**2 * lap)
        got = dist.posterior_trace_cov(x, alpha, sigma)
        torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9, msg=f"{alpha=} {sigma=}")


def test_posterior_trace_cov_is_the_optimal_denoising_error():
    """E ||X0 - E[X0|x_t]||^2 = E tr Cov[X0 | x_t]: a Monte-Carlo check of the whole pipeline."""
    dist = get_distribution("eight_gaussians")
    n, gen = 100_000, _gen(6)
    for alpha, sigma in [(1.0, 0.5), (0.6, 0.8)]:
        x0 = dist.sample(n, generator=gen, dtype=torch.float64)
        x_t = alpha * x0 + sigma * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        mse = ((x0 - dist.denoise(x_t, alpha, sigma)) ** 2).sum(1)
        trace = dist.posterior_trace_cov(x_t, alpha, sigma)
        err = 5 * float(mse.std()) / math.sqrt(n)
        assert float(mse.mean()) == pytest.approx(float(trace.mean()), abs=err)


def test_posterior_trace_cov_zero_at_sigma_zero():
    dist = get_distribution("grid")
    x = _query_points(dist, 1.0, 0.0)
    assert float(dist.posterior_trace_cov(x, 1.0, 0.0).abs().max()) < 1e-12


def test_posterior_trace_cov_accurate_in_float32_at_small_sigma():
    """No cancellation: tr Cov ~ 2 sigma^2 = 2e-6 must survive float32 next to ||x||^2 ~ 4."""
    dist = get_distribution("eight_gaussians")
    for sigma in (1e-2, 1e-3):
        x = dist.sample(2000, generator=_gen(16), sigma=sigma, dtype=torch.float64)
        t64 = dist.posterior_trace_cov(x, 1.0, sigma)
        t32 = dist.posterior_trace_cov(x.float(), 1.0, sigma)
        assert t32.dtype == torch.float32
        torch.testing.assert_close(t32.double(), t64, rtol=1e-3, atol=0)


# --------------------------------------------------------------------------- dtypes, chunking
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_input(dtype):
    dist = get_distribution("swiss_roll")
    x64 = _query_points(dist, 0.8, 0.3)
    x = x64.to(dtype)
    alpha = torch.full((x.shape[0],), 0.8, dtype=torch.float64)  # float64 alpha, any-dtype x
    sigma = torch.full((x.shape[0],), 0.3, dtype=torch.float64)
    for method in ("log_prob", "score", "denoise", "responsibilities", "posterior_trace_cov"):
        out = getattr(dist, method)(x, alpha, sigma)
        ref = getattr(dist, method)(x64, 0.8, 0.3)
        assert out.dtype == dtype, method
        assert torch.isfinite(out).all(), method
        torch.testing.assert_close(out.double(), ref, rtol=1e-3, atol=1e-3, msg=method)


def test_large_batch_is_chunked_and_matches_unchunked(monkeypatch):
    """100k points on the 376-component word (several chunks) agree with unchunked evaluation.

    Unchunked is checked on the rows on both sides of every chunk boundary plus random rows
    (evaluating all 100k at once costs ~1 GB and seconds); per-sample alpha/sigma make a
    misaligned slice of alpha/sigma inside `_eval` visible.
    """
    dist = get_distribution("word")
    assert dist.n_components == 376
    n = 100_000
    x = dist.sample(n, generator=_gen(8), alpha=0.9, sigma=0.2)
    sigma = torch.linspace(0.0, 1.0, n)
    alpha = torch.sqrt(1 - sigma**2)
    step = mixture_mod._CHUNK_PAIRS // dist.n_components
    assert n / step > 5
    chunked = dist.score(x, alpha, sigma)
    assert chunked.shape == (n, 2) and chunked.dtype == torch.float32
    assert torch.isfinite(chunked).all()
    edges = torch.arange(step, n, step)
    random_rows = torch.randperm(n, generator=_gen(17))[:500]
    rows = torch.cat([edges - 1, edges, torch.tensor([0, n - 1]), random_rows])
    monkeypatch.setattr(mixture_mod, "_CHUNK_PAIRS", 10**12)
    whole = dist.score(x[rows], alpha[rows], sigma[rows])
    torch.testing.assert_close(chunked[rows], whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_point", [False, True])
def test_small_chunks_match(monkeypatch, per_point):
    """Chunking over points changes nothing: bit for bit on the direct form (alpha per point),
    to float rounding on the expanded form (one alpha: a matrix product, whose BLAS blocking
    depends on the chunk's size)."""
    dist = get_distribution("checkerboard")
    x = _query_points(dist, 0.8, 0.3)
    alpha = torch.linspace(0.7, 0.9, len(x)) if per_point else 0.8
    assert dist._expandable(x, mixture_mod._as_col(alpha, x), torch.ones(1, 1)) is not per_point
    ref = dist.denoise(x, alpha, 0.3)
    monkeypatch.setattr(mixture_mod, "_CHUNK_PAIRS", 7)  # one point per chunk
    tol = 0 if per_point else 1e-6
    torch.testing.assert_close(dist.denoise(x, alpha, 0.3), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("sigma", [1e-3, 0.05, 0.3, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expanded_form_matches_direct(monkeypatch, sigma, dtype):
    """The matrix-product form (one alpha and sigma for all points) agrees with the direct form
    wherever `_expandable` allows it; float64 always allows it, float32 at the larger sigma."""
    dist = get_distribution("two_spirals")
    x = _query_points(dist, 0.8, sigma).to(dtype)
    used = dist._expandable(x, torch.full((1, 1), 0.8, dtype=dtype), torch.full((1, 1), sigma))
    assert used is (dtype == torch.float64 or sigma >= 0.3)
    expanded = dist.score(x, 0.8, sigma)
    monkeypatch.setattr(GaussianMixture, "_expandable", lambda *_: False)
    direct = dist.score(x, 0.8, sigma)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(expanded, direct, rtol=tol, atol=tol * float(direct.abs().max()))


def test_empty_batch():
    dist = get_distribution("eight_gaussians")
    assert dist.score(torch.zeros(0, 2), 1.0, 0.5).shape == (0, 2)
    assert dist.log_prob(torch.zeros(0, 2), 1.0, 0.5).shape == (0,)


# --------------------------------------------------------------------------- responsibilities
@pytest.mark.parametrize("name", NAMES)
def test_responsibilities_are_probabilities(name):
    dist = get_distribution(name)
    for alpha, sigma in [(1.0, 0.0), (0.3, 0.95)]:
        x = _query_points(dist, alpha, sigma)
        r = dist.responsibilities(x, alpha, sigma)
        assert r.shape == (x.shape[0], dist.n_components)
        assert float(r.min()) >= 0.0
        torch.testing.assert_close(r.sum(1), torch.ones(x.shape[0], dtype=torch.float64))


def test_responsibilities_match_bayes_rule():
    dist = get_distribution("skewed")
    x = torch.tensor([[0.1, 0.3], [-0.5, 0.0]], dtype=torch.float64)
    alpha, sigma = 0.7, 0.6
    v = alpha**2 * dist.stds**2 + sigma**2
    d2 = ((x[:, None] - alpha * dist.means[None]) ** 2).sum(-1)
    joint = dist.weights * torch.exp(-d2 / (2 * v)) / (2 * math.pi * v)
    expected = joint / joint.sum(1, keepdim=True)
    torch.testing.assert_close(dist.responsibilities(x, alpha, sigma), expected)


# --------------------------------------------------------------------------- far from the data
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_far_from_data(name, dtype):
    """At x = (50, 50) every density is ~exp(-1e5): log-sum-exp must keep things finite."""
    dist = get_distribution(name)
    x = torch.tensor([[50.0, 50.0], [-50.0, 30.0]], dtype=dtype)
    for alpha, sigma in [(1.0, 0.0), (0.3, 0.95)]:
        lp = dist.log_prob(x, alpha, sigma)
        score = dist.score(x, alpha, sigma)
        den = dist.denoise(x, alpha, sigma)
        assert torch.isfinite(lp).all() and float(lp.max()) < -100
        assert torch.isfinite(score).all() and torch.isfinite(den).all()
        assert float((score * x).sum(1).max()) < 0  # the score points back towards the data
        if sigma > 0:  # x0_hat is pulled in towards the data, not thrown out
            assert float(den.norm(dim=1).max()) < float(x.norm(dim=1).min()) / alpha


# --------------------------------------------------------------------------- empirical
def test_empirical_with_bandwidth_matches_hand_built_mixture():
    pts = torch.randn(30, 2, generator=_gen(9), dtype=torch.float64)
    h = 0.25
    emp = empirical(pts, h)
    hand = GaussianMixture(pts, torch.full((30,), h), torch.full((30,), 1 / 30))
    x = torch.randn(50, 2, generator=_gen(10), dtype=torch.float64) * 2
    for alpha, sigma in [(1.0, 0.0), (0.3, 0.95)]:
        for method in ("log_prob", "score", "denoise"):
            torch.testing.assert_close(
                getattr(emp, method)(x, alpha, sigma), getattr(hand, method)(x, alpha, sigma)
            )
    # and against a direct KDE formula at sigma = 0
    d2 = ((x[:, None] - pts[None]) ** 2).sum(-1)
    kde = (torch.exp(-d2 / (2 * h**2)) / (2 * math.pi * h**2)).mean(1)
    torch.testing.assert_close(emp.log_prob(x), kde.log())


def test_empirical_without_bandwidth_works_with_noise():
    pts = torch.randn(20, 2, generator=_gen(11), dtype=torch.float64)
    emp = empirical(pts)
    x = torch.randn(40, 2, generator=_gen(12), dtype=torch.float64)
    for alpha, sigma in [(1.0, 0.3), (0.5, 0.9)]:
        assert torch.isfinite(emp.log_prob(x, alpha, sigma)).all()
        torch.testing.assert_close(
            emp.score(x, alpha, sigma), _autograd_score(emp, x, alpha, sigma), rtol=1e-9, atol=1e-9
        )
        # the denoiser is a convex combination of the training points
        r = emp.responsibilities(x, alpha, sigma)
        torch.testing.assert_close(emp.denoise(x, alpha, sigma), r @ pts)


def test_empirical_without_bandwidth_at_sigma_zero_raises_clear_error():
    emp = empirical(torch.randn(10, 2, generator=_gen(13)))
    for method in ("log_prob", "score", "denoise"):
        with pytest.raises(DataError, match=r"noise level above 0 or a bandwidth above 0"):
            getattr(emp, method)(torch.zeros(3, 2), 1.0, 0.0)


def test_empirical_denoiser_snaps_onto_training_points():
    """Memorisation: at small sigma, E[X0 | x] is the training point x came from."""
    g = torch.arange(7, dtype=torch.float64) * 0.3 - 0.9
    pts = torch.cartesian_prod(g, g)
    pts = pts + 0.05 * torch.rand(49, 2, generator=_gen(14), dtype=torch.float64)
    sigma = 0.01  # far below the spacing (>= 0.25) of the training points
    x = pts + sigma * torch.randn(49, 2, generator=_gen(15), dtype=torch.float64)
    torch.testing.assert_close(empirical(pts).denoise(x, 1.0, sigma), pts, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_empirical_rejects_bad_bandwidth(bad):
    with pytest.raises(DataError, match="bandwidth"):
        empirical(torch.zeros(3, 2), bad)


def test_mixture_validation():
    with pytest.raises(DataError, match="at least one"):
        empirical(torch.zeros(0, 2), 0.1)
    with pytest.raises(DataError, match="finite"):
        GaussianMixture(torch.tensor([[float("nan"), 0.0]]), torch.ones(1), torch.ones(1))
    with pytest.raises(DataError, match="non-negative"):
        GaussianMixture(torch.zeros(2, 2), torch.ones(2), torch.tensor([1.0, -0.5]))
    with pytest.raises(DataError, match="finite"):
        GaussianMixture(torch.zeros(2, 2), torch.ones(2), torch.tensor([1.0, float("nan")]))
    with pytest.raises(DataError, match="need 1 or 3 values"):
        GaussianMixture(torch.zeros(3, 2), torch.ones(2), torch.ones(3))
    g = GaussianMixture(torch.zeros(2, 2), 0.5, torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(g.weights, torch.tensor([0.75, 0.25], dtype=torch.float64))
    torch.testing.assert_close(g.stds, torch.tensor([0.5, 0.5], dtype=torch.float64))
