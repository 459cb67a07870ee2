"""The torch thread policy, in one place: one intra-op thread everywhere, OpenMP waits passively.

Applied once, when `scoreviz` is first imported (this module is its first import; app, tests,
benchmarks and notebooks import scoreviz before anything else uses torch). Measured on the
2-core target (default training config):

- Two threads are ~30 % faster on an idle machine (1.3 vs 1.9 ms/step at 128x3, batch 512), but
  as soon as anything else keeps one core busy (another session training, a browser, a test
  run), OpenMP's two-thread barriers make a step 10-50x slower (300 steps: 5-38 s instead of
  0.7 s); the app's small computations likewise (1000 particles x 200 reverse-SDE steps: 0.2 s
  on one thread, 11 s on two under load). One thread per job is robust: two sessions training
  at once use one core each.
- OpenMP threads that spin while they wait (the default) cost the same 10-50x: hence
  OMP_WAIT_POLICY=PASSIVE.

Both are environment defaults, read by OpenMP once, before torch is imported, and inherited by
every thread (a Streamlit session, a training job): `torch.set_num_threads` would only reach the
thread that calls it. A value already in the environment wins (e.g. a many-core machine).
"""

from __future__ import annotations

import os
import sys

THREADS = 1


def apply() -> None:
    """Set the policy: environment defaults (if torch is not loaded yet) and this thread's count."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))
    if "torch" in sys.modules:  # loaded before scoreviz: at least this thread follows the policy
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


apply()
