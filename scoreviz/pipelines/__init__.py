"""View pipelines without Streamlit, one module per page: a Problem and a view's settings in, a
frozen dataclass of arrays out.

    pipelines/forward.py      Data & forward     (views/forward.py,     figures/forward.py)
    pipelines/score_field.py  Score field        (views/score_field.py, figures/fields.py)
    pipelines/dae.py          DAE reconstructions (views/dae.py,        figures/dae.py)
    pipelines/loss.py         Loss vs t          (views/loss.py,        figures/loss.py)
    pipelines/sampling.py     Sampling           (views/sampling.py,    figures/sampling.py)
    pipelines/steps.py        Sampling's quality vs number of steps     (figures/steps.py)
    pipelines/likelihood.py   Likelihood (PF-ODE) (views/likelihood.py, figures/likelihood.py)
    pipelines/guidance.py     Guidance           (views/guidance.py,    figures/guidance.py)
    pipelines/common.py       t as a settings value, exact samples of the data

The app (through one cached wrapper per piece in `scoreviz.ui.cache`), the benchmark and a
notebook all call these, so they draw the same figure from the same numbers:

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    view = sampling_view(problem, SamplingSettings(SamplerConfig(), rows=("exact",)))
    view.rows[0].frames.xs   # (F, n, 2) particles per frame; .report: metrics of .final (N, 2)
    figures.sampling.sampling_figure(view)

The decisions a page used to make live here too: which score a row samples with (learned, exact,
or the memorising optimum of the model's training points), how a classical DAE is configured
(`dae_train_config`). An assembler whose parts are cached separately (`forward_view`,
`loss_view`, `sampling_view`) takes those parts as keyword arguments: the app passes its cached
ones, everyone else gets these plain functions. Every name is importable from this package too
(`from scoreviz.pipelines import sampling_view`).
"""

from __future__ import annotations

from scoreviz.pipelines.common import (
    EXACT,
    data_samples,
    tkey,
)
from scoreviz.pipelines.dae import (
    DaeErrorView,
    DaeSettings,
    DaeView,
    dae_error_points,
    dae_error_view,
    dae_sigmas,
    dae_train_config,
    dae_view,
    denoiser_kinds,
    denoiser_labels,
    short_label,
    train_dae,
)
from scoreviz.pipelines.forward import (
    Density,
    ForwardAnimation,
    ForwardSettings,
    ForwardView,
    density_at,
    forward_animation_view,
    forward_view,
    noised,
    prior_view,
)
from scoreviz.pipelines.guidance import (
    GUIDANCE_SAMPLERS,
    W_STOPS,
    GuidanceCurve,
    GuidanceSettings,
    GuidanceView,
    TiltedDensity,
    class_shares,
    conditional_model,
    guidance_curve,
    guidance_view,
    guided_exact,
    guided_learned,
    tilted_density,
    tilted_samples,
)
from scoreviz.pipelines.likelihood import (
    LikelihoodLearned,
    LikelihoodSettings,
    LikelihoodTruth,
    LikelihoodView,
    entropy_estimate,
    likelihood_learned,
    likelihood_truth,
    likelihood_view,
)
from scoreviz.pipelines.loss import (
    LossSettings,
    LossView,
    loss_bins,
    loss_floors,
    loss_view,
    mean_loss_floor,
    weighting_floors,
    with_excess,
)
from scoreviz.pipelines.sampling import (
    ROWS,
    SamplingRow,
    SamplingSettings,
    SamplingView,
    StraightnessView,
    frame_steps,
    row_label,
    row_problem,
    row_score,
    sampling_row,
    sampling_view,
    sampling_view_row,
    straightness_view,
)
from scoreviz.pipelines.score_field import (
    RAW_ARROW_FILL,
    ScoreFieldView,
    VelocityFieldView,
    raw_arrow_scale,
    score_field_view,
    velocity_field_view,
)
from scoreviz.pipelines.steps import (
    STEP_COUNTS,
    StepsCurve,
    StepsSettings,
    StepsView,
    steps_curve,
    steps_view,
    w2_floor,
)

__all__ = [
    "GUIDANCE_SAMPLERS",
    "W_STOPS",
    "GuidanceCurve",
    "GuidanceSettings",
    "GuidanceView",
    "TiltedDensity",
    "class_shares",
    "conditional_model",
    "guidance_curve",
    "guidance_view",
    "guided_exact",
    "guided_learned",
    "tilted_density",
    "tilted_samples",
    "DaeErrorView",
    "DaeSettings",
    "DaeView",
    "Density",
    "EXACT",
    "ForwardAnimation",
    "ForwardSettings",
    "ForwardView",
    "LikelihoodLearned",
    "LikelihoodSettings",
    "LikelihoodTruth",
    "LikelihoodView",
    "LossSettings",
    "LossView",
    "RAW_ARROW_FILL",
    "ROWS",
    "STEP_COUNTS",
    "SamplingRow",
    "SamplingSettings",
    "SamplingView",
    "ScoreFieldView",
    "StraightnessView",
    "VelocityFieldView",
    "StepsCurve",
    "StepsSettings",
    "StepsView",
    "dae_error_points",
    "dae_error_view",
    "dae_sigmas",
    "dae_train_config",
    "dae_view",
    "data_samples",
    "denoiser_kinds",
    "denoiser_labels",
    "density_at",
    "entropy_estimate",
    "forward_animation_view",
    "forward_view",
    "frame_steps",
    "likelihood_learned",
    "likelihood_truth",
    "likelihood_view",
    "loss_bins",
    "loss_floors",
    "loss_view",
    "mean_loss_floor",
    "noised",
    "prior_view",
    "raw_arrow_scale",
    "row_label",
    "row_problem",
    "row_score",
    "sampling_row",
    "sampling_view",
    "sampling_view_row",
    "score_field_view",
    "short_label",
    "steps_curve",
    "steps_view",
    "straightness_view",
    "tkey",
    "train_dae",
    "velocity_field_view",
    "w2_floor",
    "weighting_floors",
    "with_excess",
]
