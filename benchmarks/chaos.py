"""The chaos suite as a benchmark: every scenario of tests/chaos/ (its `scenario_*` functions) run several
times with random kill points, then a table: scenario, runs, invariants held, time to heal.

"Time to heal" is how long the scenario's last invariant check waited, from the end of the chaos until
EC2, every ipamd and the pods agreed (tests/chaos/invariants.check_settled), median and worst over runs.
A run whose scenario raised counts as invariants not held; its first line is printed below the table.

Run (as root, from the repo): .venv/bin/python benchmarks/chaos.py [--runs 3] [--seed N] [-k WORD]
Everything it makes is `mek-` named and removed; clusters live under a temporary state root.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import random
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.chaos as chaos_package                                   # noqa: E402
from tests.chaos import invariants                                    # noqa: E402
from tests.cluster.conftest import cluster_factory                    # noqa: E402


@dataclass
class Outcome:
    scenario: str
    held: int = 0
    runs: int = 0
    heal_seconds: list[float] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def scenarios(word: str | None) -> dict[str, Callable]:
    """`scenario_*` functions of tests/chaos/test_*.py, by name."""
    found: dict[str, Callable] = {}
    for info in pkgutil.iter_modules(chaos_package.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.chaos.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("scenario_") and fn.__module__ == module.__name__:
                if word is None or word in name:
                    found[name.removeprefix("scenario_")] = fn
    return dict(sorted(found.items()))


class HealTimer:
    """Wraps check_settled wherever scenarios imported it, keeping how long its last call waited."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.original = invariants.check_settled

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.last = time.perf_counter() - start

    def install(self) -> None:
        invariants.check_settled = self
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("tests.chaos.") and \
                    getattr(module, "check_settled", None) is self.original:
                module.check_settled = self                           # type: ignore[attr-defined]


def run_once(fn: Callable, rng: random.Random, timer: HealTimer) -> tuple[bool, float, str]:
    timer.last = None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mek-chaos-") as tmp:
        try:
            with cluster_factory(Path(tmp) / "state") as make:
                fn(make, Path(tmp), rng)
            return True, time.perf_counter() - start, ""
        except BaseException as err:                                  # noqa: BLE001 - reported, not hidden
            if isinstance(err, KeyboardInterrupt):
                raise
            line = traceback.format_exception_only(type(err), err)[-1].strip()
            return False, time.perf_counter() - start, line[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill points (default: random)")
    parser.add_argument("-k", dest="word", default=None, help="only scenarios whose name contains WORD")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    found = scenarios(args.word)
    if not found:
        print("no scenario found", file=sys.stderr)
        return 2
    timer = HealTimer()
    timer.install()
    print(f"chaos: {len(found)} scenarios × {args.runs} runs, seed {seed}", flush=True)
    outcomes = []
    for name, fn in found.items():
        outcome = Outcome(name)
        for run in range(args.runs):
            rng = random.Random(f"{seed}/{name}/{run}")
            ok, wall, failure = run_once(fn, rng, timer)
            outcome.runs += 1
            outcome.wall_seconds.append(wall)
            if ok:
                outcome.held += 1
                if timer.last is not None:
                    outcome.heal_seconds.append(timer.last)
            else:
                outcome.failures.append(f"run {run + 1}: {failure}")
            print(f"  {name} run {run + 1}: {'held' if ok else 'FAILED'} in {wall:.1f} s", flush=True)
        outcomes.append(outcome)
    print()
    print(f"{'scenario':<32} {'runs':>4} {'held':>4} {'heal p50':>9} {'heal max':>9} {'run p50':>8}")
    for o in outcomes:
        heal50 = f"{statistics.median(o.heal_seconds):.1f} s" if o.heal_seconds else "-"
        healmax = f"{max(o.heal_seconds):.1f} s" if o.heal_seconds else "-"
        print(f"{o.scenario:<32} {o.runs:>4} {o.held:>4} {heal50:>9} {healmax:>9} "
              f"{statistics.median(o.wall_seconds):>6.1f} s")
    for o in outcomes:
        for failure in o.failures:
            print(f"{o.scenario}: {failure}")
    return 0 if all(o.held == o.runs for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
