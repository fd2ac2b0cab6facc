"""What tracing costs: the pipeline's burst with tracing off, on at 100 % and on at 10 %.

Run with ``python -m bench.tracing`` (``--update-docs`` rewrites the "Tracing overhead"
section of docs/benchmarks.md; ``--burst N`` sets the executions per burst, ``--rounds R``
how often each scenario runs). Results go to bench/results/tracing.json. Each burst is
`bench.pipeline`'s max-rate burst (N jobs due at one instant, the five services as
processes, a fresh database and vhost): off, on sampling every trace
(`parentbased_always_on`), on sampling a tenth (`parentbased_traceidratio`, 0.1). With
tracing on the services export over OTLP/HTTP to a receiver on loopback
(`tests/support/fakes/otlp.py`) that decodes every span, in this process: its CPU counts as
the harness's, not the services'.

The machine drifts over a run (PostgreSQL's autovacuum, the previous burst's databases being
dropped, the page cache), by as much as tracing costs: one "off" run before and one after
once differed by 2.7 ms per execution. So the scenarios are interleaved: every round runs
all three, each round in a rotated order (no scenario always first or last), the machine is
let settle before each burst, and the cost is paired: in each round, a scenario's CPU less
that round's "off" run; the figure reported is the median of those differences across
rounds, with their range beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.docs import write_section
from bench.pipeline import Herald, cpu_seconds, github, load, machine_cpu, machine_ms
from tests.support.fakes.otlp import OtlpReceiver

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tracing.json"
SECTION = "## Tracing overhead"

SCENARIOS: dict[str, dict[str, str] | None] = {
    "off": None,
    "on_100": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "on_10": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}
TRACED = ("on_100", "on_10")
# Settled: under a quarter of one core busy over a couple of seconds (the previous burst's
# processes gone, its database dropped); waited for at most a minute.
SETTLED_BUSY = 0.25
MOST_SETTLING_S = 60.0


async def burst(
    jobs: int, github_url: str, log_dir: Path, sampling: dict[str, str] | None
) -> dict[str, Any]:
    with OtlpReceiver() as receiver:
        env = {}
        if sampling is not None:
            env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                **sampling,
            }
        async with Herald(jobs, github_url, log_dir, env=env) as herald:
            before = {name: cpu_seconds(s.process.pid) for name, s in herald.services.items()}
            machine_before = machine_cpu()
            instant = datetime.now(UTC) + timedelta(seconds=2)
            await herald.due(instant, 0)
            rows = await herald.wait_notified(limit=max(120, jobs / 5))
            machine_after = machine_cpu()
            cpu_ms = {
                name: round((cpu_seconds(s.process.pid) - before[name]) * 1000 / jobs, 3)
                for name, s in herald.services.items()
            }
        spans = receiver.spans
    last = max(row["created_at"] for row in rows)
    elapsed = (last - instant).total_seconds()
    return {
        "executions": jobs,
        "statuses": sorted({row["status"] for row in rows}),
        "notified_per_s": round(jobs / elapsed, 1),
        "cpu_ms_per_execution": cpu_ms,
        "services_cpu_ms_per_execution": round(sum(cpu_ms.values()), 3),
        "machine_cpu_ms_per_execution": machine_ms(machine_before, machine_after, jobs),
        "spans_per_execution": round(len(spans) / jobs, 2),
        "traces": len({span.trace_id for span in spans}),
    }


async def settle() -> float:
    """Wait until the machine is nearly idle; return the seconds waited."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(3)
    while loop.time() - started < MOST_SETTLING_S:
        before = machine_cpu()["busy"]
        await asyncio.sleep(2)
        if (machine_cpu()["busy"] - before) / 2 < SETTLED_BUSY:
            break
    return round(loop.time() - started, 1)


