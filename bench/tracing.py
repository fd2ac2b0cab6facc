"""What tracing costs: the pipeline's burst with tracing off, on at 100 % and on at 10 %.

Run with ``python -m bench.tracing`` (``--update-docs`` rewrites the "Tracing overhead"
section of docs/benchmarks.md; ``--burst N`` sets the executions per scenario). Results go to
bench/results/tracing.json. In one run, each scenario is `bench.pipeline`'s max-rate burst (N
jobs due at one instant, the five services as processes, a fresh database and vhost): off,
on sampling every trace (`parentbased_always_on`), on sampling a tenth
(`parentbased_traceidratio`, 0.1), then off again, so the two "off" figures bound the run's
noise. With tracing on the services export over OTLP/HTTP to a receiver on loopback
(`tests/support/fakes/otlp.py`) that decodes every span, in this process: its CPU counts as
the harness's, not the services'.

Cost per execution = the five services' CPU per execution with tracing on, less the mean of
the two "off" runs.
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
    "off_again": None,
}


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


def render(results: dict[str, Any]) -> str:
    runs = results["runs"]
    base = results["off_mean_services_cpu_ms"]
    lines = [
        "| scenario | executions/s | services' CPU ms per execution | cost per execution |"
        " spans per execution | traces | load 1 min |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        run = runs[name]
        cost = results["cost_ms_per_execution"].get(name)
        cost_text = "—" if cost is None else f"{cost:+.2f} ms ({cost / base:+.0%})"
        before, after = results[name + "_load_1m"]
        lines.append(
            f"| {name.replace('_', ' ')} | {run['notified_per_s']:,.1f} | "
            f"{run['services_cpu_ms_per_execution']:.2f} | {cost_text} | "
            f"{run['spans_per_execution']:.1f} | {run['traces']} | {before} → {after} |"
        )
    table = "\n".join(lines)
    by_service = ", ".join(
        f"{name} {ms:.2f}" for name, ms in runs["on_100"]["cpu_ms_per_execution"].items()
    )
    notes = results["notes"] + "\n\n" if results["notes"] else ""
    return f"""{SECTION}

`python -m bench.tracing`: `bench.pipeline`'s burst of {results["burst"]} executions (five
processes, scheduled runs, template writer, in-app alerts), run four times in one go: tracing
off, on sampling every trace, on sampling a tenth, off again. With tracing on the services
export over OTLP/HTTP to a receiver on loopback. The cost is the services' CPU per execution
above the mean of the two "off" runs ({base:.2f} ms); PostgreSQL's and RabbitMQ's are not in it
(tracing adds no statement and no message, only a header per message).

{table}

Sampling every trace, per service (ms per execution): {by_service}.

{notes}Measured {results["measured_at"]} on {results["platform"]}, Python {results["python"]}.
"""


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "notes": args.notes,
        "burst": args.burst,
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp, github() as github_url:
        for name, sampling in SCENARIOS.items():
            before = load()
            run = await burst(args.burst, github_url, Path(tmp) / name, sampling)
            results[name + "_load_1m"] = [before, load()]
            results["runs"][name] = run
            print(name, json.dumps(run), flush=True)
    runs = results["runs"]
    base = statistics.mean(
        runs[name]["services_cpu_ms_per_execution"] for name in ("off", "off_again")
    )
    results["off_mean_services_cpu_ms"] = round(base, 3)
    results["cost_ms_per_execution"] = {
        name: round(runs[name]["services_cpu_ms_per_execution"] - base, 3)
        for name in ("on_100", "on_10")
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))
    if args.update_docs:
        write_section(SECTION, render(results))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing")
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--notes", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
