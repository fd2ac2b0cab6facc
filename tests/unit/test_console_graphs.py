"""The dependency graph on a job's page: columns by level, and the same edges in words."""

from __future__ import annotations

from typing import Any

from services.api.console import graphs


def _graph() -> dict[str, Any]:
    def job(job_id: str, level: int, **state: Any) -> dict[str, Any]:
        return {
            "id": job_id,
            "name": job_id.upper(),
            "isEnabled": True,
            "deleted": False,
            "level": level,
            **state,
        }

    return {
        "jobId": "b",
        "jobs": [
            job("a", -1, isEnabled=False),
            job("z", -1, name=None, isEnabled=False, deleted=True),
            job("b", 0),
            job("c", 1, name="a name far too long for its box"),
        ],
        "edges": [
            {"upstream": "a", "dependent": "b", "on": "onSuccess"},
            {"upstream": "z", "dependent": "b", "on": "onFailure"},
            {"upstream": "b", "dependent": "c", "on": "onCompletion"},
        ],
    }


def test_a_job_with_no_dependencies_draws_nothing() -> None:
    alone = {"jobId": "b", "jobs": [{"id": "b", "level": 0}], "edges": []}
    assert graphs.draw(alone) is None
    assert graphs.neighbours(alone) == {"upstreams": [], "dependents": []}


def test_jobs_are_laid_out_in_columns_by_level_and_each_edge_goes_right() -> None:
    drawing = graphs.draw(_graph())
    assert drawing is not None
    nodes = {node.id: node for node in drawing.nodes}
    assert nodes["a"].x == nodes["z"].x < nodes["b"].x < nodes["c"].x
    assert nodes["a"].y < nodes["z"].y
    assert (nodes["b"].state, nodes["b"].link) == ("this job", None)
    deleted = nodes["z"]
    assert (deleted.state, deleted.link, deleted.name) == ("deleted", None, "deleted job z")
    assert nodes["a"].link == "/console/jobs/a"
    assert nodes["c"].label.endswith("…") and len(nodes["c"].label) == graphs.NAME_LIMIT
    assert drawing.width >= nodes["c"].x + graphs.NODE_WIDTH
    assert drawing.summary == (
        "Dependencies: B runs after A when it succeeds (A is disabled); "
        "B runs after deleted job z when it fails; "
        "a name far too long for its box runs after B when it ends, either way."
    )


def test_the_direct_neighbours_are_listed_with_their_state() -> None:
    listed = graphs.neighbours(_graph())
    assert [(item["name"], item["state"], item["on"]) for item in listed["upstreams"]] == [
        ("A", "disabled", "when it succeeds"),
        ("deleted job z", "deleted", "when it fails"),
    ]
    assert [(item["name"], item["link"]) for item in listed["dependents"]] == [
        ("a name far too long for its box", "/console/jobs/c")
    ]
