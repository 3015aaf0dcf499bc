"""Measurement: timed batches (`Case`), their calibration and statistics, and the CPU time
the rest of the host took meanwhile (from /proc/stat).
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    alg: str
    lib: str
    op: str
    fn: Callable[[], object]
    batch: int = 0
    samples: list[float] = field(default_factory=list)  # µs per op, one per batch

    def run(self, n: int) -> float:
        fn = self.fn
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return (time.perf_counter_ns() - start) / n / 1000


def calibrate(case: Case, batch_ms: float) -> None:
    case.run(3)  # warm caches (tokensmith's header cache, peers' lazy imports)
    n = 1
    while True:
        per_op = case.run(n)
        if per_op * n >= 5_000 or n >= 1 << 20:
            break
        n *= 2
    case.batch = max(1, round(batch_ms * 1000 / per_op))


def summary(samples: list[float]) -> tuple[float, float, float]:
    if len(samples) < 2:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q2, q1, q3


def spread(cases: dict[tuple[str, str, str], Case]) -> float:
    """The median over cases of (q3 - q1) / median, in percent: how noisy the run was."""
    rel = []
    for case in cases.values():
        if len(case.samples) >= 2:
            med, q1, q3 = summary(case.samples)
            rel.append(100 * (q3 - q1) / med)
    return statistics.median(rel) if rel else 0.0


def paired_ratio(a: Case, b: Case) -> float:
    """Median over rounds of a/b within the same round: robust to drift across the run."""
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


# -- noise -------------------------------------------------------------------------------


def cpu_counters() -> tuple[float, float, float]:
    """(seconds busy, seconds stolen by the hypervisor, seconds in total) over all CPUs."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq
    return busy / hz, steal / hz, (busy + idle + iowait + steal) / hz


def noise_report(start: tuple[float, float, float], own_cpu: float) -> str:
    """How much else ran during the timed part: the first thing to read when numbers move."""
    end = cpu_counters()
    busy, steal, total = (b - a for a, b in zip(start, end, strict=True))
    if total <= 0:
        return "- noise: /proc/stat unavailable"
    others = max(0.0, busy - own_cpu)
    return (
        f"- noise during the timed rounds: other processes used {100 * others / total:.0f}% "
        f"and the hypervisor stole {100 * steal / total:.0f}% of all CPU time "
        f"(this process: {100 * own_cpu / total:.0f}%)"
    )
