"""eps <-> score <-> x0 conversions (round trips in float64, hand-computed values) and the ScoreFn
seam in `scoreviz.score` (exact_score_fn, denoiser_from_score) against the mixture's own methods.
"""

import pytest
import torch

from scoreviz import conversions as C
from scoreviz.distributions import get_distribution
from scoreviz.processes import PROCESSES, get_process
from scoreviz.score import denoiser_from_score, exact_score_fn, full_t

F64 = torch.float64
N = 64


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn(N, 2, generator=gen, dtype=F64) * 2
    v = torch.randn(N, 2, generator=gen, dtype=F64)
    alpha = torch.rand(N, generator=gen, dtype=F64) * 0.95 + 0.05
    sigma = torch.rand(N, generator=gen, dtype=F64) * 2 + 0.01
    return x_t, v, alpha, sigma


def _shapes(alpha, sigma):
    """The same alpha/sigma as (N,), (N, 1) and plain floats (the first element)."""
    yield alpha, sigma
    yield alpha[:, None], sigma[:, None]
    yield float(alpha[0]), float(sigma[0])


def test_round_trips(batch):
    x_t, v, alpha, sigma = batch
    for a, s in _shapes(alpha, sigma):
        pairs = [
            (C.score_to_eps(C.eps_to_score(v, s), s), v),
            (C.eps_to_score(C.score_to_eps(v, s), s), v),
            (C.x0_to_score(C.score_to_x0(v, x_t, a, s), x_t, a, s), v),
            (C.score_to_x0(C.x0_to_score(v, x_t, a, s), x_t, a, s), v),
            (C.x0_to_eps(C.eps_to_x0(v, x_t, a, s), x_t, a, s), v),
            (C.eps_to_x0(C.x0_to_eps(v, x_t, a, s), x_t, a, s), v),
            (C.score_to_v(C.v_to_score(v, x_t, a, s), x_t, a, s), v),
            (C.v_to_score(C.score_to_v(v, x_t, a, s), x_t, a, s), v),
            (C.eps_to_v(C.v_to_eps(v, x_t, a, s), x_t, a, s), v),
            (C.v_to_eps(C.eps_to_v(v, x_t, a, s), x_t, a, s), v),
            (C.x0_to_v(C.v_to_x0(v, x_t, a, s), x_t, a, s), v),
            (C.v_to_x0(C.x0_to_v(v, x_t, a, s), x_t, a, s), v),
        ]
        for i, (got, want) in enumerate(pairs):
            assert got.dtype == F64 and got.shape == (N, 2)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=f"pair {i}")


def test_paths_commute(batch):
    """eps -> x0 directly equals eps -> score -> x0 (the triangle closes)."""
    x_t, v, alpha, sigma = batch
    direct = C.eps_to_x0(v, x_t, alpha, sigma)
    via_score = C.score_to_x0(C.eps_to_score(v, sigma), x_t, alpha, sigma)
    torch.testing.assert_close(direct, via_score, rtol=1e-12, atol=1e-12)


def test_hand_computed_values():
    """Catches a bug shared by both directions of a round trip (e.g. sigma instead of sigma^2)."""
    x_t = torch.tensor([[1.0, 2.0]], dtype=F64)
    a, s = 0.5, 2.0
    torch.testing.assert_close(
        C.eps_to_score(torch.tensor([[1.0, -2.0]]), s), torch.tensor([[-0.5, 1.0]])
    )
    # Tweedie: (x + s^2 score) / a = ([1, 2] + 4 [1, 1]) / 0.5
    got = C.score_to_x0(torch.tensor([[1.0, 1.0]], dtype=F64), x_t, a, s)
    torch.testing.assert_close(got, torch.tensor([[10.0, 12.0]], dtype=F64))
    # x_t = a x0 + s eps with x0 = [2, 0], eps = [0, 1]
    x0, eps = torch.tensor([[2.0, 0.0]], dtype=F64), torch.tensor([[0.0, 1.0]], dtype=F64)
    torch.testing.assert_close(C.x0_to_eps(x0, x_t, a, s), eps)
    torch.testing.assert_close(C.eps_to_x0(eps, x_t, a, s), x0)
    torch.testing.assert_close(C.x0_to_score(x0, x_t, a, s), -eps / s)


