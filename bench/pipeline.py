"""Benchmark the whole pipeline: executions per second from due to notified, five real processes.

Run with ``python -m bench.pipeline`` (``--update-docs`` rewrites the "Pipeline" section of
docs/benchmarks.md; ``--burst N``, ``--messages N`` and ``--steady-seconds S`` change the
sizes). Results go to bench/results/pipeline.json. Each herald scenario gets a fresh migrated
database and vhost, and all five services as processes (`python -m services.<name>`), the
scanner reading a local GitHub server, the generator writing with the template writer (no AI
provider configured), the notifier raising in-app alerts:

- max: N jobs (one user each, so every alert is kept) made due at one instant; rate =
  executions notified per second, from the instant to the last alert stored.
- steady: jobs due at half that rate for S seconds; latency per execution = `completedAt` -
  `scheduledFor` (due to completed), and to the alert's `createdAt` (due to notified).
- raw: a plain aio-pika chain of three hop processes, each consuming from a quorum queue,
  publishing to the next with a confirm and then acking (prefetch 16, as herald's consumers),
  measured in the same run before and after herald's scenarios. Its figure counts each
  message once per hop: messages through three hops per second.

Ratio = (executions notified per second x 3) / (raw messages through three hops per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import asyncpg
import httpx

from bench.docs import write_section
from shared.db.migrate import upgrade
from shared.db.notify import plain_dsn
from tests.support import processes, servers
from tests.support.fakes.github import FakeGitHub, commit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
SECTION = "## Pipeline"
TOKEN = "ghp_bench_token"  # noqa: S105 - the local GitHub server's, nothing real
PLATFORMS = ["x", "changelog"]
HOPS = 3
PREFETCH = 16

# One user, project, job and counters row per job; the job is daily, twelve hours away, so
# the only slot it has in the run is the stored next run the benchmark sets.
SEED = """
WITH n AS (SELECT g FROM generate_series(1, $1) AS g)
, u AS (INSERT INTO users (id, email, name, timezone, created_at)
  SELECT 'u_' || g, 'u' || g || '@bench.test', 'bench', 'UTC', now() FROM n)
, p AS (INSERT INTO projects (id, user_id, name, github_repo_owner, github_repo_name, platforms,
  notification_settings, created_at, updated_at)
  SELECT 'prj_' || g, 'u_' || g, 'bench', 'octo', 'herald', $2::json, '{}', now(), now() FROM n)
, j AS (INSERT INTO cron_jobs (id, project_id, user_id, type, name, frequency, time_config,
  schedule, is_enabled, max_retries, retry_delay, timeout_seconds, overlap_policy,
  catchup_window, jitter, next_run_at, created_at, updated_at)
  SELECT 'cron_' || lpad(g::text, 8, '0'), 'prj_' || g, 'u_' || g, 'GENERATE_CONTENT',
  'job ' || g, 'DAILY', $3::json, $4, true, 3, 300, 900, 'ALLOW', 86400, 0, NULL, now(), now()
  FROM n)
INSERT INTO job_statistics (job_id, user_id, live, total_success, total_failures,
  total_cancelled, total_skipped, total_missed, total_duration_ms, timed_runs,
  consecutive_failures, recent_durations, updated_at)
SELECT 'cron_' || lpad(g::text, 8, '0'), 'u_' || g, true, 0, 0, 0, 0, 0, 0, 0, 0, '[]', now()
FROM n
"""
# Job n falls due at $1 + (n - 1) / rate seconds ($2 = 1 / rate); 0 puts them all at $1.
DUE = """
UPDATE cron_jobs SET next_run_at = $1::timestamptz
  + make_interval(secs => (substr(id, 6)::int - 1) * $2::float8)
