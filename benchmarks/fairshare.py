"""A fair share of the server (issue 26, items 2-4), measured, printed, never asserted.

    .venv/bin/python benchmarks/fairshare.py [--repeats 3] [--only cancel dae dae-before costs]

1. cancel: two closed tabs at the issue's most expensive Sampling row (predictor-corrector,
   500 steps x 10 correctors x 2,000 particles on the word; in the app it is now refused by the
   row budget, here it runs to measure the cancellation) hold both compute slots; a third
   student's page waits for one. Seconds from the tabs closing to the third page's slot (one
   sampler step), and how far the tabs' rows got.
2. dae: 8 students press "Train the DAE" at once (`TrainingJob`s as `training_runner.
   train_and_wait` makes them): with the same settings (one run, the others follow it) and with
   8 different seeds (2 training slots): seconds until each student has a model; "dae-before":
   the same 8 presses trained inline and at once, as the button did before.
3. costs: `costs.sampling_seconds` against the measured seconds of sampler runs (exact score).

Run it on an idle machine; on a busy one every time grows, the ratios less so.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

from scoreviz import cancel, costs, samplers
from scoreviz.distributions import get_distribution
from scoreviz.jobs import SharedModels, Slots
from scoreviz.jobs import training_job as tr
from scoreviz.pipelines import dae_train_config
from scoreviz.problem import Problem
from scoreviz.processes import get_process
from scoreviz.score import exact_score_fn

PC_MAX = samplers.config_from_knobs("pc", 500, 2000, 60, 1, n_corrector=10)


def _spread(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.2f} ± {sd:.2f} (min {min(xs):.2f}, max {max(xs):.2f})"


def _closed_tabs_once(dist, process, seed: int, run_for: float) -> tuple[float, list[float]]:
    """One run: (seconds from the tabs closing to the third page's slot, fraction of the row
    each tab computed)."""
    slots, gone, admitted = Slots(2), threading.Event(), threading.Event()
    steps = {"tab1": 0, "tab2": 0}

    def tab(name: str, seed: int) -> None:
        exact = exact_score_fn(dist, process)

        def counted(x, t):
            steps[name] += 1
            return exact(x, t)

        config = samplers.config_from_knobs("pc", 500, 2000, 60, seed, n_corrector=10)
        with slots.slot(name, owner=name, kind="compute"), cancel.scope(gone.is_set):
            try:
                samplers.sample(counted, process, config)
            except cancel.Cancelled:
                pass

    def page() -> None:
        slots.release(slots.acquire("page", owner="student C", kind="compute", poll=0.05))
        admitted.set()

    tabs = [threading.Thread(target=tab, args=(name, seed + i)) for i, name in enumerate(steps)]
    for th in tabs:
        th.start()
    while not all(steps.values()):
        time.sleep(0.01)
    threading.Thread(target=page).start()
    time.sleep(run_for)  # the tabs compute a while, then close
    closed = time.perf_counter()
    gone.set()
    admitted.wait(120)
    latency = time.perf_counter() - closed
    for th in tabs:
        th.join(120)
    return latency, [n / costs.score_evaluations(PC_MAX) for n in steps.values()]


def cancel_latency(repeats: int, run_for: float = 2.0) -> None:
    dist, process = get_distribution("word"), get_process("vp_linear")
    latencies, fractions = [], []
    for r in range(repeats):
        latency, done = _closed_tabs_once(dist, process, 10 * r, run_for)
        latencies.append(latency)
        fractions += done
    print("## Closed tabs' expensive rows: cancelled at the next sampler step\n")
    print(f"- seconds from the tabs closing to the third page's slot: {_spread(latencies)}")
    print(f"- fraction of the row the closed tabs computed ({run_for:.0f} s open): "
          f"{_spread(fractions)}\n")  # fmt: skip


def dae_hall(repeats: int, students: int = 8) -> None:
    problem = Problem.builtin("eight_gaussians", "vp_linear")
    print(f"## {students} students press 'Train the DAE' at once (1,000 steps)\n")
    for same in (True, False):
        finish = []
        for r in range(repeats):
            store = SharedModels(16)
            seeds = [100 * r] * students if same else [100 * r + i for i in range(students)]
            jobs = [
                tr.TrainingJob(dae_train_config(problem, 0.5, 1000, s), name=f"s{i}",
                               store=store, owner=f"student {i}", assess=False)
                for i, s in enumerate(seeds)
            ]  # fmt: skip
            start = time.perf_counter()
            for job in jobs:
                job.start()
            done = {}
            while len(done) < len(jobs):
                for i, job in enumerate(jobs):
                    if job.done and i not in done:
                        done[i] = time.perf_counter() - start
                time.sleep(0.01)
            assert all(j.error is None for j in jobs), [j.error for j in jobs]
            finish += list(done.values())
        what = "same settings (one run, 7 follow it)" if same else "8 different seeds (2 slots)"
        print(f"- {what}: seconds until a student has the model: {_spread(finish)}")
    print()


def dae_inline(repeats: int, students: int = 8) -> None:
    """Before: each student's button trained inline in its own script thread, all at once."""
    from scoreviz import training

    problem = Problem.builtin("eight_gaussians", "vp_linear")
    for same in (True, False):
        finish: list[float] = []
        for r in range(repeats):
            seeds = [100 * r] * students if same else [100 * r + i for i in range(students)]
            start = time.perf_counter()

            def press(seed: int, start=start, finish=finish) -> None:
                training.train(dae_train_config(problem, 0.5, 1000, seed))
                finish.append(time.perf_counter() - start)

            threads = [threading.Thread(target=press, args=(s,)) for s in seeds]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        what = "same settings" if same else "8 different seeds"
        print(f"- before (inline, at once, no slots), {what}: seconds until a student has the "
              f"model: {_spread(finish)}")  # fmt: skip
    print()


def cost_model(repeats: int) -> None:
    process = get_process("vp_linear")
    print("## Sampling cost model against measured (exact score, one core)\n")
    print("| distribution | sampler | steps | correctors | particles | estimate s | measured s |")
    print("|---|---|---|---|---|---|---|")
    cases = [("word", "reverse_sde", 200, 1, 1000), ("word", "pc", 40, 10, 2000),
             ("word", "pf_ode_heun", 200, 1, 2000), ("eight_gaussians", "pc", 500, 10, 2000),
             ("swiss_roll", "reverse_sde", 500, 1, 2000)]  # fmt: skip
    for dk, name, steps, inner, n in cases:
        dist = get_distribution(dk)
        fn, knobs = exact_score_fn(dist, process), {"n_corrector": inner} if name == "pc" else {}
        times = []
        for r in range(repeats):
            config = samplers.config_from_knobs(name, steps, n, 60, r, **knobs)
            t0 = time.perf_counter()
            samplers.sample(fn, process, config)
            times.append(time.perf_counter() - t0)
        est = costs.sampling_seconds(config, components=dist.n_components)
        print(f"| {dk} ({dist.n_components}) | {name} | {steps} | {inner} | {n:,} | {est:.2f} | "
              f"{_spread(times)} |")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["cancel", "dae", "dae-before", "costs"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "cancel" in args.only:
        cancel_latency(args.repeats)
    if "dae" in args.only:
        dae_hall(args.repeats)
    if "dae-before" in args.only:
        dae_inline(args.repeats)
    if "costs" in args.only:
        cost_model(args.repeats)


if __name__ == "__main__":
    main()
