"""Grafana dashboards as code: `python deploy/grafana/build_dashboards.py` writes dashboards/*.json.

`--check` (run by deploy/check.sh) fails when the committed JSON differs from what this builds.
Every panel queries the `datasource` template variable and sets a unit; uids are stable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
WORK_QUEUES = 'queue=~"herald\\\\.(scanner|generator|api|notifier|publisher)"'


@dataclass
class Panel:
    title: str
    exprs: list[tuple[str, str]]  # (PromQL, legend)
    unit: str
    kind: str = "timeseries"
    description: str = ""
    width: int = 12
    extra: dict[str, Any] = field(default_factory=dict)
    # Latency from a histogram whose observations carry their trace (OpenMetrics exemplars):
    # the panel shows them, and a click on one opens its trace (the Tempo data source).
    exemplars: bool = False


def quantiles(metric: str, by: str = "", unit_note: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = f"{{{{{by}}}}} p" if by else "p"
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{RATE})))",
            f"{legend}{int(q * 100)}{unit_note}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def rate(metric: str, by: str, selector: str = "") -> list[tuple[str, str]]:
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))
    matcher = f"{{{selector}}}" if selector else ""
    return [(f"sum by ({by}) (rate({metric}{matcher}{RATE}))", legend)]


# The traces of executions, in Grafana's Explore on the Tempo data source.
TRACES_LINK = {
    "title": "Execution traces (Tempo)",
    "type": "link",
    "icon": "external link",
    "tooltip": "Search the executions' traces; an exemplar on a latency panel opens its own",
    "url": '/explore?orgId=1&left={"datasource":"herald-tempo","queries":'
    '[{"refId":"A","queryType":"traceqlSearch","filters":[]}]}',
    "targetBlank": True,
}


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    links: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    built: list[dict[str, Any]] = []
    x = y = 0
    for number, panel in enumerate(panels, start=1):
        height = 5 if panel.kind == "stat" else 8
        if x + panel.width > 24:
            x, y = 0, y + 8
        built.append(
            {
                "id": number,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"h": height, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
                if panel.kind == "timeseries"
                else {"reduceOptions": {"calcs": ["lastNotNull"]}},
                "targets": [
                    {
                        "refId": chr(ord("A") + index),
                        "datasource": DATASOURCE,
                        "expr": expr,
                        "legendFormat": legend,
                        **({"exemplar": True} if panel.exemplars else {}),
                    }
                    for index, (expr, legend) in enumerate(panel.exprs)
                ],
                **panel.extra,
            }
        )
        x += panel.width
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["herald"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "links": links or [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "herald-prometheus"},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                }
            ]
        },
        "panels": built,
    }


def scheduler() -> dict[str, Any]:
    return dashboard(
        "herald-scheduler",
        "herald / scheduler",
        "Fires, lateness, due backlog and the transactional outbox.",
        [
            Panel("Fires by outcome", rate("herald_scheduler_fires_total", "outcome"), "ops"),
            Panel(
                "Fire lateness",
                quantiles("herald_scheduler_fire_lateness_seconds"),
                "s",
                description="From a slot's scheduled instant to its job.due publish (jitter in).",
            ),
            Panel(
                "Due backlog after a pass",
                [("max(herald_scheduler_due_backlog)", "due")],
                "short",
                width=8,
            ),
            Panel(
                "Jobs by state",
                [("max by (state) (herald_scheduler_jobs)", "{{state}}")],
                "short",
                width=8,
            ),
            Panel(
                "Earliest next run, from now",
                [("min(herald_scheduler_next_run_timestamp_seconds > 0) - time()", "in")],
                "s",
                width=8,
                description="Negative and falling: the scheduler is not completing passes.",
            ),
            Panel(
                "Claim batch time", quantiles("herald_scheduler_claim_batch_seconds"), "s", width=8
            ),
            Panel(
                "Jobs overdue (no success in 3x interval)",
                [("max(herald_jobs_overdue)", "overdue")],
                "short",
                width=8,
            ),
            Panel(
                "Outbox pending rows",
                [("max by (job) (herald_outbox_pending)", "{{job}}")],
                "short",
                width=8,
            ),
            Panel("Outbox rows relayed", rate("herald_outbox_published_total", "job"), "ops"),
            Panel("Outbox relay batch time", quantiles("herald_outbox_relay_batch_seconds"), "s"),
        ],
    )


def pipeline() -> dict[str, Any]:
    finished = "herald_executions_finished_total"
    return dashboard(
        "herald-pipeline",
        "herald / pipeline",
        "Executions, their durations, retries, dead letters and RabbitMQ queues.",
        [
            Panel("Executions finished by status", rate(finished, "status"), "ops"),
            Panel(
                "Failure ratio (FAILED + TIMEOUT of run executions)",
                [
                    (
                        f'sum(rate({finished}{{status=~"FAILED|TIMEOUT"}}{RATE}))'
                        f' / sum(rate({finished}{{status=~"COMPLETED|FAILED|TIMEOUT"}}{RATE}))',
                        "failure ratio",
                    )
                ],
                "percentunit",
            ),
            Panel(
                "Execution duration by status",
                quantiles("herald_execution_duration_seconds", by="status"),
                "s",
                exemplars=True,
            ),
            Panel(
                "Retries (messages sent down the delay ladder)",
                rate("herald_messages_delayed_total", "step"),
                "ops",
            ),
            Panel(
                "Dead-letter queue depth",
                [
                    (
                        'sum by (queue) (rabbitmq_detailed_queue_messages{queue=~".+\\\\.dlq"})',
                        "{{queue}}",
                    )
                ],
                "short",
            ),
            Panel(
                "Messages rejected to dead letters",
                rate("herald_messages_dead_lettered_total", "queue, reason"),
                "ops",
            ),
            Panel(
                "Work queue depth (ready)",
                [
                    (
                        f"sum by (queue) (rabbitmq_detailed_queue_messages_ready{{{WORK_QUEUES}}})",
                        "{{queue}}",
                    )
                ],
                "short",
            ),
            Panel(
                "Unacknowledged (in flight)",
                [
                    (
                        "sum by (queue) "
                        f"(rabbitmq_detailed_queue_messages_unacked{{{WORK_QUEUES}}})",
                        "{{queue}}",
                    )
                ],
                "short",
            ),
            Panel(
                "Consumers per work queue",
                [
                    (
                        f"sum by (queue) (rabbitmq_detailed_queue_consumers{{{WORK_QUEUES}}})",
                        "{{queue}}",
                    )
                ],
                "short",
            ),
            Panel(
                "Messages handled by queue and outcome",
                rate("herald_messages_consumed_total", "queue, outcome"),
                "ops",
            ),
            Panel(
                "Events published", rate("herald_messages_published_total", "routing_key"), "ops"
            ),
            Panel(
                "Duplicate events dropped", rate("herald_events_duplicate_total", "consumer"), "ops"
            ),
            Panel(
                "Posts by platform and status",
                rate("herald_posts_total", "platform, status"),
                "ops",
            ),
            Panel(
                "Publications by network and outcome",
                rate("herald_posts_published_total", "network, outcome"),
                "ops",
                description="published; earlier: a repeat found the first post; retry; "
                "failed: final, with the network's reason on the post.",
            ),
            Panel(
                "Publishing time by network",
                quantiles("herald_publish_seconds", "network"),
                "s",
            ),
        ],
        links=[TRACES_LINK],
    )


def dependencies() -> dict[str, Any]:
    return dashboard(
        "herald-dependencies",
        "herald / external dependencies",
        "GitHub, AI providers and notification channels.",
        [
            Panel(
                "GitHub requests by outcome",
                rate("herald_github_requests_total", "outcome"),
                "reqps",
            ),
            Panel(
                "GitHub rate-limit headroom",
                [("min(herald_github_rate_limit_remaining)", "remaining")],
                "short",
            ),
            Panel(
                "GitHub error ratio",
                [
                    (
                        f'sum(rate(herald_github_requests_total{{outcome="error"}}{RATE}))'
                        f" / sum(rate(herald_github_requests_total{RATE}))",
                        "errors",
                    )
                ],
                "percentunit",
            ),
            Panel(
                "AI tokens by provider and kind",
                rate("herald_ai_tokens_total", "provider, kind"),
                "short",
            ),
            Panel(
                "AI request time",
                quantiles("herald_ai_request_seconds", by="provider"),
                "s",
                exemplars=True,
            ),
            Panel(
                "Budget waits (calls waiting for a fleet budget or a provider's pause)",
                rate("herald_budget_wait_seconds_count", "budget"),
                "ops",
            ),
            Panel(
                "Budget wait time",
                quantiles("herald_budget_wait_seconds", by="budget"),
                "s",
            ),
            Panel(
                "Shared budget store (Redis) unreachable",
                rate("herald_budget_store_errors_total", "job"),
                "ops",
            ),
            Panel(
                "Posts not generated (AI or template errors)",
                rate("herald_posts_total", "platform", 'status!="GENERATED"'),
                "ops",
            ),
            Panel(
                "Notification deliveries by channel and outcome",
                rate("herald_notifications_delivered_total", "channel, outcome"),
                "ops",
            ),
            Panel(
                "Notification attempt time",
                quantiles("herald_notification_attempt_seconds", by="channel"),
                "s",
                exemplars=True,
            ),
        ],
        links=[TRACES_LINK],
    )


def api() -> dict[str, Any]:
    http = "herald_http_requests_total"
    return dashboard(
        "herald-api",
        "herald / api",
        "REST API rate, latency and errors; service readiness.",
        [
            Panel("Requests by route", rate(http, "route"), "reqps"),
            Panel("Requests by status class", rate(http, "status_class"), "reqps"),
            Panel(
                "Abuse limits: requests slowed or refused",
                rate("herald_api_refusals_total", "limit, outcome"),
                "ops",
            ),
            Panel(
                "Error ratio (5xx)",
                [
                    (
                        f'sum(rate({http}{{status_class="5xx"}}{RATE})) / sum(rate({http}{RATE}))',
                        "5xx",
                    ),
                    (
                        f'sum(rate({http}{{status_class="4xx"}}{RATE})) / sum(rate({http}{RATE}))',
                        "4xx",
                    ),
                ],
                "percentunit",
            ),
            Panel(
                "Latency", quantiles("herald_http_request_duration_seconds"), "s", exemplars=True
            ),
            Panel(
                "p95 latency by route",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, route) "
                        f"(rate(herald_http_request_duration_seconds_bucket{RATE})))",
                        "{{route}}",
                    )
                ],
                "s",
            ),
            Panel(
                "Readiness by service",
                [("min by (service) (herald_service_ready)", "{{service}}")],
                "bool_yes_no",
                kind="stat",
            ),
            Panel(
                "Background loop crashes (restarted with backoff)",
                [
                    (
                        "sum by (service, loop) "
                        "(increase(herald_background_loop_crashes_total[$__rate_interval]))",
                        "{{service}} {{loop}}",
                    )
                ],
                "short",
                description="A crash is logged with its traceback as 'background loop crashed'.",
            ),
            Panel(
                "Targets up",
                [('sum by (job) (up{job=~"herald-.*"})', "{{job}}")],
                "short",
                kind="stat",
            ),
        ],
        links=[TRACES_LINK],
    )


DASHBOARDS = {
    "scheduler.json": scheduler,
    "pipeline.json": pipeline,
    "dependencies.json": dependencies,
    "api.json": api,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    stale = []
    for name, text in render().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards {stale}: run python deploy/grafana/build_dashboards.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