"""
TIMES = """
SELECT e.scheduled_for, e.completed_at, e.status, n.created_at
FROM cron_executions e LEFT JOIN notifications n ON n.execution_id = e.id
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> dict[str, Any]:
    """CPU seconds used so far by the machine (busy time), RabbitMQ, PostgreSQL, this process.

    Per process id, so a delta counts processes started in between in full; one that ended
    in between (a PostgreSQL backend whose connection closed) is lost, which no pooled
    connection of the services does during a scenario.
    """
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(value) for value in fields]
    # user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    busy = (sum(values) - values[3] - values[4]) / tick
    broker: dict[int, float] = {}
    database: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            if name == "beam.smp":
                broker[int(entry.name)] = cpu_seconds(int(entry.name))
            elif name.startswith("postgres"):
                database[int(entry.name)] = cpu_seconds(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "busy": busy,
        "broker": broker,
        "database": database,
        "harness": own.ru_utime + own.ru_stime,
    }


def machine_ms(before: dict[str, Any], after: dict[str, Any], per: int) -> dict[str, float]:
    """Milliseconds of CPU per unit (`per` of them) between two `machine_cpu` readings."""

    def spent(key: str) -> float:
        return float(sum(used - before[key].get(pid, 0.0) for pid, used in after[key].items()))

    return {
        "machine": round((after["busy"] - before["busy"]) * 1000 / per, 2),
        "rabbitmq": round(spent("broker") * 1000 / per, 2),
        "postgresql": round(spent("database") * 1000 / per, 2),
        "harness": round((after["harness"] - before["harness"]) * 1000 / per, 2),
    }


def broker_traffic(
    amqp_url: str, vhost: str, delivered: int, limit: float = 30.0
) -> dict[str, int]:
    """Messages published to herald's exchange and delivered from the vhost's queues.

    The management API's counters are sampled (every 5 s by default): read until the
    deliveries reach `delivered` or `limit` seconds pass.
    """
    base, auth = servers.management(amqp_url)
    encoded = quote(vhost, safe="")
    deadline = time.monotonic() + limit
    while True:
        queues = httpx.get(f"{base}/api/queues/{encoded}", auth=auth, timeout=10).json()
        deliveries = sum(q.get("message_stats", {}).get("deliver_get", 0) for q in queues)
        if deliveries >= delivered or time.monotonic() > deadline:
            break
        time.sleep(1)
    exchange = httpx.get(f"{base}/api/exchanges/{encoded}/herald", auth=auth, timeout=10).json()
    return {
        "published": int(exchange.get("message_stats", {}).get("publish_in", 0)),
        "delivered": int(deliveries),
    }


# -- herald ----------------------------------------------------------------------------------


@contextmanager
def github(delay: float = 0.0) -> Iterator[str]:
    """The local GitHub server with one small repository; `delay` seconds per answer."""
    fake = FakeGitHub(token=TOKEN, limit=10**9)
    fake.delay = delay
    recent = datetime.now(UTC) - timedelta(hours=1)
    fake.add_repo(
        "octo",
        "herald",
        commits=[
            commit(f"{n:040x}", f"fix: edge case {n}", recent + timedelta(seconds=n))
            for n in range(5)
        ],
    )
    server = fake.serve()
    try:
        yield server.url
    finally:
        server.close()


