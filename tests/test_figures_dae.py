"""DAE analysis and figures against exact oracles: arrows end exactly at E[x0 | x~], the exact
denoiser's error is the MMSE, and a single-sigma DAE is optimal only at its own sigma."""

import numpy as np
import pytest
import torch

from scoreviz import analysis
from scoreviz.distributions import get_distribution
from scoreviz.figures.arrows import ARROW_HEAD, CORNERS, arrow_xy, polygon_vectors
from scoreviz.figures.dae import dae_reconstruction_figure, reconstruction_error_figure
from scoreviz.figures.dots import dot_centres
from scoreviz.figures.polygons import polygons_of
from scoreviz.figures.style import PALETTE
from scoreviz.processes import get_process
from scoreviz.stops import sigma_stops

DIST = get_distribution("eight_gaussians")


def _arrow_shape(fig, name, panel=1):
    xref = "x" if panel == 1 else f"x{panel}"
    return next(s for s in fig.layout.shapes if s.name == f"x̃ → {name}" and s.xref == xref)


@pytest.mark.parametrize("process_key", ["vp_linear", "ve"])
def test_noisy_points_follow_the_process_at_the_chosen_sigma(process_key):
    proc = get_process(process_key)
    sigmas = [0.05, 0.3, 0.9]
    panels = analysis.reconstructions({}, DIST, proc, sigmas, n=50, seed=3)
    x0 = panels[0].x0
    for p, s in zip(panels, sigmas, strict=True):
        assert p.sigma == pytest.approx(s, rel=1e-6)
        t = torch.tensor(p.t, dtype=torch.float64)
        assert p.alpha == pytest.approx(float(proc.alpha(t)))
        eps = (p.x_t - p.alpha * x0) / p.sigma
        np.testing.assert_allclose(eps, (panels[0].x_t - panels[0].alpha * x0) / panels[0].sigma)
        np.testing.assert_array_equal(p.x0, x0)  # the same clean points in every panel


def test_arrows_go_from_noisy_point_to_exactly_the_exact_denoiser():
    proc = get_process("vp_linear")
    exact = analysis.exact_denoiser(DIST, proc)
    panels = analysis.reconstructions({"exact": exact}, DIST, proc, [0.05, 0.2, 0.6, 1.0], n=40)
    fig = dae_reconstruction_figure(panels, {"exact": "exact"})
    for i, p in enumerate(panels, start=1):
        oracle = DIST.denoise(torch.as_tensor(p.x_t, dtype=torch.float64), p.alpha, p.sigma)
        arrows = _arrow_shape(fig, "exact", i)
        tails, vec = polygon_vectors(arrows.path)
        sent = dict(atol=5.1e-4, rtol=0)  # coordinates go out rounded to 1e-3 (below a pixel)
        np.testing.assert_allclose(tails, p.x_t, **sent)
        np.testing.assert_allclose(tails + vec, p.recon["exact"], **sent)  # each tip at D(x̃)
        np.testing.assert_allclose(p.recon["exact"], oracle.numpy(), atol=2e-5)
        assert arrows.fillcolor == PALETTE["exact"] and arrows.type == "path"
        dots = next(
            s for s in fig.layout.shapes if s.name == "noisy x̃ = x_t" and s.xref == arrows.xref
        )
        np.testing.assert_allclose(dot_centres(dots.path), p.x_t, **sent)  # x̃ drawn there
    for tr in fig.data:  # equal aspect in every panel
        assert tr.x is not None
    assert fig.layout.yaxis2.scaleanchor == "x2"


def test_at_large_sigma_every_arrow_ends_near_the_mean():
    proc = get_process("vp_linear")
    exact = analysis.exact_denoiser(DIST, proc)
    (p,) = analysis.reconstructions({"exact": exact}, DIST, proc, [0.9999], n=100)
    assert np.abs(p.recon["exact"] - DIST.mean().numpy()).max() < 0.05


def test_arrow_xy_drops_non_finite_arrows():
    start = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    end = np.array([[1.0, 0.0], [np.nan, 1.0], [2.0, np.inf]])
    x, y, sizes = arrow_xy(start, end)
    assert len(x) == 3 and x[0] == 0 and x[1] == 1 and np.isnan(x[2])
    assert list(sizes) == [0, ARROW_HEAD, 0]


def test_exact_error_curve_equals_the_mmse():
    proc = get_process("vp_linear")
    exact = analysis.exact_denoiser(DIST, proc)
    sigmas = analysis.sigma_grid(proc, 12)
    df = analysis.reconstruction_error({"exact": exact}, DIST, proc, sigmas, n=4096, seed=1)
    # Monte Carlo E||D*(x~) - x0||^2 against the exact E tr Cov[x0 | x~] (same points)
    np.testing.assert_allclose(df["exact"], df["mmse"], rtol=0.08)
    # limits: keeping x~/alpha at small sigma, the mean (tr Cov = 2) at large sigma
    assert df["mmse"].iloc[0] == pytest.approx(2 * sigmas[0] ** 2 / df["alpha"].iloc[0] ** 2, 0.1)
    assert df["mmse"].iloc[-1] == pytest.approx(float(torch.trace(DIST.cov())), rel=0.05)
    fig = reconstruction_error_figure(df, {"exact": "exact"})
    tr = next(t for t in fig.data if t.name.startswith("exact"))
    np.testing.assert_array_equal(tr.y, df["mmse"].to_numpy())
    np.testing.assert_array_equal(tr.x, df["sigma"].to_numpy())
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_a_single_sigma_denoiser_is_optimal_only_at_its_own_sigma():
    """The best possible classical DAE at sigma_d is E[x0 | x~] at sigma_d, whatever sigma."""
    proc = get_process("vp_linear")
    sigma_d = 0.3
    t_d = proc.t_from_sigma(torch.tensor(sigma_d, dtype=torch.float64))
    a_d = float(proc.alpha(t_d))

    def dae(x, t):
        return DIST.denoise(x, a_d, sigma_d)

    sigmas = np.array([0.03, 0.1, sigma_d, 0.9])
    df = analysis.reconstruction_error({"dae": dae}, DIST, proc, sigmas, n=4096, seed=2)
    ratio = (df["dae"] / df["mmse"]).to_numpy()
    assert ratio[2] == pytest.approx(1.0, abs=0.08)
    assert ratio[0] > 3 and ratio[1] > 1.5 and ratio[3] > 1.2
    fig = reconstruction_error_figure(df, {"dae": "dae"}, marks={"dae": sigma_d})
    mark = next(t for t in fig.data if t.name == "dae: its σ")
    assert list(mark.x) == [sigma_d, sigma_d]
    assert mark.line.color == PALETTE["dae"]


