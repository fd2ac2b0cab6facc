"""A job's dependency graph drawn on its page: columns by level, upstreams on the left.

The API's graph (`GET /api/cron/schedules/{id}/graph`) gives each job a level such that every
edge goes from a lower level to a higher one, so columns by level read left to right. The
drawing is an SVG laid out here; the page also lists the same edges as text (the drawing's
text alternative), since a picture of boxes is not something a screen reader can follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NODE_WIDTH, NODE_HEIGHT = 170, 44
COLUMN_GAP, ROW_GAP = 56, 14
NAME_LIMIT = 22

# How each `on` reads in a sentence about the upstream: "runs after a when it succeeds".
ON_WORDS = {
    "onSuccess": "when it succeeds",
    "onFailure": "when it fails",
    "onCompletion": "when it ends, either way",
}


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    label: str  # the name as drawn: shortened to fit the box
    state: str  # "this job", "enabled", "disabled" or "deleted"
    x: float
    y: float
    current: bool
    link: str | None


@dataclass(frozen=True)
class Edge:
    path: str
    on: str
    title: str


@dataclass(frozen=True)
class Drawing:
    width: float
    height: float
    nodes: list[Node]
    edges: list[Edge]
    summary: str


def state_of(job: Mapping[str, Any], current: bool = False) -> str:
    if current:
        return "this job"
    if job.get("deleted"):
        return "deleted"
    return "enabled" if job.get("isEnabled") else "disabled"


def name_of(job: Mapping[str, Any]) -> str:
    return str(job.get("name") or f"deleted job {job['id']}")


def draw(graph: Mapping[str, Any]) -> Drawing | None:
    """Lay the graph out, or None when the job has neither upstreams nor dependents."""
    jobs: Sequence[Mapping[str, Any]] = graph["jobs"]
    if len(jobs) < 2:
        return None
    levels = sorted({int(job["level"]) for job in jobs})
    column = {level: index for index, level in enumerate(levels)}
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for job in jobs:
        level = int(job["level"])
        row = rows.get(level, 0)
        rows[level] = row + 1
        current = job["id"] == graph["jobId"]
        name = name_of(job)
        nodes[job["id"]] = Node(
            id=job["id"],
            name=name,
            label=name if len(name) <= NAME_LIMIT else name[: NAME_LIMIT - 1] + "…",
            state=state_of(job, current),
            x=column[level] * (NODE_WIDTH + COLUMN_GAP) + 1,
            y=row * (NODE_HEIGHT + ROW_GAP) + 1,
            current=current,
            link=None if current or job.get("deleted") else f"/console/jobs/{job['id']}",
        )
    edges = []
    for edge in graph["edges"]:
        start, end = nodes[edge["upstream"]], nodes[edge["dependent"]]
        x1, y1 = start.x + NODE_WIDTH, start.y + NODE_HEIGHT / 2
        x2, y2 = end.x, end.y + NODE_HEIGHT / 2
        bend = (x2 - x1) / 2
        edges.append(
            Edge(
                path=f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2 - 6:g},{y2:g}",
                on=edge["on"],
                title=sentence(end.name, start.name, start.state, edge["on"]),
            )
        )
    return Drawing(
        width=len(levels) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP + 2,
        height=max(rows.values()) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP + 2,
        nodes=list(nodes.values()),
        edges=edges,
        summary="Dependencies: " + "; ".join(edge.title for edge in edges) + ".",
    )


def sentence(dependent: str, upstream: str, upstream_state: str, on: str) -> str:
    """One edge in words: "b runs after a when it succeeds (a is disabled)"."""
    words = f"{dependent} runs after {upstream} {ON_WORDS.get(on, on)}"
    if upstream_state in ("disabled", "deleted") and not upstream.startswith("deleted job "):
        words += f" ({upstream} is {upstream_state})"
    return words


def neighbours(graph: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The job's direct upstreams and dependents, for the list beside the drawing."""
    jobs = {job["id"]: job for job in graph["jobs"]}
    own = graph["jobId"]

    def entry(job_id: str, on: str) -> dict[str, Any]:
        job = jobs[job_id]
        return {
            "id": job_id,
            "name": name_of(job),
            "state": state_of(job),
            "on": ON_WORDS.get(on, on),
            "link": None if job.get("deleted") else f"/console/jobs/{job_id}",
        }

    edges = graph["edges"]
    return {
        "upstreams": [entry(e["upstream"], e["on"]) for e in edges if e["dependent"] == own],
        "dependents": [entry(e["dependent"], e["on"]) for e in edges if e["upstream"] == own],
    }
