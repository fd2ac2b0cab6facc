"""Console form posts become the API's request bodies, named by the API's own field paths."""

from __future__ import annotations

from services.api.console.forms import (
    Form,
    dependency_errors,
    dst_applies,
    job_body,
    job_values,
    preview_body,
    project_body,
)


def _form(**fields: str | list[str]) -> Form:
    return Form(
        {
            name.replace("__", "."): value if isinstance(value, list) else [value]
            for name, value in fields.items()
        }
    )


def test_a_preset_sends_only_the_time_fields_it_uses() -> None:
    form = _form(
        projectId="prj_1",
        type="PUBLISH_CONTENT",
        name=" Digest ",
        frequency="WEEKLY",
        timeConfig__hour="9",
        timeConfig__minute="0",
        timeConfig__dayOfWeek="1",
        timeConfig__dayOfMonth="15",
        timeConfig__timezone="Europe/Paris",
        schedule="ignored",
        isEnabled="on",
        maxRetries="2",
        retryDelay="",
        overlapPolicy="ALLOW",
    )
    assert job_body(form) == {
        "projectId": "prj_1",
        "type": "PUBLISH_CONTENT",
        "name": "Digest",
        "frequency": "WEEKLY",
        "timeConfig": {"hour": 9, "minute": 0, "dayOfWeek": 1, "timezone": "Europe/Paris"},
        "isEnabled": True,
        "maxRetries": 2,
        "overlapPolicy": "ALLOW",
    }


def test_text_that_is_not_a_number_goes_to_the_api_as_typed() -> None:
    # The API then names the rule (an integer) next to the field, instead of the console.
    body = job_body(_form(name="x", frequency="DAILY", timeConfig__hour="nine", jitter="1.5"))
    assert body["timeConfig"] == {"hour": "nine", "timezone": "UTC"}
    assert body["jitter"] == "1.5"
    assert body["isEnabled"] is False


def test_an_edit_names_the_job_and_can_clear_the_description() -> None:
    form = _form(name="n", frequency="CUSTOM", schedule="*/5 * * * *", description="")
    body = job_body(form, job_id="cron_1")
    assert body["jobId"] == "cron_1"
    assert body["description"] == ""
    assert body["schedule"] == "*/5 * * * *"
    assert body["timeConfig"] == {"timezone": "UTC"}
    assert "projectId" not in body
    # A job keeps its type: an edit never sends one.
    assert "type" not in job_body(_form(name="n", type="ANALYTICS"), job_id="cron_1")


def test_the_preview_asks_for_the_schedule_being_typed() -> None:
    form = _form(name="n", frequency="MONTHLY", timeConfig__dayOfMonth="31", timeConfig__hour="")
    assert preview_body(form) == {
        "frequency": "MONTHLY",
        "timeConfig": {"dayOfMonth": 31, "timezone": "UTC"},
        "count": 8,
    }


def test_a_saved_job_fills_the_form_it_would_be_posted_from() -> None:
    job = {
        "name": "Digest",
        "projectId": "prj_1",
        "type": "SYNC_GITHUB",
        "frequency": "DAILY",
        "timeConfig": {"hour": 9, "minute": 30, "timezone": "UTC"},
        "schedule": "30 9 * * *",
        "isEnabled": True,
        "maxRetries": 3,
        "retryDelay": 300,
        "overlapPolicy": "SKIP",
    }
    values = job_values(job)
    resubmitted = job_body(Form({name: [value] for name, value in values.items()}))
    assert resubmitted == {
        "projectId": "prj_1",
        "type": "SYNC_GITHUB",
        "name": "Digest",
        "frequency": "DAILY",
        "timeConfig": {"hour": 9, "minute": 30, "timezone": "UTC"},
        "isEnabled": True,
        "maxRetries": 3,
        "retryDelay": 300,
        "overlapPolicy": "SKIP",
    }


