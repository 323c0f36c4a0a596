"""Time to compute max pods for every known instance type (expect milliseconds).

Run: .venv/bin/python benchmarks/maxpods.py
"""

from __future__ import annotations

import time

from minieks.aws import instance_types
from minieks.aws.max_pods import MaxPodsError, MaxPodsOptions, calculate


def main() -> None:
    start = time.perf_counter()
    catalog = instance_types.catalog()
    load_ms = (time.perf_counter() - start) * 1000
    for label, opts in [("secondary-ip", MaxPodsOptions()),
                        ("prefix-delegation", MaxPodsOptions(prefix_delegation=True))]:
        best = float("inf")
        for _ in range(20):
            start = time.perf_counter()
            done = 0
            for t in catalog.values():
                try:
                    calculate(t, opts)
                    done += 1
                except MaxPodsError:
                    pass
            best = min(best, time.perf_counter() - start)
        print(f"{label:18s} {done:5d} types in {best * 1000:7.2f} ms (best of 20), "
              f"{best / done * 1e6:.1f} µs per type")
    print(f"table load (first call) {load_ms:.2f} ms for {len(catalog)} types")


if __name__ == "__main__":
    main()
