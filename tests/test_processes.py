"""Noise processes: the schedule (alpha, sigma) and the SDE (f, g) derived from it must agree.

Oracles: finite differences of the stated alpha/sigma, an Euler-Maruyama simulation of the
forward SDE compared with the closed-form marginal, and the defining identities of each family.
"""

import math

import pytest
import torch

from scoreviz.errors import ConfigError
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import PROCESSES, VE, SubVP, VPLinear, get_process, process_labels

NAMES = list(PROCESSES)
F64 = torch.float64


def _times(process, n: int = 201) -> torch.Tensor:
    return torch.linspace(process.t_min, 1.0, n, dtype=F64)


@pytest.fixture(params=NAMES)
def process(request):
    return get_process(request.param)


# --------------------------------------------------------------------------- t <-> sigma
def test_t_from_sigma_inverts_sigma(process):
    t = _times(process)
    torch.testing.assert_close(process.t_from_sigma(process.sigma(t)), t, rtol=0, atol=1e-9)


def test_sigma_of_t_from_sigma_round_trip(process):
    lo = float(process.sigma(torch.tensor(process.t_min, dtype=F64)))
    hi = process.prior_std
    sigma = torch.linspace(lo, hi, 101, dtype=F64)
    torch.testing.assert_close(
        process.sigma(process.t_from_sigma(sigma)), sigma, rtol=1e-10, atol=0
    )


def test_t_from_sigma_clips_outside_range(process):
    t = process.t_from_sigma(torch.tensor([0.0, 1e6], dtype=F64))
    assert float(t[0]) == pytest.approx(0.0, abs=1e-15)
    assert float(t[1]) == pytest.approx(1.0, abs=1e-12)


def test_schedule_is_monotone(process):
    """sigma increases, snr decreases: t_from_sigma's bisection and the samplers rely on it."""
    t = _times(process)
    assert bool((process.sigma(t).diff() > 0).all())
    assert bool((process.snr(t).diff() < 0).all())
    assert bool((process.alpha(t).diff() <= 0).all())


