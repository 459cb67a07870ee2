"""Warm the server before a lecture: train every model its one-click paths need, ahead of time.

    SCOREVIZ_MODEL_STORE=models .venv/bin/python scripts/warm.py            # scenes + defaults
    SCOREVIZ_MODEL_STORE=models .venv/bin/python scripts/warm.py --processes vp_linear ve
    SCOREVIZ_MODEL_STORE=models MALLOC_ARENA_MAX=2 .venv/bin/python -m streamlit run app.py

Trains, into the on-disk model store (`scoreviz.model_store`, the directory in
$SCOREVIZ_MODEL_STORE), every scene's models (assets/scenes) and the default model of every
built-in distribution for each process given — exactly the configurations Home's button, the
pages' "Train for this data" and the scenes ask for, so their model ids match. A server started
with the same $SCOREVIZ_MODEL_STORE then loads them instead of training: the first student who
presses a button waits a second, not ten. Models already in the store are skipped (their lock is
taken, so a running server and this script never train one twice). Each model is also checked
against the exact answer (`quality.assess_result`), as the app does after training. Run it as
the servers' user and with their $SCOREVIZ_STORE_SECRET (or, like them, without one: then the
store's own .secret is used): entries are MACed with it, and a server trusts no other. A scene
file that cannot be used is named and skipped, as the app's Scenes menu disables it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoreviz import model_store  # noqa: E402  (sets the torch thread policy first)
from scoreviz.distributions import distribution_labels  # noqa: E402
from scoreviz.training import TrainConfig  # noqa: E402


def plan(
    processes: list[str], scenes: bool = True, defaults: bool = True, log=print
) -> list[TrainConfig]:
    """The configs to have ready: each scene's trainings, then the default model of every
    built-in distribution for each process (seed 0, the sidebar's default); no duplicates.

    Scene files are checked one by one (`scoreviz.scenes`): a broken one is named (`log`) and
    skipped, as the app's Scenes menu disables it. (A setting its page refuses is the app's
    check alone, which needs Streamlit: such a scene's trainings, valid ones, are still warmed.)"""
    from scoreviz.scenes import broken_scenes, load_scenes

    configs: list[TrainConfig] = []
    if scenes:
        for message in broken_scenes().values():
            log(f"{message} This scene is disabled (fix the file; the others are warmed).")
        configs += [c for s in load_scenes().values() for c in s.train]
    if defaults:
        configs += [
            TrainConfig(distribution=d, process=p) for p in processes for d in distribution_labels()
        ]
    return list({c.model_id: c for c in configs}.values())


def warm(configs: list[TrainConfig], store: model_store.ModelStore, log=print) -> list[dict]:
    """Train (or find) each config in `store`; one row per config: id, what, seconds, loaded."""
    from scoreviz.quality import assess_result
    from scoreviz.scenes import scene_data
    from scoreviz.training import train

    def create_for(config):
        def create():
            dist = scene_data(config.distribution)  # a scene's drawn or typed data, else None
            result = train(config, dist=dist)
            result.quality = assess_result(result, dist)
            return result

        return create

    rows = []
    for i, config in enumerate(configs, 1):
        t0 = time.perf_counter()
        result, loaded = store.get_or_create(config.model_id, create_for(config))
        row = dict(
            model_id=config.model_id,
            what=f"{config.model.kind} · {config.distribution} · {config.process}",
            seconds=time.perf_counter() - t0,
            loaded=loaded,
            verdict=getattr(getattr(result, "quality", None), "verdict", ""),
        )
        rows.append(row)
        state = "in the store" if loaded else f"trained in {row['seconds']:.1f} s"
        log(f"[{i}/{len(configs)}] {row['model_id']} {row['what']}: {state} {row['verdict']}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--processes", nargs="+", default=["vp_linear"])
    p.add_argument("--no-scenes", action="store_true", help="skip the scenes' models")
    p.add_argument("--no-defaults", action="store_true", help="skip the built-ins' defaults")
    args = p.parse_args(argv)
    store = model_store.from_env()
    if store is None:
        print(f"Set {model_store.ENV_VAR} to the store's directory (the server's too).")
        return 2
    configs = plan(args.processes, not args.no_scenes, not args.no_defaults)
    print(f"{len(configs)} models into {store.root}")
    warm(configs, store)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
