"""Form posts turned into API bodies, and saved records turned back into form values.

Input names are the API's own field paths (`timeConfig.hour`), so each field error the
API answers lands next to the input it names without a mapping table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from shared.scheduling import FOLD_FIELD, GAP_FIELD, fixed_local_time

PRESET_TIME_FIELDS = {
    "DAILY": ("hour", "minute"),
    "WEEKLY": ("hour", "minute", "dayOfWeek"),
    "MONTHLY": ("hour", "minute", "dayOfMonth"),
    "CUSTOM": (),
}
POLICY_FIELDS = (
    "maxRetries",
    "retryDelay",
    "timeoutSeconds",
    "catchupWindow",
    "jitter",
)
# The run conditions (`conditions.*`): minimums typed as numbers, lists as text.
CONDITION_MINIMUMS = ("minCommits", "minPullRequests", "minIssues", "minTotal")
CONDITION_LISTS = ("includePaths", "excludePaths", "includeLabels", "excludeLabels")
CONDITIONS_ON = "conditions.on"
IGNORED_AUTHORS = "conditions.ignoreAuthors"
DEFAULT_IGNORED = "dependabot[bot], renovate[bot]"
PREVIEW_COUNT = 8
# The daylight-saving choices of a job at a fixed local time, by `timeConfig` key.
DST_FIELDS = (GAP_FIELD, FOLD_FIELD)


class Form:
    """An url-encoded form: first values by name, and every value of repeated names."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self._fields = fields

    @classmethod
    async def read(cls, request: Request) -> Form:
        body = (await request.body()).decode("utf-8", errors="replace")
        return cls(parse_qs(body, keep_blank_values=True))

    def get(self, name: str) -> str:
        values = self._fields.get(name)
        return values[0].strip() if values else ""

    def all(self, name: str) -> list[str]:
        return [value.strip() for value in self._fields.get(name, []) if value.strip()]

    def values(self) -> dict[str, str]:
        """Return the first values by name, to fill the form again after a refusal."""
        return {name: self.get(name) for name in self._fields}


def _number(text: str) -> int | str:
    """Read an int; keep other text as typed, so the API names the rule it breaks."""
    try:
        return int(text)
    except ValueError:
        return text


def _schedule_fields(form: Form) -> dict[str, Any]:
    frequency = form.get("frequency")
    time_config: dict[str, Any] = {"timezone": form.get("timeConfig.timezone") or "UTC"}
    for key in PRESET_TIME_FIELDS.get(frequency, ("hour", "minute")):
        text = form.get(f"timeConfig.{key}")
        if text:
            time_config[key] = _number(text)
    # A disabled choice (the schedule has no fixed local time) is not posted: left out.
    for key in DST_FIELDS:
        if text := form.get(f"timeConfig.{key}"):
            time_config[key] = text
    fields: dict[str, Any] = {"frequency": frequency, "timeConfig": time_config}
    if frequency == "CUSTOM":
        fields["schedule"] = form.get("schedule")
    return fields


def dst_applies(values: Mapping[str, str]) -> bool | None:
    """Tell whether the daylight-saving choices apply to the schedule in a form's values.

    They do for a job at a fixed local time (a preset, or a cron expression whose minute and
    hour fields do not start with `*`), as the API judges it; None while the expression is
    not a valid one.
    """
    return fixed_local_time(values.get("frequency") or "DAILY", values.get("schedule"))


def job_body(form: Form, *, job_id: str | None = None) -> dict[str, Any]:
    """Build the body of `POST /api/cron/schedule`, or of `PATCH` when `job_id` is given."""
    body: dict[str, Any] = {"name": form.get("name"), **_schedule_fields(form)}
    body["isEnabled"] = form.get("isEnabled") == "on"
    description = form.get("description")
    if job_id is not None:
        body["jobId"] = job_id
        body["description"] = description
    else:
        body["projectId"] = form.get("projectId")
        if kind := form.get("type"):
            body["type"] = kind
        if description:
            body["description"] = description
    for name in POLICY_FIELDS:
        if text := form.get(name):
            body[name] = _number(text)
    if policy := form.get("overlapPolicy"):
        body["overlapPolicy"] = policy
    conditions = conditions_body(form)
    if conditions is not None or job_id is not None:
        # On an edit, unticking removes the conditions.
        body["conditions"] = conditions
    return body