# --------------------------------------------------------------------------- derived f and g
def test_f_and_g2_match_finite_differences(process):
    """f = d log alpha / dt and g^2 = d sigma^2/dt - 2 f sigma^2, by central differences."""
    h = 1e-6
    t = torch.linspace(process.t_min + 2 * h, 1.0 - 2 * h, 97, dtype=F64)
    dlog_alpha = (process.alpha(t + h).log() - process.alpha(t - h).log()) / (2 * h)
    dsigma2 = (process.sigma(t + h) ** 2 - process.sigma(t - h) ** 2) / (2 * h)
    f = process.f(torch.ones(len(t), 1, dtype=F64), t)[:, 0]
    torch.testing.assert_close(f, dlog_alpha, rtol=1e-6, atol=1e-8)
    g2 = dsigma2 - 2 * dlog_alpha * process.sigma(t) ** 2
    torch.testing.assert_close(process.g2(t), g2, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(process.g(t) ** 2, process.g2(t), rtol=1e-12, atol=0)


def _euler_maruyama(process, x0, t_check, n_steps, gen):
    """Simulate dx = f x dt + g dw from x_{t0} = alpha x0 + sigma eps, t0 = t_min.

    The grid is denser towards t = 1, where VP's drift is stiffest. Returns {grid time: x_t}.
    """
    t0 = process.t_min
    u = torch.linspace(0, 1, n_steps + 1, dtype=F64)
    grid = t0 + (1 - t0) * (1 - (1 - u) ** 2)
    g = process.g(grid)
    x = process.marginal(
        x0, torch.full((len(x0),), t0, dtype=F64), torch.randn(x0.shape, generator=gen, dtype=F64)
    )
    out, wanted = {}, sorted(t_check)
    for k in range(n_steps):
        dt = grid[k + 1] - grid[k]
        x = x + process.f(x, grid[k]) * dt
        x = x + g[k] * dt.sqrt() * torch.randn(x.shape, generator=gen, dtype=F64)
        if wanted and grid[k + 1] >= wanted[0]:
            out[float(grid[k + 1])] = x
            wanted.pop(0)
    return out


def test_forward_sde_has_the_stated_marginals(process):
    """Euler-Maruyama from a non-centred, anisotropic mixture: mean alpha m, cov alpha^2 C +
    sigma^2 I; and the part of x_t not explained by x0 (x_t - alpha_t x0) has covariance
    sigma_t^2 I and no correlation with x0 (i.e. regression slope of x_t on x0 = alpha_t)."""
    gen = torch.Generator().manual_seed(0)
    dist = GaussianMixture(
        torch.tensor([[2.0, 1.0], [3.0, -1.0], [2.5, 2.0]]),
        torch.tensor([0.3, 0.5, 0.2]),
        torch.tensor([0.5, 0.3, 0.2]),
    )
    n = 10_000
    x0 = dist.sample(n, generator=gen, dtype=F64)
    x0c = x0 - x0.mean(0)
    for t, x_t in _euler_maruyama(process, x0, [0.1, 0.3, 0.6, 1.0], 1500, gen).items():
        alpha, sigma = (
            float(process.alpha(torch.tensor(t, dtype=F64))),
            float(process.sigma(torch.tensor(t, dtype=F64))),
        )
        msg = f"{process.name} t={t:.3f}"
        cov = alpha**2 * dist.cov() + sigma**2 * torch.eye(2, dtype=F64)
        scale = math.sqrt(float(torch.trace(cov)) / 2)
        torch.testing.assert_close(
            x_t.mean(0), alpha * dist.mean(), rtol=0, atol=5 * scale / math.sqrt(n), msg=msg
        )
        torch.testing.assert_close(
            torch.cov(x_t.T), cov, rtol=0, atol=8 * scale**2 / math.sqrt(n), msg=msg
        )
        resid_cov = torch.cov((x_t - alpha * x0).T)
        # pooled over both coordinates the relative standard error is 1/sqrt(n) = 1 %
        noise_var = float(torch.trace(resid_cov)) / 2
        assert noise_var / sigma**2 == pytest.approx(1.0, abs=5 / math.sqrt(n)), msg
        assert abs(float(resid_cov[0, 1])) < 5 * sigma**2 / math.sqrt(n), msg
        slope = (x0c * (x_t - x_t.mean(0))).sum(0) / (x0c**2).sum(0)
        se = sigma / (float(x0c.std(0).min()) * math.sqrt(n))
        torch.testing.assert_close(
            slope, torch.full((2,), alpha, dtype=F64), rtol=0, atol=5 * se + 1e-3, msg=msg
        )


# --------------------------------------------------------------------------- family identities
@pytest.mark.parametrize("name", ["vp_linear", "vp_cosine"])
def test_vp_preserves_variance(name):
    p = get_process(name)
    t = _times(p)
    torch.testing.assert_close(p.alpha(t) ** 2 + p.sigma(t) ** 2, torch.ones_like(t))
    assert float(p.alpha(torch.tensor(0.0, dtype=F64))) == pytest.approx(1.0, abs=1e-12)
    assert float(p.alpha(torch.tensor(1.0, dtype=F64))) < 0.02  # the prior is ~ pure noise


def test_vp_linear_closed_form():
    p = VPLinear(beta_min=0.1, beta_max=20.0)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=F64)
    integral = 0.1 * t + 0.5 * 19.9 * t**2
    torch.testing.assert_close(p.alpha(t), torch.exp(-0.5 * integral))
    torch.testing.assert_close(p.g2(t), 0.1 + 19.9 * t)  # g^2 = beta(t)


def test_sub_vp_sigma_below_vp(process):
    vp, sub = VPLinear(), SubVP()
    t = _times(vp)[1:]
    torch.testing.assert_close(sub.alpha(t), vp.alpha(t))
    assert bool((sub.sigma(t) < vp.sigma(t)).all())
    torch.testing.assert_close(sub.sigma(t), 1 - vp.alpha(t) ** 2)
    torch.testing.assert_close(sub.g2(t), vp.g2(t) * (1 - vp.alpha(t) ** 4))


def test_ve_keeps_alpha_one_and_is_geometric():
    p = VE(sigma_min=0.01, sigma_max=10.0)
    t = _times(p)
    assert bool((p.alpha(t) == 1).all())
    torch.testing.assert_close(p.sigma(t), 0.01 * 1000.0**t)
    assert bool((p.f(torch.ones(len(t), 2, dtype=F64), t) == 0).all())


def test_g2_non_negative_and_everything_finite(process):
    t = _times(process, 1001)
    for name in ("alpha", "sigma", "snr", "g2", "g"):
        v = getattr(process, name)(t)
        assert bool(torch.isfinite(v).all()), name
    assert bool(torch.isfinite(process.f(torch.ones(len(t), 2, dtype=F64), t)).all())
    assert float(process.g2(t).min()) >= 0
    assert float(process.sigma(torch.tensor(process.t_min, dtype=F64))) > 0  # finite scores


def test_prior_std_is_sigma_at_one(process):
    assert process.prior_std == pytest.approx(float(process.sigma(torch.tensor(1.0, dtype=F64))))