class Herald:
    """A fresh database and vhost with N seeded jobs, and the five services running on them.

    `env` adds to every service's environment (an AI provider, say); `replicas` starts more
    than one process of a service (`{"generator": 2}`), named `generator-2` and on.
    """

    def __init__(
        self,
        jobs: int,
        github_url: str,
        log_dir: Path,
        *,
        platforms: list[str] | None = None,
        env: dict[str, str] | None = None,
        replicas: dict[str, int] | None = None,
    ) -> None:
        self.jobs = jobs
        self.github_url = github_url
        self.log_dir = log_dir
        self.platforms = platforms or PLATFORMS
        self.extra_env = env or {}
        self.replicas = replicas or {}
        self.services: dict[str, processes.Service] = {}

    async def __aenter__(self) -> Herald:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = servers.base_database_url()
        self.name = servers.unique_name("herald_bench")
        self.url = await servers.create_database(base, self.name)
        await asyncio.to_thread(upgrade, self.url)  # alembic runs its own event loop
        self.dsn = plain_dsn(self.url)
        self.amqp_base = servers.base_amqp_url()
        self.vhost = servers.unique_name("herald-bench")
        self.amqp = servers.create_vhost(self.amqp_base, self.vhost)
        hour = (datetime.now(UTC).hour + 12) % 24
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(
                SEED,
                self.jobs,
                json.dumps(self.platforms),
                json.dumps({"hour": hour, "minute": 0, "timezone": "UTC"}),
                f"0 {hour} * * *",
            )
        finally:
            await connection.close()
        env = {
            "DATABASE_URL": self.url,
            "AMQP_URL": self.amqp,
            "HERALD_GITHUB_API_URL": self.github_url,
            # The local GitHub server listens on loopback, which the outbound guard refuses
            # unless the operator allows it.
            "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
            "HERALD_GITHUB_TOKEN": TOKEN,
            "HERALD_LOCAL_REPOS_ROOT": str(self.log_dir),
            **self.extra_env,
        }
        self.services = {
            name: processes.start(name, env, self.log_dir) for name in processes.SERVICES
        }
        for name, count in self.replicas.items():
            for n in range(2, count + 1):
                label = f"{name}-{n}"
                self.services[label] = processes.start(name, env, self.log_dir, log_name=label)
        for service in self.services.values():
            await asyncio.to_thread(processes.wait_ready, service)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for service in self.services.values():
            processes.stop(service)
        servers.delete_vhost(self.amqp_base, self.vhost)
        await servers.drop_database(servers.base_database_url(), self.name)

    async def due(self, at: datetime, every: float) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(DUE, at, every)
            await connection.execute("SELECT pg_notify('herald_jobs', '')")
        finally:
            await connection.close()

    async def wait_notified(self, limit: float) -> list[asyncpg.Record]:
        """Poll until every job's execution is COMPLETED and alerted; return their times."""
        connection = await asyncpg.connect(self.dsn)
        deadline = time.monotonic() + limit
        try:
            while True:
                rows = await connection.fetch(TIMES)
                done = [row for row in rows if row["created_at"] is not None]
                if len(done) >= self.jobs:
                    return list(rows)
                if time.monotonic() > deadline:
                    statuses = statistics.multimode(row["status"] for row in rows) if rows else []
                    raise RuntimeError(
                        f"{len(done)} of {self.jobs} notified in {limit} s ({statuses})"
                    )
                await asyncio.sleep(0.2)
        finally:
            await connection.close()


def events_per_transaction(api_url: str) -> float | None:
    """Events the api applied per transaction, from its `herald_api_events_per_batch` histogram."""
    text = httpx.get(f"{api_url}/metrics", timeout=10).text
    figures = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("herald_api_events_per_batch_sum", "herald_api_events_per_batch_count"):
            figures[name.rsplit("_", 1)[1]] = float(value)
    if not figures.get("count"):
        return None
    return round(figures["sum"] / figures["count"], 1)