def split_list(text: str) -> list[str]:
    """A list typed in one input: items separated by commas or new lines."""
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def conditions_body(form: Form) -> dict[str, Any] | None:
    """The job's `conditions`, or None when "Run only when…" is not ticked."""
    if form.get(CONDITIONS_ON) != "on":
        return None
    body: dict[str, Any] = {}
    for name in CONDITION_MINIMUMS:
        if text := form.get(f"conditions.{name}"):
            body[name] = _number(text)
    for name in CONDITION_LISTS:
        if items := split_list(form.get(f"conditions.{name}")):
            body[name] = items
    body["ignoreAuthors"] = split_list(form.get(IGNORED_AUTHORS))
    body["accumulate"] = form.get("conditions.accumulate") == "on"
    return body


def preview_body(form: Form) -> dict[str, Any]:
    """Build the body of `POST /api/cron/schedule/preview` for the schedule being edited.

    The daylight-saving choices are left out when they do not apply: the form disables them
    then, so they would not be saved, and the preview shows what would be.
    """
    fields = _schedule_fields(form)
    if dst_applies(form.values()) is False:
        for key in DST_FIELDS:
            fields["timeConfig"].pop(key, None)
    return {**fields, "count": PREVIEW_COUNT}


def job_values(job: Mapping[str, Any]) -> dict[str, str]:
    """Turn a saved job into the values of the form that edits it."""
    config = job.get("timeConfig") or {}
    values = {
        "name": job.get("name") or "",
        "description": job.get("description") or "",
        "projectId": job.get("projectId") or "",
        "frequency": job.get("frequency") or "DAILY",
        "schedule": job.get("schedule") or "",
        "isEnabled": "on" if job.get("isEnabled") else "",
        "overlapPolicy": job.get("overlapPolicy") or "SKIP",
    }
    for key in ("hour", "minute", "dayOfWeek", "dayOfMonth", "timezone", *DST_FIELDS):
        if config.get(key) is not None:
            values[f"timeConfig.{key}"] = str(config[key])
    for name in POLICY_FIELDS:
        if job.get(name) is not None:
            values[name] = str(job[name])
    values[IGNORED_AUTHORS] = DEFAULT_IGNORED
    if conditions := job.get("conditions"):
        values[CONDITIONS_ON] = "on"
        for name in CONDITION_MINIMUMS:
            if conditions.get(name) is not None:
                values[f"conditions.{name}"] = str(conditions[name])
        for name in (*CONDITION_LISTS, "ignoreAuthors"):
            values[f"conditions.{name}"] = ", ".join(conditions.get(name) or [])
        values["conditions.accumulate"] = "on" if conditions.get("accumulate") else ""
    return values


NEW_JOB_VALUES = {
    "frequency": "DAILY",
    "timeConfig.hour": "9",
    "timeConfig.minute": "0",
    "timeConfig.dayOfWeek": "1",
    "timeConfig.dayOfMonth": "1",
    "timeConfig.gapPolicy": "SHIFT",
    "timeConfig.foldPolicy": "FIRST",
    "isEnabled": "on",
    "overlapPolicy": "SKIP",
    IGNORED_AUTHORS: DEFAULT_IGNORED,
}


def project_body(form: Form) -> dict[str, Any]:
    """Build the body of `POST /api/projects`: a local repository or a GitHub one."""
    body: dict[str, Any] = {
        "name": form.get("name"),
        "platforms": form.all("platforms"),
        "notificationSettings": {"notificationEvents": form.all("notificationEvents")},
    }
    for name in ("localRepoPath", "githubRepoOwner", "githubRepoName", "githubToken"):
        if text := form.get(name):
            body[name] = text
    if text := form.get("githubInstallationId").strip():
        body["githubInstallationId"] = _number(text)
    return body