def test_snr_and_marginal(process):
    t = torch.rand(50, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = process.t_min + (1 - process.t_min) * t
    a, s = process.alpha(t), process.sigma(t)
    torch.testing.assert_close(process.snr(t), a**2 / s**2)
    x0, eps = torch.randn(50, 2, dtype=F64), torch.randn(50, 2, dtype=F64)
    torch.testing.assert_close(process.marginal(x0, t, eps), a[:, None] * x0 + s[:, None] * eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_t(process, dtype):
    t = torch.linspace(process.t_min, 1.0, 5, dtype=dtype)
    for name in ("alpha", "sigma", "snr", "g2", "g", "t_from_sigma"):
        assert getattr(process, name)(t).dtype == dtype, name
    assert process.f(torch.ones(5, 2, dtype=dtype), t).dtype == dtype


def test_time_grid(process):
    grid = process.time_grid(10)
    assert grid.shape == (11,) and grid.dtype == torch.float32
    assert float(grid[0]) == 1.0 and float(grid[-1]) == pytest.approx(process.t_min)
    assert bool((grid.diff() < 0).all())


# --------------------------------------------------------------------------- registry, validation
def test_registry_and_labels():
    labels = process_labels()
    assert set(labels) == set(NAMES) == {"vp_linear", "vp_cosine", "ve", "sub_vp", "linear"}
    assert all(isinstance(v, str) and v.strip() for v in labels.values())
    for name in NAMES:
        assert get_process(name).name == name


def test_processes_are_hashable_values():
    assert get_process("ve") == get_process("ve")
    assert hash(get_process("vp_linear")) == hash(get_process("vp_linear"))
    assert get_process("ve", sigma_max=5.0) != get_process("ve")


def test_unknown_process_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_process("vp_quadratic")
    msg = str(err.value)
    assert "'vp_quadratic'" in msg
    for name in NAMES:
        assert repr(name) in msg


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vp_linear", {"t_min": 0.7}),
        ("vp_linear", {"beta_min": 0.0}),
        ("vp_linear", {"beta_min": 5.0, "beta_max": 1.0}),
        ("ve", {"sigma_min": 10.0, "sigma_max": 1.0}),
        ("vp_cosine", {"t_min": -0.1}),
        ("linear", {"u": 1.0}),
        ("linear", {"u": 0.0}),
    ],
)
def test_invalid_settings_raise_config_error(name, kwargs):
    with pytest.raises(ConfigError):
        get_process(name, **kwargs)


# --------------------------------------------------------------------------- the linear path
def test_linear_path_is_the_flow_matching_interpolation():
    """alpha_t = 1 - u t, sigma_t = u t (alpha + sigma = 1), and f, g^2 against the closed
    forms f = -u / (1 - u t), g^2 = 2 u^2 t / (1 - u t) written out independently."""
    p = get_process("linear")
    t = torch.linspace(p.t_min, 1.0, 101, dtype=F64)
    u = p.u
    torch.testing.assert_close(p.alpha(t), 1 - u * t, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(p.sigma(t), u * t, rtol=1e-12, atol=1e-14)
    x = torch.ones(101, 2, dtype=F64)
    torch.testing.assert_close(p.f(x, t)[:, 0], -u / (1 - u * t), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p.g2(t), 2 * u**2 * t / (1 - u * t), rtol=1e-10, atol=1e-12)
    x0, eps = torch.randn(101, 2, dtype=F64), torch.randn(101, 2, dtype=F64)
    tau = (u * t)[:, None]
    torch.testing.assert_close(p.marginal(x0, t, eps), (1 - tau) * x0 + tau * eps)


def test_linear_path_stops_short_of_the_singular_end():
    """At tau = 1 alpha = 0 and f, g^2 are infinite: u < 1 keeps alpha_1 = 1 - u and g^2(1) finite
    and below VP cosine's (whose samplers run), and sigma(t_min) at VP linear's ~0.01."""
    p, cos = get_process("linear"), get_process("vp_cosine")
    one = torch.tensor([1.0], dtype=F64)
    assert float(p.alpha(one)) == pytest.approx(1 - p.u) and 0 < float(p.alpha(one)) <= 0.02
    assert math.isfinite(float(p.g2(one))) and float(p.g2(one)) < float(cos.g2(one))
    s_min = float(p.sigma(torch.tensor(p.t_min, dtype=F64)))
    s_vp = float(get_process("vp_linear").sigma(torch.tensor(1e-3, dtype=F64)))
    assert 0.5 < s_min / s_vp < 2