def order_of(round_index: int) -> list[str]:
    """The scenarios in this round's order: rotated by one each round."""
    names = list(SCENARIOS)
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario the median and range of its CPU per execution; per traced scenario the
    paired cost (its CPU less the same round's "off" CPU), median and range."""
    cpu = {name: [r[name]["services_cpu_ms_per_execution"] for r in rounds] for name in SCENARIOS}
    paired = {
        name: [
            r[name]["services_cpu_ms_per_execution"] - r["off"]["services_cpu_ms_per_execution"]
            for r in rounds
        ]
        for name in TRACED
    }
    return {
        "services_cpu_ms": {
            name: {
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
            }
            for name, values in cpu.items()
        },
        "cost_ms_per_execution": {
            name: {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
            for name, values in paired.items()
        },
        "throughput_per_s": {
            name: round(statistics.median(r[name]["notified_per_s"] for r in rounds), 1)
            for name in SCENARIOS
        },
        "spans_per_execution": {
            name: round(statistics.median(r[name]["spans_per_execution"] for r in rounds), 2)
            for name in SCENARIOS
        },
    }


def render(results: dict[str, Any]) -> str:
    summary = results["summary"]
    base = summary["services_cpu_ms"]["off"]["median"]
    lines = [
        "| scenario | executions/s (median) | services' CPU ms per execution, median (range) |"
        " cost per execution, median of the rounds (range) | spans per execution |",
        "|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        cpu = summary["services_cpu_ms"][name]
        cost = summary["cost_ms_per_execution"].get(name)
        cost_text = (
            "—"
            if cost is None
            else f"{cost['median']:+.2f} ms ({cost['median'] / base:+.0%}); "
            f"{cost['min']:+.2f} to {cost['max']:+.2f}"
        )
        lines.append(
            f"| {name.replace('_', ' ')} | {summary['throughput_per_s'][name]:,.1f} | "
            f"{cpu['median']:.2f} ({cpu['min']:.2f}–{cpu['max']:.2f}) | {cost_text} | "
            f"{summary['spans_per_execution'][name]:.1f} |"
        )
    table = "\n".join(lines)
    per_round = "\n".join(
        f"| {index + 1} | {' → '.join(order_of(index))} | "
        + " | ".join(f"{r[name]['services_cpu_ms_per_execution']:.2f}" for name in SCENARIOS)
        + f" | {r['load_1m'][0]} → {r['load_1m'][1]} |"
        for index, r in enumerate(results["rounds"])
    )
    header = " | ".join(name.replace("_", " ") for name in SCENARIOS)
    by_service = ", ".join(
        f"{name} {ms:.2f}"
        for name, ms in results["rounds"][-1]["on_100"]["cpu_ms_per_execution"].items()
    )
    notes = results["notes"] + "\n\n" if results["notes"] else ""
    return f"""{SECTION}

`python -m bench.tracing`: `bench.pipeline`'s burst of {results["burst"]} executions (five
processes, scheduled runs, template writer, in-app alerts) with tracing off, on sampling every
trace and on sampling a tenth, in {len(results["rounds"])} rounds; each round runs the three in
a rotated order, after the machine has settled. With tracing on the services export over
OTLP/HTTP to a receiver on loopback. The cost of a scenario is paired: in each round, its
services' CPU per execution less that round's "off" run; the table gives the median of those
differences and their range. PostgreSQL's and RabbitMQ's CPU are not in it (tracing adds no
statement and no message, only a header per message).

{table}

The services' CPU per execution, round by round:

| round | order | {header} | load 1 min |
|---|---|{"---|" * len(SCENARIOS)}---|
{per_round}

Sampling every trace, per service in the last round (ms per execution): {by_service}.

{notes}Measured {results["measured_at"]} on {results["platform"]}, Python {results["python"]}.
"""


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "notes": args.notes,
        "burst": args.burst,
        "rounds": [],
    }
    with tempfile.TemporaryDirectory() as tmp, github() as github_url:
        for index in range(args.rounds):
            record: dict[str, Any] = {"order": order_of(index), "settled_s": {}}
            loads = [load()]
            for name in order_of(index):
                record["settled_s"][name] = await settle()
                run = await burst(
                    args.burst, github_url, Path(tmp) / f"{index}-{name}", SCENARIOS[name]
                )
                record[name] = run
                print(index + 1, name, json.dumps(run), flush=True)
            loads.append(load())
            record["load_1m"] = loads
            results["rounds"].append(record)
    results["summary"] = summarise(results["rounds"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results["summary"], indent=2, default=str))
    if args.update_docs:
        write_section(SECTION, render(results))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing")
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--notes", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