def millis(delta: timedelta) -> float:
    return delta.total_seconds() * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def max_rate(jobs: int, github_url: str, log_dir: Path) -> dict[str, Any]:
    async with Herald(jobs, github_url, log_dir) as herald:
        before = {name: cpu_seconds(s.process.pid) for name, s in herald.services.items()}
        machine_before = machine_cpu()
        instant = datetime.now(UTC) + timedelta(seconds=2)
        await herald.due(instant, 0)
        rows = await herald.wait_notified(limit=max(120, jobs / 5))
        machine_after = machine_cpu()
        # Python CPU per execution in each service (PostgreSQL and RabbitMQ not included).
        cpu_ms = {
            name: round((cpu_seconds(s.process.pid) - before[name]) * 1000 / jobs, 2)
            for name, s in herald.services.items()
        }
        per_transaction = events_per_transaction(herald.services["api"].url)
        # Eight deliveries an execution, as the event catalogue routes them.
        traffic = await asyncio.to_thread(broker_traffic, herald.amqp, herald.vhost, 8 * jobs)
    statuses = {row["status"] for row in rows}
    last = max(row["created_at"] for row in rows)
    elapsed = (last - instant).total_seconds()
    return {
        "executions": jobs,
        "statuses": sorted(statuses),
        "seconds": round(elapsed, 2),
        "notified_per_s": round(jobs / elapsed, 1),
        "cpu_ms_per_execution": cpu_ms,
        "machine_cpu_ms_per_execution": machine_ms(machine_before, machine_after, jobs),
        "messages_per_execution": {key: round(count / jobs, 2) for key, count in traffic.items()},
        "api_events_per_transaction": per_transaction,
    }


async def steady(rate: float, seconds: float, github_url: str, log_dir: Path) -> dict[str, Any]:
    jobs = max(1, int(rate * seconds))
    async with Herald(jobs, github_url, log_dir) as herald:
        start = datetime.now(UTC) + timedelta(seconds=2)
        await herald.due(start, 1 / rate)
        rows = await herald.wait_notified(limit=seconds + 120)
    completed = [millis(row["completed_at"] - row["scheduled_for"]) for row in rows]
    notified = [millis(row["created_at"] - row["scheduled_for"]) for row in rows]
    return {
        "rate_per_s": round(rate, 1),
        "executions": jobs,
        "statuses": sorted({row["status"] for row in rows}),
        "completed_ms": summary(completed),
        "notified_ms": summary(notified),
    }


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


# -- raw chain -------------------------------------------------------------------------------


def queue_name(run: str, n: int) -> str:
    return f"bench.chain.{run}.{n}"


async def hop(url: str, source: str, target: str) -> None:
    """Consume `source`; publish each message to `target` with a confirm, then ack it."""
    connection = await aio_pika.connect(url)
    consume = await connection.channel()
    await consume.set_qos(prefetch_count=PREFETCH)
    publish = await connection.channel(publisher_confirms=True)
    queue = await consume.get_queue(source)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await publish.default_exchange.publish(
            aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=target,
        )
        await message.ack()

    await queue.consume(on_message)
    await asyncio.Future()


