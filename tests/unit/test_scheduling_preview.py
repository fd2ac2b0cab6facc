"""Preview rows and the ``herald schedule preview`` command."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer
from typer.testing import CliRunner

from shared.scheduling import ScheduleError, preview_preset_runs, preview_runs
from shared.scheduling.preview_cli import schedule_app

NY = "America/New_York"


def test_preview_rows_have_local_utc_and_note() -> None:
    rows = preview_runs("30 2 * * *", NY, datetime(2025, 3, 8, tzinfo=UTC), 3)
    assert rows == [
        {"local": "2025-03-08T02:30:00-05:00", "utc": "2025-03-08T07:30:00Z", "note": None},
        {
            "local": "2025-03-09T03:00:00-04:00",
            "utc": "2025-03-09T07:00:00Z",
            "note": "moved: 02:30 does not exist, ran at 03:00 EDT",
        },
        {"local": "2025-03-10T02:30:00-04:00", "utc": "2025-03-10T06:30:00Z", "note": None},
    ]


def test_preview_notes_for_merges_repeats_and_skips() -> None:
    merged = preview_runs("0,30 2 * * *", NY, datetime(2025, 3, 9, tzinfo=UTC), 1)
    assert merged[0]["note"] == "merged: 02:00, 02:30 do not exist, ran once at 03:00 EDT"
    fold = preview_runs("30 1 * * *", NY, datetime(2025, 11, 2, tzinfo=UTC), 1)
    assert fold[0]["note"] == "merged: 01:30 occurs twice, ran once at the first (01:30 EDT)"
    repeat = preview_runs("30 * * * *", NY, datetime(2025, 11, 2, 5, tzinfo=UTC), 2)
    assert [row["note"] for row in repeat] == [
        "repeated: 01:30 occurs twice, this is the first (01:30 EDT)",
        "repeated: 01:30 occurs twice, this is the second (01:30 EST)",
    ]
    skipped = preview_runs("*/30 * * * *", NY, datetime(2025, 3, 9, 6, 40, tzinfo=UTC), 1)
    assert skipped[0]["note"] == "skipped: 02:00, 02:30 do not exist"
    apia = preview_runs("0 9 * * *", "Pacific/Apia", datetime(2011, 12, 29, 20, tzinfo=UTC), 1)
    assert apia[0]["note"] == "moved: 2011-12-30 09:00 does not exist, ran at 00:00 +14"


def test_preview_presets() -> None:
    config = {"hour": 2, "minute": 30, "timezone": NY}
    rows = preview_preset_runs("DAILY", config, datetime(2025, 3, 8, 12, tzinfo=UTC), 1)
    assert rows[0]["utc"] == "2025-03-09T07:00:00Z"
    assert rows[0]["note"] == "moved: 02:30 does not exist, ran at 03:00 EDT"
    with pytest.raises(ScheduleError, match="dayOfWeek required for WEEKLY"):
        preview_preset_runs("WEEKLY", config, datetime(2025, 3, 8, tzinfo=UTC), 1)


def cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.add_typer(schedule_app, name="schedule")
    result = CliRunner().invoke(app, ["schedule", "preview", *args])
    return result.exit_code, result.output


def test_cli_expression() -> None:
    code, output = cli("30 2 * * *", "--tz", NY, "--count", "2", "--after", "2025-03-08T12:00Z")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[1].startswith("2025-03-09 03:00 EDT (-0400)  2025-03-09T07:00:00Z")
    assert lines[1].endswith("moved: 02:30 does not exist, ran at 03:00 EDT")
    assert lines[2].startswith("2025-03-10 02:30 EDT (-0400)  2025-03-10T06:30:00Z")


def test_cli_preset() -> None:
    code, output = cli(
        "--frequency",
        "WEEKLY",
        "--hour",
        "9",
        "--minute",
        "0",
        "--day-of-week",
        "1",
        "--tz",
        "Europe/London",
        "--count",
        "2",
        "--after",
        "2025-03-25T00:00:00+00:00",
    )
    assert code == 0, output
    assert "2025-03-31 09:00 BST (+0100)  2025-03-31T08:00:00Z" in output
    assert "2025-04-07 09:00 BST (+0100)  2025-04-07T08:00:00Z" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0 0 * * *", "--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("61 0 * * *",), "minute 61 out of range 0-59"),
        (("--frequency", "WEEKLY", "--hour", "9"), "dayOfWeek required for WEEKLY"),
        (("0 0 * * *", "--count", "0"), "count 0 out of range 1-1000"),
    ],
)
def test_cli_reports_schedule_errors(args: tuple[str, ...], message: str) -> None:
    code, output = cli(*args)
    assert code == 2
    assert message in output


def test_cli_needs_a_schedule() -> None:
    code, output = cli("--after", "2025-01-01T00:00Z")
    assert code == 2
    assert "give a cron expression or --frequency" in output


def test_preview_reports_the_schedule_zone_and_count_together() -> None:
    after = datetime(2025, 3, 8, tzinfo=UTC)
    with pytest.raises(ScheduleError) as caught:
        preview_runs("* * * * 9", "Mars/Base", after, 0)
    assert [p.field for p in caught.value.problems] == ["day-of-week", "timezone", "count"]
    with pytest.raises(ScheduleError) as preset:
        preview_preset_runs("WEEKLY", {"hour": 24, "minute": 0}, after, 0)
    assert [p.message for p in preset.value.problems] == [
        "hour 24 out of range 0-23",
        "dayOfWeek required for WEEKLY",
        "count 0 out of range 1-1000",
    ]


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ("--frequency", "WEEKLY", "--tz", "Mars/Base"),
            [
                "error: --hour: hour required for WEEKLY",
                "error: --day-of-week: dayOfWeek required for WEEKLY",
                "error: --tz: unknown time zone 'Mars/Base'",
            ],
        ),
        (
            ("--frequency", "MONTHLY", "--hour", "9", "--day-of-month", "32", "--count", "0"),
            [
                "error: --day-of-month: dayOfMonth 32 out of range 1-31",
                "error: --count: count 0 out of range 1-1000",
            ],
        ),
        (
            ("61 25 * * *", "--tz", "Mars/Base"),
            [
                "error: EXPRESSION: minute 61 out of range 0-59",
                "error: EXPRESSION: hour 25 out of range 0-23",
                "error: --tz: unknown time zone 'Mars/Base'",
            ],
        ),
    ],
)
def test_cli_prints_every_problem_on_its_own_line(args: tuple[str, ...], lines: list[str]) -> None:
    code, output = cli(*args)
    assert code == 2
    assert output.splitlines() == lines


def test_cli_takes_the_daylight_saving_policy() -> None:
    berlin = ("--tz", "Europe/Berlin", "--count", "2")
    code, output = cli(
        "30 2 * * *", *berlin, "--after", "2026-03-28T12:00Z", "--gap-policy", "skip"
    )
    assert code == 0, output
    lines = output.splitlines()
    assert lines[1].startswith("2026-03-30 02:30 CEST (+0200)  2026-03-30T00:30:00Z")
    assert lines[1].endswith("skipped: 02:30 does not exist on 2026-03-29 (gapPolicy SKIP)")
    code, output = cli(
        "--frequency",
        "DAILY",
        "--hour",
        "2",
        "--minute",
        "30",
        *berlin,
        "--after",
        "2026-10-24T12:00Z",
        "--fold-policy",
        "SECOND",
    )
    assert code == 0, output
    assert output.splitlines()[1] == (
        "2026-10-25 02:30 CET (+0100)  2026-10-25T01:30:00Z  "
        "merged: 02:30 occurs twice, ran once at the second (02:30 CET, foldPolicy SECOND)"
    )


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ("*/15 * * * *", "--gap-policy", "SKIP", "--fold-policy", "SECOND"),
            [
                "error: --gap-policy: gapPolicy SKIP applies only to a job at a fixed local time "
                "(a preset, or a cron expression whose minute and hour fields do not start with "
                "'*'); '*/15 * * * *' follows elapsed time across daylight-saving changes "
                "(leave gapPolicy out, or SHIFT)",
                "error: --fold-policy: foldPolicy SECOND applies only to a job at a fixed local "
                "time (a preset, or a cron expression whose minute and hour fields do not start "
                "with '*'); '*/15 * * * *' follows elapsed time across daylight-saving changes "
                "(leave foldPolicy out, or FIRST)",
            ],
        ),
        (
            ("--frequency", "DAILY", "--hour", "25", "--gap-policy", "NEVER"),
            [
                "error: --hour: hour 25 out of range 0-23",
                "error: --gap-policy: gapPolicy must be one of SHIFT, SKIP, got 'NEVER'",
            ],
        ),
    ],
)
def test_cli_refuses_a_policy_naming_its_option(args: tuple[str, ...], lines: list[str]) -> None:
    code, output = cli(*args)
    assert code == 2
    assert output.splitlines() == lines
