"""The problem a view shows: data (a key and its mixture), a noise process, and the models.

Every view pipeline (`scoreviz.pipelines`) takes a `Problem` and its settings. A Problem is
hashable and compared by its keys alone, (distribution key, process key, model names and keys),
so it is a cache key as it stands: the mixture and the trained models ride along unhashed. The
keys must therefore identify them: a registry name or "upload:<sha>" for the data, `model_key`
(model id + the steps it really ran, + the weights' digest for an imported file) for a model.

    problem = Problem.builtin("eight_gaussians", "vp_linear").with_model("mine", result)
    problem.process, problem.model   # NoiseProcess, the TrainResult (or None)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Any

from scoreviz.distributions import get_distribution
from scoreviz.identity import content_digest
from scoreviz.mixture import GaussianMixture
from scoreviz.processes import NoiseProcess, get_process


def model_key(result) -> str | None:
    """Cache key of a TrainResult: its model id plus how many steps it really ran (Stop), and
    for weights from an imported file their content digest: the id names settings only, and the
    server-wide caches of views must not hand a classmate with the same settings the views of
    a doctored file (nor the other way round). Memoised per result (~1-4 ms each)."""
    if result is None:
        return None
    key = f"{result.model_id}:{len(result.history)}"
    if getattr(result, "from_file", False):
        digest = _FILE_DIGESTS.get(result)
        if digest is None:
            digest = _FILE_DIGESTS[result] = content_digest(result)
        key += f":{digest}"
    return key


_FILE_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class ModelRef:
    """A trained model (a training.TrainResult) under its display name, known by its key."""

    name: str
    key: str
    result: Any = field(repr=False)

    @classmethod
    def of(cls, name: str, result) -> ModelRef:
        return cls(name, model_key(result), result)


@dataclass(frozen=True, eq=False)
class Problem:
    """Distribution (key + mixture), process key, and 0 or more models (the first one is "the"
    model; the DAE view compares several). Equal and hashed by `key` only."""

    dist_key: str
    dist: GaussianMixture = field(repr=False)
    process_key: str
    models: tuple[ModelRef, ...] = ()

    @classmethod
    def builtin(cls, dist_key: str, process_key: str) -> Problem:
        """A built-in distribution by registry name, with no model."""
        return cls(dist_key, get_distribution(dist_key), process_key)

    @property
    def key(self) -> tuple:
        """What identifies the problem: the data, process and model keys (with their names)."""
        return (self.dist_key, self.process_key, tuple((m.name, m.key) for m in self.models))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self.key == other.key

    @property
    def process(self) -> NoiseProcess:
        return get_process(self.process_key)

    @property
    def model(self):
        """The first model's TrainResult, or None."""
        return self.models[0].result if self.models else None

    @property
    def train_points(self):
        """The first model's fixed training set as (N, 2) numpy, or None (infinite data)."""
        pts = None if self.model is None else self.model.train_points
        return None if pts is None else pts.numpy()

    def with_model(self, name: str, result) -> Problem:
        """This problem with one model (None: without any)."""
        return replace(self, models=() if result is None else (ModelRef.of(name, result),))

    def with_models(self, models: dict[str, Any]) -> Problem:
        """This problem with the name -> TrainResult models (in that order)."""
        return replace(self, models=tuple(ModelRef.of(n, r) for n, r in models.items()))

    def exact(self) -> Problem:
        """The same data and process without models (what only the exact answer depends on)."""
        return replace(self, models=())
