"""A job's daylight-saving policy through the API: stored, shown, previewed, or refused."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.api import new_job, new_project, problem, signed_in

BERLIN = "Europe/Berlin"


def _fields_and_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(error["field"], error["message"]) for error in body["errors"]]


async def test_policies_are_stored_in_time_config_and_shown_as_stored(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    daily = await new_job(
        api,
        headers,
        project_id,
        timeConfig={
            "hour": 2,
            "minute": 30,
            "timezone": BERLIN,
            "gapPolicy": "SKIP",
            "foldPolicy": "SECOND",
        },
    )
    assert daily["timeConfig"] == {
        "hour": 2,
        "minute": 30,
        "timezone": BERLIN,
        "gapPolicy": "SKIP",
        "foldPolicy": "SECOND",
    }
    custom = await new_job(
        api,
        headers,
        project_id,
        frequency="CUSTOM",
        schedule="30 2 * * 1-5",
        timeConfig={"timezone": BERLIN, "foldPolicy": "SECOND"},
    )
    assert custom["timeConfig"] == {"timezone": BERLIN, "foldPolicy": "SECOND"}
    # The defaults are what an absent policy means: not stored, so every job has one form.
    plain = await new_job(
        api,
        headers,
        project_id,
        timeConfig={"hour": 9, "minute": 0, "gapPolicy": "SHIFT", "foldPolicy": "FIRST"},
    )
    assert plain["timeConfig"] == {"hour": 9, "minute": 0, "timezone": "UTC"}

    # The one-job view and the list (rendered by PostgreSQL, or in Python on SQLite) agree.
    one = (await api.get(f"/api/cron/schedules/{daily['id']}", headers=headers)).json()["data"]
    assert one["timeConfig"] == daily["timeConfig"]
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    by_id = {job["id"]: job["timeConfig"] for job in listed}
    assert by_id == {
        daily["id"]: daily["timeConfig"],
        custom["id"]: custom["timeConfig"],
        plain["id"]: plain["timeConfig"],
    }

    # An update of timeConfig replaces it whole: leaving the policies out restores the defaults.
    response = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": daily["id"], "timeConfig": {"hour": 2, "minute": 30, "timezone": BERLIN}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["timeConfig"] == {"hour": 2, "minute": 30, "timezone": BERLIN}


async def test_unknown_policy_values_are_refused_with_the_other_faults_at_once(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "bad",
            "frequency": "DAILY",
            "timeConfig": {"hour": 24, "minute": 0, "gapPolicy": "skip", "foldPolicy": "LAST"},
        },
    )
    fields = [field for field, _ in _fields_and_messages(problem(response, 422))]
    assert sorted(fields) == ["timeConfig.foldPolicy", "timeConfig.gapPolicy", "timeConfig.hour"]


async def test_a_policy_on_a_job_without_a_fixed_local_time_is_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    body = {
        "projectId": project_id,
        "name": "every quarter hour",
        "frequency": "CUSTOM",
        "schedule": "*/15 * * * *",
        "timeConfig": {"timezone": BERLIN, "gapPolicy": "SKIP", "foldPolicy": "SECOND"},
    }
    refused = problem(await api.post("/api/cron/schedule", headers=headers, json=body), 422)
    assert [field for field, _ in _fields_and_messages(refused)] == [
        "timeConfig.gapPolicy",
        "timeConfig.foldPolicy",
    ]
    gap_message = _fields_and_messages(refused)[0][1]
    assert "gapPolicy SKIP applies only to a job at a fixed local time" in gap_message
    assert "minute and hour fields do not start with '*'" in gap_message
    assert "'*/15 * * * *' follows elapsed time" in gap_message

    # With other fields at fault too, one 422 names them all.
    without_name = {key: value for key, value in body.items() if key != "name"}
    refused = problem(await api.post("/api/cron/schedule", headers=headers, json=without_name), 422)
    assert [field for field, _ in _fields_and_messages(refused)] == [
        "name",
        "timeConfig.gapPolicy",
        "timeConfig.foldPolicy",
    ]

    # The defaults, named, are accepted on such a job: they are classic cron's behaviour.
    hourly = await new_job(
        api,
        headers,
        project_id,
        frequency="CUSTOM",
        schedule="0 * * * *",
        timeConfig={"timezone": BERLIN, "gapPolicy": "SHIFT", "foldPolicy": "FIRST"},
    )
    assert hourly["timeConfig"] == {"timezone": BERLIN}

    # A job keeping a SKIP policy cannot move to an hourly schedule while it holds it.
    fixed = await new_job(
        api,
        headers,
        project_id,
        frequency="CUSTOM",
        schedule="30 2 * * *",
        timeConfig={"timezone": BERLIN, "gapPolicy": "SKIP"},
    )
    moved = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": fixed["id"], "schedule": "30 * * * *"}
    )
    assert [field for field, _ in _fields_and_messages(problem(moved, 422))] == [
        "timeConfig.gapPolicy"
    ]


async def test_a_schedule_skip_leaves_without_any_run_is_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    # The last Sunday of March is Berlin's spring-forward day every year.
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "never",
            "frequency": "CUSTOM",
            "schedule": "30 2 * 3 0L",
            "timeConfig": {"timezone": BERLIN, "gapPolicy": "SKIP"},
        },
    )
    assert _fields_and_messages(problem(response, 422)) == [
        (
            "timeConfig.gapPolicy",
            "30 2 * 3 0L never fires in Europe/Berlin with gapPolicy SKIP: every time it names "
            "falls in a daylight-saving gap",
        )
    ]


def _notes(preview: dict[str, Any]) -> list[str]:
    return [run["note"] for run in preview["runs"] if run["note"]]


async def test_previews_mark_the_runs_each_policy_moves_or_drops(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    # 100 Sundays at 02:30 cover a spring-forward day and a fall-back day, whatever today is.
    weekly = {"hour": 2, "minute": 30, "dayOfWeek": 0, "timezone": BERLIN}

    async def preview(**body: Any) -> dict[str, Any]:
        response = await api.post(
            "/api/cron/schedule/preview", headers=headers, json={"count": 100, **body}
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    classic = await preview(frequency="WEEKLY", timeConfig=weekly)
    assert (classic["fixedLocalTime"], classic["gapPolicy"], classic["foldPolicy"]) == (
        True,
        "SHIFT",
        "FIRST",
    )
    assert any(
        note.startswith("moved: 02:30 does not exist, ran at 03:00 CEST")
        for note in _notes(classic)
    )
    assert any("ran once at the first (02:30 CEST)" in note for note in _notes(classic))

    policed = await preview(
        frequency="WEEKLY", timeConfig={**weekly, "gapPolicy": "SKIP", "foldPolicy": "SECOND"}
    )
    assert (policed["gapPolicy"], policed["foldPolicy"]) == ("SKIP", "SECOND")
    skipped = [note for note in _notes(policed) if note.startswith("skipped:")]
    assert len(skipped) >= 1
    assert all(
        note.startswith("skipped: 02:30 does not exist on ") and note.endswith("(gapPolicy SKIP)")
        for note in skipped
    )
    assert any(
        note == "merged: 02:30 occurs twice, ran once at the second (02:30 CET, foldPolicy SECOND)"
        for note in _notes(policed)
    )
    # The skipped Sunday has no run: one run fewer in the weeks the classic preview covers.
    classic_utc = {run["utc"] for run in classic["runs"]}
    policed_utc = {run["utc"] for run in policed["runs"]}
    assert len(classic_utc - policed_utc) >= len(skipped)
    assert all(run["local"].endswith(("+01:00", "+02:00")) for run in policed["runs"])
    assert all("T02:30:00" in run["local"] for run in policed["runs"])

    # The same for a CUSTOM expression, and for the saved job's preview.
    custom = await preview(
        frequency="CUSTOM",
        schedule="30 2 * * 0",
        timeConfig={"timezone": BERLIN, "gapPolicy": "SKIP"},
    )
    assert (
        custom["runs"]
        == (await preview(frequency="WEEKLY", timeConfig={**weekly, "gapPolicy": "SKIP"}))["runs"]
    )
    assert any(note.startswith("skipped:") for note in _notes(custom))
    job = await new_job(
        api,
        headers,
        project_id,
        frequency="WEEKLY",
        timeConfig={**weekly, "gapPolicy": "SKIP", "foldPolicy": "SECOND"},
    )
    saved = await api.get(
        f"/api/cron/schedules/{job['id']}/preview", headers=headers, params={"count": 100}
    )
    assert saved.status_code == 200, saved.text
    assert _notes(saved.json()["data"]) == _notes(policed)

    # A wildcard-time schedule: the policies do not apply, and are refused when given.
    hourly = await preview(
        frequency="CUSTOM", schedule="0 * * * *", timeConfig={"timezone": BERLIN}
    )
    assert (hourly["fixedLocalTime"], hourly["gapPolicy"], hourly["foldPolicy"]) == (
        False,
        None,
        None,
    )
    refused = await api.post(
        "/api/cron/schedule/preview",
        headers=headers,
        json={
            "frequency": "CUSTOM",
            "schedule": "0 * * * *",
            "timeConfig": {"timezone": BERLIN, "foldPolicy": "SECOND"},
        },
    )
    assert [field for field, _ in _fields_and_messages(problem(refused, 422))] == [
        "timeConfig.foldPolicy"
    ]


async def test_the_openapi_document_describes_the_policies(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    properties = document["components"]["schemas"]["TimeConfig"]["properties"]
    assert "SKIP has no run that day" in str(properties["gapPolicy"])
    assert "SECOND once at the second" in str(properties["foldPolicy"])