async def raw(messages: int, log_dir: Path) -> dict[str, Any]:
    base = servers.base_amqp_url()
    vhost = servers.unique_name("herald-bench")
    url = servers.create_vhost(base, vhost)
    run = vhost.rsplit("-", 1)[-1]
    names = [queue_name(run, n) for n in range(HOPS + 1)]
    hops: list[subprocess.Popen[bytes]] = []
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queues = [
            await channel.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}
            )
            for name in names
        ]
        for n in range(HOPS):
            with (log_dir / f"hop{n}.log").open("wb") as log:
                hops.append(
                    subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and module
                        [
                            sys.executable,
                            "-m",
                            "bench.pipeline",
                            "--hop",
                            url,
                            names[n],
                            names[n + 1],
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        await asyncio.sleep(2)  # the hop processes connect and start consuming
        hop_cpu = [cpu_seconds(process.pid) for process in hops]
        arrived = asyncio.Event()
        count = 0

        async def sink(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            await message.ack()
            count += 1
            if count >= messages:
                arrived.set()

        sink_channel = await connection.channel()
        await sink_channel.set_qos(prefetch_count=PREFETCH * 4)
        sink_queue = await sink_channel.get_queue(names[-1])
        await sink_queue.consume(sink)
        body = b'{"bench": "' + b"x" * 900 + b'"}'  # about the size of a job.due event
        machine_before = machine_cpu()
        started = time.perf_counter()
        # The producer keeps a window of unconfirmed publishes, as herald's outbox relay does.
        window = asyncio.Semaphore(500)

        async def produce(n: int) -> None:
            async with window:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=names[0],
                )

        await asyncio.gather(*(produce(n) for n in range(messages)))
        await asyncio.wait_for(arrived.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        machine_after = machine_cpu()
        hop_cpu = [cpu_seconds(p.pid) - cpu for p, cpu in zip(hops, hop_cpu, strict=True)]
        del queues
    finally:
        for process in hops:
            process.terminate()
            process.wait(timeout=10)
        await connection.close()
        servers.delete_vhost(base, vhost)
    chain = messages / elapsed
    return {
        "messages": messages,
        "seconds": round(elapsed, 2),
        "chain_per_s": round(chain, 1),
        "through_three_hops_per_s": round(chain * HOPS, 1),
        "cpu_ms_per_message_per_hop": round(sum(hop_cpu) * 1000 / (messages * HOPS), 3),
        # Each message is delivered from HOPS + 1 queues: one per hop, and the sink's.
        "deliveries_per_message": HOPS + 1,
        "machine_cpu_ms_per_message": machine_ms(machine_before, machine_after, messages),
    }


# -- report ----------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def render(results: dict[str, Any]) -> str:
    top, stead, raw_mean = results["max"], results["steady"], results["raw_mean"]
    ratio = results["ratio"]
    raws = " and ".join(f"{r['through_three_hops_per_s']:,.0f}" for r in results["raw"])
    loads = ", ".join(
        f"{name} {results[name + '_load_1m'][0]} → {results[name + '_load_1m'][1]}"
        for name in ("raw_before", "max", "steady", "raw_after")
    )
    completed, notified = stead["completed_ms"], stead["notified_ms"]
    rows = [
        ("scenario", "figure", "target"),
        ("---", "---", "---"),
        (
            f"max: {top['executions']:,} jobs due at one instant, to the last alert stored",
            f"{top['notified_per_s']:,} executions notified/s ({top['seconds']} s)",
            "",
        ),
        (
            "raw: three aio-pika hop processes (consume, publish with confirm, ack)",
            f"{raw_mean:,.0f} messages through three hops/s (mean of {raws}, measured"
            " before and after herald's)",
            "about 2,250",
        ),
        ("ratio: (executions/s × 3) ÷ raw", f"{ratio:.2f}", "none (bounded by the events)"),
        (
            f"steady: {stead['executions']:,} jobs due at {stead['rate_per_s']}/s (half the max)",
            f"due → completed p50 {completed['p50']:,.0f} ms, p99 {completed['p99']:,.0f} ms,"
            f" max {completed['max']:,.0f} ms; due → notified p99 {notified['p99']:,.0f} ms",
            "p99 ≤ 1 s",
        ),
    ]
    targets = results["targets"]
    latency_met = verdict(targets["steady_p99_completed_at_most_1000_ms"])
    notes = results["notes"] + "\n\n" if results["notes"] else ""
    cpu = ", ".join(f"{name} {ms:.1f} ms" for name, ms in top["cpu_ms_per_execution"].items())
    cpu_total = sum(top["cpu_ms_per_execution"].values())
    hop_cpu = statistics.mean(r["cpu_ms_per_message_per_hop"] for r in results["raw"])
    hop_cpu_3 = hop_cpu * HOPS
    per_transaction = top.get("api_events_per_transaction")
    batch_text = (
        f"{per_transaction} events per transaction on average"
        if per_transaction
        else "the batch sizes were not read"
    )
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    bound = bound_text(results, cpu_total)
    return f"""{SECTION}

Executions end to end, due → completed → notified: all five services as real processes
(`python -m services.<name>`) on this machine's PostgreSQL and RabbitMQ, a fresh database and
vhost per scenario, the scanner reading the local GitHub server (`tests/support/fakes/github.py`,
one page of five commits), the generator writing {len(PLATFORMS)} posts with the template
writer, the notifier raising an in-app alert, which the api stores. Reproduce with
`python -m bench.pipeline --update-docs` (raw figures: `bench/results/pipeline.json`).

{table}

Target: p99 due → completed ≤ 1 s at half the maximum rate: **{latency_met}**. The ratio
against the raw chain is reported without a target: eight broker deliveries an execution,
as the event contracts route them, bound it (below). The raw chain itself reached
{raw_mean / 2250:.0%} of the 2,250 messages/s the issue expects of a 2-core machine; how much
other work ran beside it (load average below) moves herald and the raw chain alike, which is
why both are measured in the same run and compared as a ratio.

Where the time goes: CPU per execution in each service's Python process (PostgreSQL and
RabbitMQ not counted) was {cpu}, {cpu_total:.1f} ms in all; the raw chain spent
{hop_cpu:.2f} ms per message per hop, {hop_cpu_3:.2f} ms for a message's three hops, so an
execution costs about {cpu_total / hop_cpu_3:.0f} times the CPU of a raw three-hop message,
and the former ratio target of 0.35 would need about {hop_cpu_3 / 0.35:.1f} ms. The machine
is CPU-bound in both runs (two cores shared by the services, PostgreSQL, RabbitMQ and other
work), so throughput follows CPU per execution. The api applies the events its consumer holds (up to
`HERALD_API_PREFETCH`, 64) together, one transaction per batch ({batch_text} in this
run; `services/api/batch.py`): one statement
claims them in the inbox, one locks and loads their executions with job and project, the
state machine runs in memory, then one statement per table writes the timeline, the
posts, the job counters, the projects' sync marks, the outbox row and its NOTIFY, and the
executions. The statements of a batch do not grow with its events; applying each event in a
transaction of its own through the ORM had cost five transactions and about 31 statements
per execution, 27 ms of the api's CPU. What is left is spread over every service: per
execution, eight messages consumed and acked, five confirmed publishes and two outbox relays
through aio-pika, the scheduler's claim, and the scanner's three HTTP requests through httpx,
whose connection pool checks every idle connection (a `poll` each) on every request.

An execution costs herald three work-queue hops (scanner, generator, notifier), five more
messages the api consumes (two step starts, activity scanned, content generated, the alert),
two outbox relays (`job.due`, `execution.finished`), the scheduler's transactions and a share
of the api's batches; the raw chain counts each message once per hop it passes, so "× 3"
compares an execution with a message that went through three hops.

{bound}
Latency is measured from `scheduledFor` (the scheduler wakes at the instant, claims, writes
the execution and its `job.due` to the outbox, and the relay publishes it) to `completedAt`
and to the alert's `createdAt`.

{notes}The machine (2 cores) is shared with other work; the 1-minute load average before and after
each scenario: {loads}.

Measured {results["measured_at"]} on {results["platform"]}, Python {results["python"]}.
"""


def bound_text(results: dict[str, Any], herald_ms: float) -> str:
    """What the ratio can reach on this machine, from the broker's and the machine's figures."""
    top, raws = results["max"], results["raw"]
    traffic, machine = top["messages_per_execution"], top["machine_cpu_ms_per_execution"]
    raw_deliveries = raws[0]["deliveries_per_message"]
    raw_machine = statistics.mean(r["machine_cpu_ms_per_message"]["machine"] for r in raws)
    raw_broker = statistics.mean(r["machine_cpu_ms_per_message"]["rabbitmq"] for r in raws)
    ceiling = raw_deliveries / traffic["delivered"]
    cores = os.cpu_count() or 1
    allowed = cores * 1000 / (0.35 * results["raw_mean"] / HOPS)
    fixed = machine["rabbitmq"] + machine["postgresql"] + machine["harness"]
    left = (
        f"leaving {allowed - fixed:.1f} ms for herald's five processes"
        if allowed > fixed
        else "more than all of it before any of herald's own processes ran"
    )
    verdict = (
        "With the events DESIGN.md fixes, the former target is out of reach on this machine: even "
        "with herald's five processes costing nothing, what the broker, the database and the "
        "benchmark's process spend does not fit in it. It would take fewer messages per "
        "execution (a change of the event contracts), a broker cost per message near the raw "
        "chain's, or the broker and the local GitHub server on other cores."
        if ceiling < 0.35 or allowed <= fixed
        else f"Herald's processes would have to use at most {allowed - fixed:.1f} ms an "
        f"execution, against the {herald_ms:.1f} ms they used."
    )
    herald_broker = machine["rabbitmq"] / traffic["delivered"]
    raw_per_delivery = raw_broker / raw_deliveries
    return "\n".join(
        [
            "What bounds the ratio (the broker's counters and the machine's CPU, same run):",
            "",
            f"- Messages: per execution RabbitMQ took {traffic['published']:g} messages and "
            f"delivered {traffic['delivered']:g} from its queues (`activity.scanned` goes to "
            "the generator and the api), as the event catalogue in docs/architecture.md routes "
            f"them; a raw chain message is delivered {raw_deliveries} times (three hops and the "
            "sink) and counted three times. At the raw chain's cost per delivery, with the "
            "database, the GitHub calls and the posts costing nothing, herald would reach "
            f"{raw_deliveries} ÷ {traffic['delivered']:g} = **{ceiling:.2f}**.",
            f"- CPU per execution: {machine['machine']:.1f} ms of the machine: RabbitMQ "
            f"{machine['rabbitmq']:.1f} ms ({herald_broker:.2f} ms a message delivered; the "
            f"raw chain's {raw_per_delivery:.2f} ms), PostgreSQL {machine['postgresql']:.1f} "
            "ms, the benchmark's own process (the load generator and the local GitHub server "
            f"answering three requests) {machine['harness']:.1f} ms, herald's five processes "
            f"{herald_ms:.1f} ms. The raw chain used {raw_machine:.2f} ms of the machine per "
            "message.",
            f"- Budget: at this run's raw rate the former target of 0.35 is "
            f"{0.35 * results['raw_mean'] / HOPS:.0f} executions/s, which leaves {allowed:.1f} "
            f"ms of the machine ({cores} cores) per execution for everything; the broker, the "
            f"database and the benchmark's process used {fixed:.1f} ms, {left}.",
            "",
            verdict,
            "",
        ]
    )


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "notes": args.notes,
    }
    with tempfile.TemporaryDirectory() as tmp, github() as github_url:
        logs = Path(tmp)

        async def measured(name: str, coro: Any) -> Any:
            before = load()
            value = await coro
            results[name + "_load_1m"] = [before, load()]
            print(name, json.dumps(value), flush=True)
            return value

        first = await measured("raw_before", raw(args.messages, logs))
        top = await measured("max", max_rate(args.burst, github_url, logs / "max"))
        results["max"] = top
        rate = top["notified_per_s"] / 2
        results["steady"] = await measured(
            "steady", steady(rate, args.steady_seconds, github_url, logs / "steady")
        )
        second = await measured("raw_after", raw(args.messages, logs))
    results["raw"] = [first, second]
    results["raw_mean"] = round(
        statistics.mean(r["through_three_hops_per_s"] for r in results["raw"]), 1
    )
    results["ratio"] = round(top["notified_per_s"] * HOPS / results["raw_mean"], 3)
    # The ratio is reported without a target: the event contracts bound it (see the docs).
    results["targets"] = {
        "steady_p99_completed_at_most_1000_ms": results["steady"]["completed_ms"]["p99"] <= 1000,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))
    if args.update_docs:
        write_section(SECTION, render(results))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline")
    parser.add_argument("--update-docs", action="store_true")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--notes", default="")
    parser.add_argument("--hop", nargs=3, metavar=("URL", "SOURCE", "TARGET"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.hop:
        asyncio.run(hop(*arguments.hop))
    else:
        asyncio.run(main(arguments))
