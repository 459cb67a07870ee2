"""scoreviz: see how diffusion models learn, with exact ground truth beside every learned quantity.

    import scoreviz as sv
    dist = sv.get_distribution("eight_gaussians")
    proc = sv.get_process("vp_linear")
    exact = sv.exact_score_fn(dist, proc)          # ScoreFn: (x_t (N,2), t (N,)) -> (N,2)

Importing does no training or heavy work; it only defines the registries.
"""

from scoreviz import threads  # noqa: F401  (first: its policy must precede torch's import)
from scoreviz.distributions import DISTRIBUTIONS, distribution_labels, get_distribution
from scoreviz.errors import (
    ConfigError,
    DataError,
    ModelFileError,
    ScorevizError,
    TrainingDivergedError,
)
from scoreviz.mixture import GaussianMixture, empirical
from scoreviz.processes import PROCESSES, NoiseProcess, get_process, process_labels
from scoreviz.score import ScoreFn, denoiser_from_score, exact_score_fn, full_t

__all__ = [
    "DISTRIBUTIONS",
    "PROCESSES",
    "ConfigError",
    "DataError",
    "GaussianMixture",
    "ModelFileError",
    "NoiseProcess",
    "ScoreFn",
    "ScorevizError",
    "TrainingDivergedError",
    "denoiser_from_score",
    "distribution_labels",
    "empirical",
    "exact_score_fn",
    "full_t",
    "get_distribution",
    "get_process",
    "process_labels",
]
