"""Couplings of flow matching (`scoreviz.couplings`): the OT pairing is an exact assignment (a
brute-force search over every permutation agrees), keeps the noises themselves (a permutation),
and shortens the pairs; the independent coupling leaves the draw alone."""

import itertools

import pytest
import torch

from scoreviz.couplings import COUPLINGS, ot_permutation, pair
from scoreviz.errors import ConfigError

F64 = torch.float64


def draw(n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=gen, dtype=F64) + 1.5, torch.randn(n, 2, generator=gen)


def cost(x0, eps):
    return float(((x0 - eps.double()) ** 2).sum())


@pytest.mark.parametrize("seed", range(4))
def test_ot_permutation_is_the_brute_force_optimum(seed):
    x0, eps = draw(6, seed)
    best = min(cost(x0, eps[list(p)]) for p in itertools.permutations(range(6)))
    assert cost(x0, eps[ot_permutation(x0, eps)]) == pytest.approx(best, rel=1e-9)


def test_ot_pairing_permutes_within_blocks_and_shortens_the_pairs():
    x0, eps = draw(1000, 7)
    paired = pair(x0, eps, "ot", block=256)
    for i in range(0, 1000, 256):  # the same noises in each block, in another order
        a = sorted(map(tuple, eps[i : i + 256].tolist()))
        assert a == sorted(map(tuple, paired[i : i + 256].tolist()))
    assert cost(x0, paired) < 0.6 * cost(x0, eps)
    assert pair(x0, eps, "independent") is eps


def test_unknown_coupling_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="'independent'.*'ot'"):
        pair(*draw(4, 0), "sinkhorn")
    assert list(COUPLINGS) == ["independent", "ot"]
