"""A job's dependency graph: the jobs it runs after and the jobs it starts, transitively.

Read from one query of the user's jobs. Upstreams are followed through `dependsOn` up to a
deleted job (it never runs again, so what it ran after no longer matters to this job);
dependents are the live jobs naming one of the graph's jobs, down to the end of the chain.

Each job has a `level`: 0 for the job itself, negative for upstreams, positive for
dependents, its distance along the longest path, so that every edge of the graph goes from
a lower level to a higher one and a drawing in columns reads left to right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import CronJob


@dataclass(frozen=True)
class _Node:
    id: str
    name: str | None
    is_enabled: bool
    deleted: bool
    depends_on: tuple[tuple[str, str], ...]  # (upstream job id, on)


async def job_graph(session: AsyncSession, job: CronJob) -> dict[str, Any]:
    """Return `{jobId, jobs, edges}` for the job's upstreams and dependents (the caller's)."""
    rows = (
        await session.execute(
            select(
                CronJob.id,
                CronJob.name,
                CronJob.is_enabled,
                CronJob.deleted_at,
                CronJob.depends_on,
            ).where(CronJob.user_id == job.user_id)
        )
    ).all()
    nodes = {
        row.id: _Node(
            row.id,
            row.name,
            bool(row.is_enabled) and row.deleted_at is None,
            row.deleted_at is not None,
            tuple((entry["jobId"], entry["on"]) for entry in row.depends_on or ()),
        )
        for row in rows
    }
    upstreams = _upstreams_of(nodes, job.id)
    dependents = _dependents_of(nodes, job.id)
    members = {job.id} | upstreams | dependents
    edges = [
        (upstream, node_id, on)
        for node_id in sorted(members)
        if node_id in nodes and not (nodes[node_id].deleted and node_id != job.id)
        for upstream, on in nodes[node_id].depends_on
        if upstream in members
    ]
    levels = _levels(job.id, upstreams, dependents, edges)
    jobs = [
        _job_view(nodes.get(node_id), node_id, levels[node_id])
        for node_id in sorted(members, key=lambda key: (levels[key], _name(nodes, key), key))
    ]
    return {
        "jobId": job.id,
        "jobs": jobs,
        "edges": [
            {"upstream": upstream, "dependent": dependent, "on": on}
            for upstream, dependent, on in edges
        ],
    }


def _upstreams_of(nodes: Mapping[str, _Node], job_id: str) -> set[str]:
    found: set[str] = set()
    stack = [job_id]
    while stack:
        current = nodes.get(stack.pop())
        if current is None or (current.deleted and current.id != job_id):
            continue  # a deleted upstream is the end of that line
        for upstream, _ in current.depends_on:
            if upstream != job_id and upstream not in found:
                found.add(upstream)
                stack.append(upstream)
    return found


def _dependents_of(nodes: Mapping[str, _Node], job_id: str) -> set[str]:
    named_by: dict[str, list[str]] = {}
    for node in nodes.values():
        if not node.deleted:
            for upstream, _ in node.depends_on:
                named_by.setdefault(upstream, []).append(node.id)
    found: set[str] = set()
    stack = [job_id]
    while stack:
        for dependent in named_by.get(stack.pop(), ()):
            if dependent != job_id and dependent not in found:
                found.add(dependent)
                stack.append(dependent)
    return found


def _levels(
    job_id: str, upstreams: set[str], dependents: set[str], edges: list[tuple[str, str, str]]
) -> dict[str, int]:
    """Longest-path levels; the rounds are bounded, so a cycle stored by a race still ends."""
    levels = {job_id: 0}
    rounds = len(upstreams) + len(dependents) + 1
    for _ in range(rounds):
        changed = False
        for upstream, dependent, _on in edges:
            if upstream in upstreams and dependent in levels:
                wanted = min(levels[dependent], 0) - 1
                if wanted < levels.get(upstream, 0):
                    levels[upstream], changed = wanted, True
            if dependent in dependents and upstream in levels:
                wanted = max(levels[upstream], 0) + 1
                if wanted > levels.get(dependent, 0):
                    levels[dependent], changed = wanted, True
        if not changed:
            break
    return levels


def _name(nodes: Mapping[str, _Node], node_id: str) -> str:
    node = nodes.get(node_id)
    return (node.name or "") if node else ""


def _job_view(node: _Node | None, node_id: str, level: int) -> dict[str, Any]:
    if node is None:  # named by a dependency but gone from the table: as good as deleted
        return {"id": node_id, "name": None, "isEnabled": False, "deleted": True, "level": level}
    return {
        "id": node.id,
        "name": node.name,
        "isEnabled": node.is_enabled,
        "deleted": node.deleted,
        "level": level,
    }