def test_the_daylight_saving_choices_go_into_time_config_and_come_back() -> None:
    form = _form(
        name="Nightly",
        projectId="prj_1",
        frequency="DAILY",
        timeConfig__hour="2",
        timeConfig__minute="30",
        timeConfig__timezone="Europe/Berlin",
        timeConfig__gapPolicy="SKIP",
        timeConfig__foldPolicy="SECOND",
    )
    body = job_body(form)
    assert body["timeConfig"] == {
        "hour": 2,
        "minute": 30,
        "timezone": "Europe/Berlin",
        "gapPolicy": "SKIP",
        "foldPolicy": "SECOND",
    }
    assert preview_body(form)["timeConfig"] == body["timeConfig"]
    values = job_values({"frequency": "DAILY", "timeConfig": body["timeConfig"]})
    assert (values["timeConfig.gapPolicy"], values["timeConfig.foldPolicy"]) == ("SKIP", "SECOND")
    # A disabled choice is not posted: the job keeps the defaults.
    plain = job_body(_form(name="n", frequency="DAILY", timeConfig__hour="2"))
    assert plain["timeConfig"] == {"hour": 2, "timezone": "UTC"}


def test_the_choices_apply_only_to_a_fixed_local_time() -> None:
    assert dst_applies({"frequency": "WEEKLY"}) is True
    assert dst_applies({"frequency": "CUSTOM", "schedule": "30 2 * * 1-5"}) is True
    assert dst_applies({"frequency": "CUSTOM", "schedule": "*/15 * * * *"}) is False
    assert dst_applies({"frequency": "CUSTOM", "schedule": "0 * * * *"}) is False
    assert dst_applies({"frequency": "CUSTOM", "schedule": "61 * * * *"}) is None
    # Where they do not apply, the preview shows what would be saved: the schedule without them.
    wildcard = _form(
        frequency="CUSTOM",
        schedule="*/15 * * * *",
        timeConfig__gapPolicy="SKIP",
        timeConfig__foldPolicy="SECOND",
    )
    assert preview_body(wildcard)["timeConfig"] == {"timezone": "UTC"}


def test_a_project_keeps_every_platform_and_alert_ticked() -> None:
    form = _form(
        name="demo",
        localRepoPath="demo",
        platforms=["x", "blog", " "],
        notificationEvents=["job_failure", "job_skipped"],
    )
    assert project_body(form) == {
        "name": "demo",
        "platforms": ["x", "blog"],
        "notificationSettings": {"notificationEvents": ["job_failure", "job_skipped"]},
        "localRepoPath": "demo",
    }


def test_a_project_with_no_alert_ticked_asks_for_none() -> None:
    body = project_body(_form(name="demo", localRepoPath="demo", platforms=["x"]))
    assert body["notificationSettings"] == {"notificationEvents": []}


def test_a_github_project_sends_its_installation_and_token_when_given() -> None:
    form = _form(
        name="site",
        githubRepoOwner="octo",
        githubRepoName="site",
        githubInstallationId=" 41002 ",
        githubToken="github_pat_secret",
        platforms=["x"],
    )

    body = project_body(form)

    assert body["githubInstallationId"] == 41002
    assert body["githubToken"] == "github_pat_secret"
    left_empty = project_body(_form(name="s", githubRepoOwner="o", githubRepoName="r"))
    assert "githubInstallationId" not in left_empty and "githubToken" not in left_empty
    # Not a number: sent as typed, so the API names the rule it breaks.
    assert (
        project_body(_form(name="s", githubInstallationId="abc"))["githubInstallationId"] == "abc"
    )