def test_float32_stays_float32(batch):
    x_t, v, alpha, sigma = (u.float() for u in batch)
    assert C.score_to_x0(v, x_t, alpha.double(), sigma.double()).dtype == torch.float32
    assert C.eps_to_score(v, sigma.double()).dtype == torch.float32


def test_conversions_on_the_exact_mixture():
    """For the exact mixture: x0_hat -> score gives the mixture score; score -> eps -> x0 gives
    the mixture denoiser."""
    dist = get_distribution("two_moons")
    gen = torch.Generator().manual_seed(1)
    alpha, sigma = 0.7, 0.5
    x_t = dist.sample(200, generator=gen, alpha=alpha, sigma=sigma, dtype=F64)
    score, x0_hat = dist.score(x_t, alpha, sigma), dist.denoise(x_t, alpha, sigma)
    torch.testing.assert_close(C.x0_to_score(x0_hat, x_t, alpha, sigma), score)
    eps_hat = C.score_to_eps(score, sigma)
    torch.testing.assert_close(C.eps_to_x0(eps_hat, x_t, alpha, sigma), x0_hat)


# --------------------------------------------------------------------------- the ScoreFn seam
@pytest.mark.parametrize("process_name", list(PROCESSES))
def test_exact_score_fn_and_denoiser_at_per_sample_t(process_name):
    dist, process = get_distribution("eight_gaussians"), get_process(process_name)
    gen = torch.Generator().manual_seed(2)
    t = process.t_min + (1 - process.t_min) * torch.rand(300, generator=gen, dtype=F64)
    alpha, sigma = process.alpha(t), process.sigma(t)
    x0 = dist.sample(300, generator=gen, dtype=F64)
    x_t = process.marginal(x0, t, torch.randn(300, 2, generator=gen, dtype=F64))

    score_fn = exact_score_fn(dist, process)
    got = score_fn(x_t, t)
    assert got.shape == (300, 2) and got.dtype == F64
    one_by_one = torch.stack(
        [dist.score(x_t[i : i + 1], float(alpha[i]), float(sigma[i]))[0] for i in range(0, 300, 37)]
    )
    torch.testing.assert_close(got[::37], one_by_one, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, dist.score(x_t, alpha, sigma), rtol=0, atol=0)

    denoise = denoiser_from_score(score_fn, process)
    torch.testing.assert_close(
        denoise(x_t, t), dist.denoise(x_t, alpha, sigma), rtol=1e-9, atol=1e-9
    )


def test_score_fn_accepts_scalar_time_and_float32():
    dist, process = get_distribution("grid"), get_process("vp_linear")
    x = dist.sample(50, generator=torch.Generator().manual_seed(3))
    score_fn = exact_score_fn(dist, process)
    t = full_t(0.3, 50)
    assert t.shape == (50,) and t.dtype == torch.float32
    out = score_fn(x, t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(score_fn(x, torch.tensor(0.3)), out)
    ref = dist.score(
        x.double(),
        process.alpha(torch.tensor(0.3, dtype=F64)),
        process.sigma(torch.tensor(0.3, dtype=F64)),
    )
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_velocity_is_eps_minus_x0_of_one_pair(batch):
    """An independent oracle: draw x0 and eps, form x_t = alpha x0 + sigma eps; the velocity of
    that one pair is eps - x0, and every conversion must recover x0, eps and the score from it."""
    _, x0, alpha, sigma = batch
    eps = torch.randn(N, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    a, s = alpha[:, None], sigma[:, None]
    x_t, v = a * x0 + s * eps, eps - x0
    torch.testing.assert_close(C.v_to_x0(v, x_t, alpha, sigma), x0, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(C.v_to_eps(v, x_t, alpha, sigma), eps, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(C.v_to_score(v, x_t, alpha, sigma), -eps / s)
    torch.testing.assert_close(C.score_to_v(-eps / s, x_t, alpha, sigma), v)
    torch.testing.assert_close(C.x0_to_v(x0, x_t, alpha, sigma), v)
    torch.testing.assert_close(C.eps_to_v(eps, x_t, alpha, sigma), v)
