"""What several pages' pipelines share: t as a settings value, exact samples of the data."""

from __future__ import annotations

import numpy as np
import torch

from scoreviz.problem import Problem

EXACT = "exact E[x₀|x̃]"  # display name of the exact denoiser (DAE view)


def tkey(t: float) -> float:
    """A time as a settings value: rounded to 4 decimals, so slider positions are stable keys."""
    return round(float(t), 4)


def data_samples(problem: Problem, n: int, seed: int) -> np.ndarray:
    """n clean samples x_0 (n, 2) float32 for `seed`."""
    gen = torch.Generator().manual_seed(int(seed))
    return problem.dist.sample(n, generator=gen).numpy()