def test_run_conditions_are_sent_only_when_ticked_and_lists_split_on_commas_and_lines() -> None:
    base = {"projectId": "prj_1", "name": "n", "frequency": "DAILY"}
    assert "conditions" not in job_body(_form(**base, conditions__minCommits="5"))
    ticked = _form(
        **base,
        conditions__on="on",
        conditions__minCommits="5",
        conditions__minTotal="lots",
        conditions__includePaths="src/**,\n lib/** \n",
        conditions__excludeLabels="chore, ",
        conditions__ignoreAuthors="",
        conditions__accumulate="on",
    )
    assert job_body(ticked)["conditions"] == {
        "minCommits": 5,
        "minTotal": "lots",  # as typed: the API names the rule it breaks
        "includePaths": ["src/**", "lib/**"],
        "excludeLabels": ["chore"],
        "ignoreAuthors": [],
        "accumulate": True,
    }
    # Unticked on an edit: the conditions are removed.
    assert job_body(_form(**base), job_id="cron_1")["conditions"] is None


def test_saved_conditions_fill_the_form_again() -> None:
    job = {
        "frequency": "DAILY",
        "conditions": {
            "minCommits": 5,
            "minIssues": None,
            "includePaths": ["src/**", "lib/**"],
            "ignoreAuthors": [],
            "accumulate": True,
        },
    }
    values = job_values(job)
    assert values["conditions.on"] == "on"
    assert values["conditions.minCommits"] == "5"
    assert "conditions.minIssues" not in values
    assert values["conditions.includePaths"] == "src/**, lib/**"
    assert values["conditions.ignoreAuthors"] == ""
    assert values["conditions.accumulate"] == "on"
    plain = job_values({"frequency": "DAILY", "conditions": None})
    assert "conditions.on" not in plain
    assert plain["conditions.ignoreAuthors"] == "dependabot[bot], renovate[bot]"


def test_dependencies_are_the_jobs_given_a_choice_in_form_order() -> None:
    form = _form(
        name="b",
        frequency="DAILY",
        dependsOn__cron_a="onSuccess",
        dependsOn__cron_x="",
        dependsOn__cron_c="onFailure",
    )
    assert job_body(form)["dependsOn"] == [
        {"jobId": "cron_a", "on": "onSuccess"},
        {"jobId": "cron_c", "on": "onFailure"},
    ]
    # A new job with none chosen sends none; an edit sends the whole list, [] removing them.
    assert "dependsOn" not in job_body(_form(name="b", dependsOn__cron_a=""))
    assert job_body(_form(name="b", dependsOn__cron_a=""), job_id="cron_b")["dependsOn"] == []


def test_saved_dependencies_fill_the_form_and_refusals_land_on_the_job_they_name() -> None:
    values = job_values({"name": "b", "dependsOn": [{"jobId": "cron_a", "on": "onCompletion"}]})
    assert values["dependsOn.cron_a"] == "onCompletion"
    form = _form(dependsOn__cron_a="onSuccess", dependsOn__cron_gone="onSuccess")
    errors = {
        "dependsOn.1.jobId": "no job cron_gone of yours",
        "dependsOn": "cron_b → cron_a → cron_b would form a cycle",
        "name": "required",
    }
    assert dependency_errors(errors, form) == {
        "dependsOn.cron_gone": "no job cron_gone of yours",
        "dependsOn": "cron_b → cron_a → cron_b would form a cycle",
        "name": "required",
    }


def test_a_webhook_job_sends_its_url_and_an_edit_left_empty_keeps_the_stored_one() -> None:
    made = job_body(_form(name="n", type="WEBHOOK", webhookUrl="https://hooks.example.com/x"))
    assert (made["type"], made["webhookUrl"]) == ("WEBHOOK", "https://hooks.example.com/x")
    # Empty on create: sent, so the API names the field it requires.
    assert job_body(_form(name="n", type="WEBHOOK"))["webhookUrl"] == ""
    assert "webhookUrl" not in job_body(_form(name="n", type="GENERATE_CONTENT"))
    assert "webhookUrl" not in job_body(_form(name="n", webhookUrl=""), job_id="cron_1")
    edited = job_body(_form(name="n", webhookUrl="https://other.example.com/y"), job_id="cron_1")
    assert edited["webhookUrl"] == "https://other.example.com/y"
    assert "type" not in edited
