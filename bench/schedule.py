"""Benchmark next-run computation against croniter and cronsim.

Run with ``python -m bench.schedule`` (add ``--update-docs`` to rewrite the
"Schedule engine" section of docs/benchmarks.md).  Results go to
bench/results/schedule.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from cronsim import CronSim, CronSimError

from bench.docs import DOCS, write_section
from shared.scheduling import next_runs, preset_next_runs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "schedule.json"
ZONE_NAME = "America/New_York"
ZONE = ZoneInfo(ZONE_NAME)
SECTION = "## Schedule engine"
# (label, cron expression, preset config or None)
CASES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("dense */5", "*/5 * * * *", None),
    ("sparse weekdays", "0 9 * * MON-FRI", None),
    ("sparse leap day", "0 0 29 2 *", None),
    ("daily preset", "0 9 * * *", {"hour": 9, "minute": 0, "timezone": ZONE_NAME}),
    ("daily macro", "@daily", None),
    ("last day", "0 9 L * *", None),
    ("last weekday", "0 9 LW * *", None),
    ("nearest weekday", "0 9 15W * *", None),
    ("last Friday", "0 9 * * 5L", None),
    ("second Monday", "0 9 * * 1#2", None),
    # The second Sunday of March is New York's spring-forward day: 02:30 is in the gap.
    ("DST-day gap", "30 2 * 3 0#2", None),
)
PER_CALL = (1, 100)
# Starting points spread over two years, DST days included, shared by every library.
STARTS = tuple(
    datetime(2025, 1, 1, 0, 0, 17, tzinfo=UTC) + timedelta(hours=263 * i) for i in range(64)
)
LOCAL_STARTS = tuple(start.astimezone(ZONE) for start in STARTS)
ROUND_SECONDS = 0.25
ROUNDS = 3

Runner = Callable[[int], int]
# A library that refuses an expression (cronsim has no W and no macros) gets no figure.
REFUSALS = (CronSimError, CroniterError)


def _herald(expression: str, preset: dict[str, Any] | None, per_call: int) -> Runner:
    if preset is not None:

        def run_preset(index: int) -> int:
            return len(preset_next_runs("DAILY", preset, STARTS[index], per_call))

        return run_preset

    def run(index: int) -> int:
        return len(next_runs(expression, ZONE_NAME, STARTS[index], per_call))

    return run


def _cronsim(expression: str, per_call: int) -> Runner:
    def run(index: int) -> int:
        iterator = CronSim(expression, LOCAL_STARTS[index])
        for _ in range(per_call):
            next(iterator)
        return per_call

    return run


def _croniter(expression: str, per_call: int) -> Runner:
    def run(index: int) -> int:
        iterator = croniter(expression, LOCAL_STARTS[index])
        for _ in range(per_call):
            iterator.get_next(datetime)
        return per_call

    return run


def _rate(runner: Runner) -> float | None:
    """Return the best results-per-second over a few timed rounds; None if refused."""
    try:
        runner(0)
    except REFUSALS:
        return None
    best = 0.0
    for _ in range(ROUNDS):
        produced = 0
        calls = 0
        began = time.perf_counter()
        deadline = began + ROUND_SECONDS
        while True:
            produced += runner(calls % len(STARTS))
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, produced / (now - began))
    return best


def measure() -> list[dict[str, Any]]:
    """Time every case and library; return one row per case and results-per-call."""
    rows = []
    for label, expression, preset in CASES:
        for per_call in PER_CALL:
            herald = _rate(_herald(expression, preset, per_call))
            assert herald is not None
            cronsim = _rate(_cronsim(expression, per_call))
            croniter_rate = _rate(_croniter(expression, per_call))
            ratio = round(herald / cronsim, 2) if cronsim else None
            rows.append(
                {
                    "case": label,
                    "expression": expression,
                    "preset": preset is not None,
                    "timezone": ZONE_NAME,
                    "results_per_call": per_call,
                    "herald_per_s": round(herald),
                    "cronsim_per_s": _rounded(cronsim),
                    "croniter_per_s": _rounded(croniter_rate),
                    "herald_vs_cronsim": ratio,
                }
            )
            print(
                f"{label:<16} x{per_call:<3} herald {herald:>10,.0f}/s  "
                f"cronsim {_shown(cronsim):>9}/s  croniter {_shown(croniter_rate):>9}/s  "
                f"herald/cronsim {_shown(ratio, '.2f'):>5}",
                flush=True,
            )
    return rows


def _rounded(rate: float | None) -> int | None:
    return None if rate is None else round(rate)


def _shown(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    """Render the rows as a Markdown table."""
    lines = [
        "| case | expression | results/call | herald results/s | cronsim results/s "
        "| croniter results/s | herald / cronsim |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        expression = row["expression"] + (" (DAILY preset)" if row["preset"] else "")
        ratio = row["herald_vs_cronsim"]
        lines.append(
            f"| {row['case']} | `{expression}` | {row['results_per_call']} "
            f"| {row['herald_per_s']:,} | {_shown(row['cronsim_per_s'])} "
            f"| {_shown(row['croniter_per_s'])} | {_shown(ratio, '.2f')}{'x' if ratio else ''} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Check the two published targets."""
    daily = [
        row for row in rows if row["case"] in ("daily preset", "daily macro", "sparse weekdays")
    ]
    return {
        "daily_at_least_50000_per_s": all(row["herald_per_s"] >= 50_000 for row in daily),
        "never_slower_than_cronsim_by_1_5x": all(
            row["herald_vs_cronsim"] >= 1 / 1.5
            for row in rows
            if row["herald_vs_cronsim"] is not None
        ),
    }


def _machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
    }


def update_docs(rows: list[dict[str, Any]], when: str) -> None:
    """Replace (or append) the schedule engine section of docs/benchmarks.md."""
    machine = _machine()
    met = targets(rows)
    section = "\n".join(
        [
            SECTION,
            "",
            "Next-run computations per second, herald beside croniter and cronsim in the same",
            f"process and the same zone ({ZONE_NAME}); results/s = results produced / elapsed.",
            "Each call starts from one of 64 instants spread over 2025-2026 (DST days included).",
            "croniter and cronsim build a new iterator per call; herald caches parsed expressions.",
            "n/a: the library refuses the expression (cronsim has no `W` and no macros,",
            "croniter no `LW` and no `nL`).",
            "",
            "Reproduce with `python -m bench.schedule --update-docs`",
            "(raw figures: `bench/results/schedule.json`).",
            "",
            table(rows),
            "",
            f"Measured {when} on {machine['platform']}, Python {machine['python']}.",
            "",
            "Targets: at least 50,000 results/s for daily-style jobs: "
            + ("met" if met["daily_at_least_50000_per_s"] else "**missed**")
            + "; no expression cronsim supports more than 1.5x slower than cronsim: "
            + ("met" if met["never_slower_than_cronsim_by_1_5x"] else "**missed**")
            + ".",
            "",
        ]
    )
    write_section(SECTION, section)


def main() -> None:
    """Run the benchmark, write JSON results and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--update-docs", action="store_true", help="rewrite docs section")
    options = parser.parse_args()
    when = datetime.now(UTC).replace(microsecond=0).isoformat()
    began = time.perf_counter()
    rows = measure()
    report = {
        "benchmark": "schedule",
        "timestamp": when,
        "machine": _machine(),
        "python": sys.version.split()[0],
        "timezone": ZONE_NAME,
        "cases": rows,
        "targets": targets(rows),
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\ntargets: {report['targets']}  (elapsed {report['elapsed_s']} s)")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if options.update_docs:
        update_docs(rows, when)
        print(f"updated {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