def test_sigma_options_cover_the_process_range():
    for key in ("vp_linear", "ve", "sub_vp", "vp_cosine"):
        proc = get_process(key)
        opts = sigma_stops(proc)
        lo, hi = analysis.sigma_bounds(proc)
        assert opts[0] == lo and opts[-1] == hi and opts == sorted(set(opts))
        assert len(opts) >= 10


# ----------------------------------------------------------------------------- issue 10, part 3
def test_legend_names_carry_no_registry_keys():
    from scoreviz.distributions import DISTRIBUTIONS
    from scoreviz.figures.dae import dae_figure
    from scoreviz.pipelines import DaeSettings, dae_view, short_label
    from scoreviz.problem import Problem
    from scoreviz.text import readable
    from tests.apptest_utils import tiny_result

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    assert short_label("DAE σ=0.5 · eight_gaussians · vp_linear", problem) == "DAE σ=0.5"
    assert short_label("default · Eight Gaussians (ring) · vp_linear · seed 0", problem) == (
        "default"
    )
    assert short_label("tiny", problem) == "tiny"
    assert short_label("score (eps) · eight_gaussians · vp_linear · 8583", problem) == (
        "score (eps)"
    )
    dae = tiny_result(kind="dae")
    problem = problem.with_models({"DAE σ=0.5 · eight_gaussians · vp_linear": dae})
    fig = dae_figure(dae_view(problem, DaeSettings((0.1, 0.5), n=20)))
    legend = [*fig.data, *fig.layout.shapes]  # traces and the arrow and dot shapes
    names = {readable(it.name) for it in legend if it.name}  # legend text arrives escaped
    assert "x̃ → DAE σ=0.5" in names
    for key in (*DISTRIBUTIONS, "vp_linear", "ve", "sub_vp", "vp_cosine"):
        assert not any(key in n for n in names), (key, names)


def test_exact_arrows_are_thin_and_drawn_over_the_learned_ones():
    proc = get_process("vp_linear")
    exact = analysis.exact_denoiser(DIST, proc)
    panels = analysis.reconstructions(
        {"net": exact, "exact": exact}, DIST, proc, [0.2], n=30
    )  # the same denoiser twice: they agree everywhere
    fig = dae_reconstruction_figure(panels, {"net": "learned", "exact": "exact"})
    arrows = [s for s in fig.layout.shapes if s.name and s.name.startswith("x̃ →")]
    assert [s.name for s in arrows] == ["x̃ → net", "x̃ → exact"]  # exact last: on top
    net, ex = arrows
    assert net.opacity < 1 and net.fillcolor != ex.fillcolor
    shaft = [polygons_of(s.path, CORNERS) for s in (net, ex)]
    width = [np.linalg.norm(a[:, 0] - a[:, 6], axis=1) for a in shaft]
    assert np.median(width[1]) < 0.5 * np.median(width[0])  # a thin line inside a thick one


def test_arrows_leaving_the_panel_are_cut_at_its_frame_and_the_panel_says_why():
    proc = get_process("vp_linear")
    sigma = sigma_stops(proc)[-1]  # t = 1: alpha ~ 0

    def blown_up(x, t):  # what (x + sigma^2 s)/alpha does with a small score error at alpha ~ 0
        return x * 50

    panels = analysis.reconstructions(
        {"net": blown_up, "exact": analysis.exact_denoiser(DIST, proc)}, DIST, proc, [sigma], n=40
    )
    p = panels[0]
    assert p.alpha < 0.2
    fig = dae_reconstruction_figure(panels, {"net": "learned", "exact": "exact"})
    r = fig.layout.xaxis.range[1]
    arrows = _arrow_shape(fig, "net")
    tails, d_drawn = polygon_vectors(arrows.path)
    heads = tails + d_drawn
    assert np.abs(heads).max() <= r + 1e-9  # every drawn arrow ends inside the panel
    finite = np.isfinite(p.recon["net"]).all(1)
    assert len(tails) == finite.sum()
    d_true = (p.recon["net"] - p.x_t)[finite]
    cos = (d_drawn * d_true).sum(1) / (
        np.linalg.norm(d_drawn, axis=1) * np.linalg.norm(d_true, axis=1) + 1e-12
    )
    moving = np.linalg.norm(d_drawn, axis=1) > 1e-6
    assert (cos[moving] > 0.999).all()  # cut, not turned
    clipped = fig.layout.meta["clipped"][0]
    assert clipped > 0
    note = " ".join(a.text for a in fig.layout.annotations)
    assert "α = " in note and f"{clipped} arrows cut at the frame" in note
