"""A fixed-time job's daylight-saving policy: gapPolicy SHIFT/SKIP and foldPolicy FIRST/SECOND.

Concrete instants on both transition days in several zones (a one-hour shift in each
hemisphere, Lord Howe's thirty minutes, Santiago's gap at midnight), next and previous runs
agreeing with each other, wildcard-time jobs untouched, and the notes previews show.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.db.schema import CronJob
from shared.dispatch import next_run_after, previous_slot
from shared.scheduling import (
    DstPolicy,
    ScheduleError,
    custom_spec,
    fixed_local_time,
    next_runs,
    preset_next_runs,
    preset_previous_run,
    preview_preset_runs,
    preview_runs,
    previous_run,
)
from shared.scheduling.cronexpr import parse_expression
from shared.scheduling.engine import iter_runs
from shared.scheduling.zones import load_zone

POLICIES = [(None, None), ("SKIP", None), (None, "SECOND"), ("SKIP", "SECOND")]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc(runs: list[datetime]) -> list[str]:
    return [f"{run:%Y-%m-%dT%H:%MZ}" for run in runs]


def runs(
    expression: str, zone: str, after: str, count: int, gap: str | None, fold: str | None
) -> list[str]:
    return utc(next_runs(expression, zone, at(after), count, gap_policy=gap, fold_policy=fold))


# (expression, zone, after, {policy: the three runs from `after`}); the middle day is the
# transition day. SHIFT and FIRST are classic cron's runs (as before the policies existed).
GAPS = [
    # Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T00:00Z",
        {
            "SHIFT": ["2026-03-28T01:30Z", "2026-03-29T01:00Z", "2026-03-30T00:30Z"],
            "SKIP": ["2026-03-28T01:30Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"],
        },
    ),
    # America/New_York, 2026-03-08: 02:00 EST -> 03:00 EDT.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T00:00Z",
        {
            "SHIFT": ["2026-03-07T07:30Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z"],
            "SKIP": ["2026-03-07T07:30Z", "2026-03-09T06:30Z", "2026-03-10T06:30Z"],
        },
    ),
    # Australia/Lord_Howe, 2026-10-04: 02:00 +10:30 -> 02:30 +11 (a thirty-minute gap).
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-02T00:00Z",
        {
            "SHIFT": ["2026-10-02T15:45Z", "2026-10-03T15:30Z", "2026-10-04T15:15Z"],
            "SKIP": ["2026-10-02T15:45Z", "2026-10-04T15:15Z", "2026-10-05T15:15Z"],
        },
    ),
    # Australia/Sydney (southern hemisphere: spring in October), 2026-10-04: 02:00 -> 03:00.
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2026-10-02T00:00Z",
        {
            "SHIFT": ["2026-10-02T16:30Z", "2026-10-03T16:00Z", "2026-10-04T15:30Z"],
            "SKIP": ["2026-10-02T16:30Z", "2026-10-04T15:30Z", "2026-10-05T15:30Z"],
        },
    ),
    # America/Santiago, 2026-09-06: midnight -04 -> 01:00 -03, so the day has no 00:00.
    (
        "0 0 * * *",
        "America/Santiago",
        "2026-09-05T00:00Z",
        {
            "SHIFT": ["2026-09-05T04:00Z", "2026-09-06T04:00Z", "2026-09-07T03:00Z"],
            "SKIP": ["2026-09-05T04:00Z", "2026-09-07T03:00Z", "2026-09-08T03:00Z"],
        },
    ),
]

FOLDS = [
    # Europe/Berlin, 2026-10-25: 03:00 CEST -> 02:00 CET, so 02:30 comes twice.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T00:00Z",
        {
            "FIRST": ["2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z"],
            "SECOND": ["2026-10-24T00:30Z", "2026-10-25T01:30Z", "2026-10-26T01:30Z"],
        },
    ),
    # America/New_York, 2026-11-01: 02:00 EDT -> 01:00 EST.
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T00:00Z",
        {
            "FIRST": ["2026-10-31T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"],
            "SECOND": ["2026-10-31T05:30Z", "2026-11-01T06:30Z", "2026-11-02T06:30Z"],
        },
    ),
    # Australia/Lord_Howe, 2026-04-05: 02:00 +11 -> 01:30 +10:30 (a thirty-minute fold).
    (
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-03T00:00Z",
        {
            "FIRST": ["2026-04-03T14:45Z", "2026-04-04T14:45Z", "2026-04-05T15:15Z"],
            "SECOND": ["2026-04-03T14:45Z", "2026-04-04T15:15Z", "2026-04-05T15:15Z"],
        },
    ),
    # Australia/Sydney (autumn in April), 2026-04-05: 03:00 AEDT -> 02:00 AEST.
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2026-04-03T00:00Z",
        {
            "FIRST": ["2026-04-03T15:30Z", "2026-04-04T15:30Z", "2026-04-05T16:30Z"],
            "SECOND": ["2026-04-03T15:30Z", "2026-04-04T16:30Z", "2026-04-05T16:30Z"],
        },
    ),
    # America/Santiago, 2026-04-05: midnight -03 -> 23:00 -04, so Saturday's 23:30 repeats.
    (
        "30 23 * * *",
        "America/Santiago",
        "2026-04-03T00:00Z",
        {
            "FIRST": ["2026-04-03T02:30Z", "2026-04-04T02:30Z", "2026-04-05T02:30Z"],
            "SECOND": ["2026-04-03T02:30Z", "2026-04-04T02:30Z", "2026-04-05T03:30Z"],
        },
    ),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), GAPS)
@pytest.mark.parametrize("fold", [None, "FIRST", "SECOND"])
def test_gap_policy_shifts_or_skips_the_run_whose_time_does_not_exist(
    expression: str, zone: str, after: str, expected: dict[str, list[str]], fold: str | None
) -> None:
    assert runs(expression, zone, after, 3, None, fold) == expected["SHIFT"]
    assert runs(expression, zone, after, 3, "SHIFT", fold) == expected["SHIFT"]
    assert runs(expression, zone, after, 3, "SKIP", fold) == expected["SKIP"]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), FOLDS)
@pytest.mark.parametrize("gap", [None, "SHIFT", "SKIP"])
def test_fold_policy_runs_a_repeated_time_once_at_the_first_or_second(
    expression: str, zone: str, after: str, expected: dict[str, list[str]], gap: str | None
) -> None:
    assert runs(expression, zone, after, 3, gap, None) == expected["FIRST"]
    assert runs(expression, zone, after, 3, gap, "FIRST") == expected["FIRST"]
    assert runs(expression, zone, after, 3, gap, "SECOND") == expected["SECOND"]


def test_presets_take_the_policy_from_their_time_config() -> None:
    config = {"hour": 2, "minute": 30, "timezone": "Europe/Berlin"}
    spring, autumn = at("2026-03-28T00:00Z"), at("2026-10-24T00:00Z")
    assert utc(preset_next_runs("DAILY", config, spring, 3)) == GAPS[0][3]["SHIFT"]
    skip = {**config, "gapPolicy": "SKIP"}
    assert utc(preset_next_runs("DAILY", skip, spring, 3)) == GAPS[0][3]["SKIP"]
    second = {**config, "foldPolicy": "SECOND"}
    assert utc(preset_next_runs("DAILY", second, autumn, 3)) == FOLDS[0][3]["SECOND"]
    # A weekly preset on the transition Sunday, a monthly one on the 29th (2026-03-29).
    weekly = {**skip, "dayOfWeek": 0}
    assert utc(preset_next_runs("WEEKLY", weekly, spring, 2)) == [
        "2026-04-05T00:30Z",
        "2026-04-12T00:30Z",
    ]
    monthly = {**skip, "dayOfMonth": 29}
    assert utc(preset_next_runs("MONTHLY", monthly, spring, 1)) == ["2026-04-29T00:30Z"]
    # 2026's February has no 29th: the preset runs on its last day; March's run was dropped.
    assert preset_previous_run("MONTHLY", monthly, at("2026-04-29T00:30Z")) == at(
        "2026-02-28T01:30Z"
    )


def test_a_gap_that_holds_several_times_skips_them_all() -> None:
    # SHIFT merges 02:00 and 02:30 into one run at 03:00; SKIP drops both, 03:00 still runs.
    expression, zone, after = "0,30 2,3 * * *", "Europe/Berlin", "2026-03-28T23:00Z"
    assert runs(expression, zone, after, 3, None, None) == [
        "2026-03-29T01:00Z",
        "2026-03-29T01:30Z",
        "2026-03-30T00:00Z",
    ]
    assert runs(expression, zone, after, 3, "SKIP", None) == [
        "2026-03-29T01:00Z",
        "2026-03-29T01:30Z",
        "2026-03-30T00:00Z",
    ]
    assert runs("0,30 2 * * *", zone, after, 2, "SKIP", None) == [
        "2026-03-30T00:00Z",
        "2026-03-30T00:30Z",
    ]


def test_a_fold_with_several_times_runs_each_once_in_the_second_pass() -> None:
    expression, zone, after = "0,30 1-3 * * *", "Europe/Berlin", "2026-10-24T22:00Z"
    # An hour range is a fixed local time: the times of the repeated hour keep their order.
    assert runs(expression, zone, after, 6, None, "SECOND") == [
        "2026-10-24T23:00Z",  # 01:00 CEST
        "2026-10-24T23:30Z",  # 01:30 CEST
        "2026-10-25T01:00Z",  # 02:00 CET
        "2026-10-25T01:30Z",  # 02:30 CET
        "2026-10-25T02:00Z",  # 03:00 CET
        "2026-10-25T02:30Z",  # 03:30 CET
    ]


def test_a_start_inside_the_repeated_hour_still_reaches_the_second_pass() -> None:
    # 00:45Z is 02:45 CEST, in the first pass: 02:30 CET (01:30Z) is still ahead.
    assert runs("30 2 * * *", "Europe/Berlin", "2026-10-25T00:45Z", 1, None, "SECOND") == [
        "2026-10-25T01:30Z"
    ]
    assert runs("30 2 * * *", "Europe/Berlin", "2026-10-25T00:45Z", 1, None, "FIRST") == [
        "2026-10-26T01:30Z"
    ]
    # 01:45Z is 02:45 CET, in the second pass: today's second 02:30 has gone by.
    assert runs("30 2 * * *", "Europe/Berlin", "2026-10-25T01:45Z", 1, None, "SECOND") == [
        "2026-10-26T01:30Z"
    ]


# --- next and previous runs agree --------------------------------------------------------

CONSISTENCY = [
    ("30 2 * * *", "Europe/Berlin", "2026-03-20T00:00Z"),
    ("30 2 * * *", "Europe/Berlin", "2026-10-18T00:00Z"),
    ("0,30 1-3 * * *", "Europe/Berlin", "2026-10-24T12:00Z"),
    ("30 1 * * *", "America/New_York", "2026-10-28T00:00Z"),
    ("30 2 * * *", "America/New_York", "2026-03-05T00:00Z"),
    ("15,45 1,2 * * *", "Australia/Lord_Howe", "2026-04-03T00:00Z"),
    ("15,45 1,2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00Z"),
    ("30 2 * * *", "Australia/Sydney", "2026-10-01T00:00Z"),
    ("0 0 * * *", "America/Santiago", "2026-09-03T00:00Z"),
    ("30 23 * * *", "America/Santiago", "2026-04-01T00:00Z"),
    ("30 2 * 3,10 0L", "Europe/Berlin", "2025-01-01T00:00Z"),
]


@pytest.mark.parametrize(("expression", "zone", "after"), CONSISTENCY)
@pytest.mark.parametrize(("gap", "fold"), POLICIES)
def test_previous_run_walks_back_through_the_next_runs(
    expression: str, zone: str, after: str, gap: str | None, fold: str | None
) -> None:
    forward = next_runs(expression, zone, at(after), 12, gap_policy=gap, fold_policy=fold)
    assert forward == sorted(set(forward))
    backward = [forward[-1]]
    while len(backward) < len(forward):
        earlier = previous_run(expression, zone, backward[-1], gap_policy=gap, fold_policy=fold)
        assert earlier is not None
        backward.append(earlier)
    assert backward[::-1] == forward
    for earlier, later in itertools.pairwise(forward):
        assert next_runs(expression, zone, earlier, 1, gap_policy=gap, fold_policy=fold) == [later]
        # previous(next(t)) for t anywhere between two runs is the earlier run.
        for t in (earlier, earlier + (later - earlier) / 2, later - timedelta(seconds=1)):
            upcoming = next_runs(expression, zone, t, 1, gap_policy=gap, fold_policy=fold)[0]
            assert upcoming == later
            assert previous_run(expression, zone, upcoming, gap_policy=gap, fold_policy=fold) == (
                earlier
            )


TRANSITIONS = (
    ("Europe/Berlin", "2026-03-29T01:00Z"),
    ("Europe/Berlin", "2026-10-25T01:00Z"),
    ("America/New_York", "2026-03-08T07:00Z"),
    ("America/New_York", "2026-11-01T06:00Z"),
    ("Australia/Lord_Howe", "2026-04-04T15:00Z"),
    ("Australia/Lord_Howe", "2026-10-03T15:30Z"),
    ("America/Santiago", "2026-09-06T04:00Z"),
    ("America/Santiago", "2026-04-05T03:00Z"),
)


@settings(max_examples=150, deadline=None)
@given(
    transition=st.sampled_from(TRANSITIONS),
    offset_minutes=st.integers(-36 * 60, 36 * 60),
    minute=st.sampled_from((0, 15, 30, 45)),
    hours=st.sampled_from(("0", "1", "2", "23", "1,2", "0-3", "22-23")),
    policy=st.sampled_from(POLICIES),
)
def test_next_and_previous_are_inverse_around_transitions(
    transition: tuple[str, str],
    offset_minutes: int,
    minute: int,
    hours: str,
    policy: tuple[str | None, str | None],
) -> None:
    zone, instant = transition
    expression = f"{minute} {hours} * * *"
    gap, fold = policy
    t = at(instant) + timedelta(minutes=offset_minutes, seconds=7)
    upcoming = next_runs(expression, zone, t, 2, gap_policy=gap, fold_policy=fold)
    assert t < upcoming[0] < upcoming[1]
    before = previous_run(expression, zone, upcoming[0], gap_policy=gap, fold_policy=fold)
    assert before is not None and before <= t
    assert next_runs(expression, zone, before, 1, gap_policy=gap, fold_policy=fold) == [upcoming[0]]
    assert (
        previous_run(expression, zone, upcoming[1], gap_policy=gap, fold_policy=fold)
        == (upcoming[0])
    )


# --- wildcard-time jobs keep classic cron's behaviour -------------------------------------

WILDCARDS = ("*/15 * * * *", "0 * * * *", "0 */2 * * *", "* 2 * * *", "@hourly", "*/30 2 * * *")


@pytest.mark.parametrize("expression", WILDCARDS)
def test_wildcard_time_jobs_refuse_a_policy_and_the_engine_ignores_one(expression: str) -> None:
    spec = parse_expression(expression)
    assert spec.fixed_time is False
    assert fixed_local_time("CUSTOM", expression) is False
    with pytest.raises(ScheduleError) as refused:
        next_runs(expression, "Europe/Berlin", at("2026-03-29T00:00Z"), 1, gap_policy="SKIP")
    assert refused.value.field == "gapPolicy"
    assert "fixed local time" in refused.value.message
    with pytest.raises(ScheduleError) as both:
        custom_spec(expression, "Europe/Berlin", "SKIP", "SECOND")
    assert [problem.field for problem in both.value.problems] == ["gapPolicy", "foldPolicy"]
    # The defaults, named or not, are accepted: classic cron's behaviour.
    for start in ("2026-03-28T23:00Z", "2026-10-24T23:00Z"):
        plain = next_runs(expression, "Europe/Berlin", at(start), 12)
        named = next_runs(
            expression,
            "Europe/Berlin",
            at(start),
            12,
            gap_policy="SHIFT",
            fold_policy="FIRST",
        )
        assert named == plain
        # The engine itself gives a wildcard job the same runs whatever policy it is handed.
        zone = load_zone("Europe/Berlin")
        for policy in (DstPolicy(), DstPolicy("SKIP", "SECOND")):
            handed = itertools.islice(iter_runs(spec, zone, at(start), policy), 12)
            assert [run for run, _note in handed] == plain


def test_a_wildcard_job_still_runs_in_both_passes_and_never_in_the_gap() -> None:
    # Classic cron for "0,30 * * * *" in Berlin: 02:00 and 02:30 are gone in spring and come
    # twice in autumn.
    spring = runs("0,30 * * * *", "Europe/Berlin", "2026-03-29T00:00Z", 3, None, None)
    assert spring == ["2026-03-29T00:30Z", "2026-03-29T01:00Z", "2026-03-29T01:30Z"]
    autumn = runs("0,30 * * * *", "Europe/Berlin", "2026-10-24T23:45Z", 5, None, None)
    assert autumn == [
        "2026-10-25T00:00Z",
        "2026-10-25T00:30Z",
        "2026-10-25T01:00Z",
        "2026-10-25T01:30Z",
        "2026-10-25T02:00Z",
    ]


@pytest.mark.parametrize(
    ("frequency", "schedule", "fixed"),
    [
        ("DAILY", None, True),
        ("CUSTOM", "30 2 * * *", True),
        ("CUSTOM", "0,30 1-3 * * 1-5", True),
        ("CUSTOM", "@daily", True),
        ("CUSTOM", "0 */2 * * *", False),
        ("CUSTOM", "not cron", None),
    ],
)
def test_fixed_local_time_is_the_engines_own_classification(
    frequency: str, schedule: str | None, fixed: bool | None
) -> None:
    assert fixed_local_time(frequency, schedule) is fixed


# --- values, and schedules SKIP leaves without a run --------------------------------------


@pytest.mark.parametrize(
    ("gap", "fold", "faults"),
    [
        ("skip", None, ["gapPolicy must be one of SHIFT, SKIP, got 'skip'"]),
        (None, "LAST", ["foldPolicy must be one of FIRST, SECOND, got 'LAST'"]),
        (
            1,
            True,
            [
                "gapPolicy must be one of SHIFT, SKIP, got 1",
                "foldPolicy must be one of FIRST, SECOND, got True",
            ],
        ),
    ],
)
def test_unknown_policies_are_refused_naming_each(
    gap: object, fold: object, faults: list[str]
) -> None:
    with pytest.raises(ScheduleError) as refused:
        custom_spec("30 2 * * *", "UTC", gap, fold)
    assert [problem.message for problem in refused.value.problems] == faults


def test_a_preset_names_a_bad_policy_with_its_other_faults() -> None:
    config = {"hour": 24, "minute": 0, "gapPolicy": "NEVER", "timezone": "Nowhere"}
    with pytest.raises(ScheduleError) as refused:
        preset_next_runs("DAILY", config, at("2026-01-01T00:00Z"), 1)
    assert [problem.field for problem in refused.value.problems] == [
        "hour",
        "timezone",
        "gapPolicy",
    ]


def test_a_schedule_whose_every_time_is_in_a_gap_never_fires_under_skip() -> None:
    # The last Sunday of March is Berlin's spring-forward day, every year.
    expression, zone = "30 2 * 3 0L", "Europe/Berlin"
    assert runs(expression, zone, "2026-01-01T00:00Z", 1, None, None) == ["2026-03-29T01:00Z"]
    assert next_runs(expression, zone, at("2026-01-01T00:00Z"), 1, gap_policy="SKIP") == []
    job = CronJob(
        id="cron_gap",
        frequency="CUSTOM",
        schedule=expression,
        time_config={"timezone": zone, "gapPolicy": "SKIP"},
    )
    with pytest.raises(ScheduleError, match="never fires in Europe/Berlin with gapPolicy SKIP"):
        next_run_after(job, at("2026-01-01T00:00Z"))


# --- the scheduler's cached look-ups ------------------------------------------------------


def test_the_scheduler_cache_tells_jobs_apart_by_their_policy() -> None:
    def job(time_config: dict[str, str | int]) -> CronJob:
        return CronJob(
            id="cron_x", frequency="CUSTOM", schedule="30 2 * * *", time_config=time_config
        )

    base: dict[str, str | int] = {"timezone": "Europe/Berlin"}
    spring, autumn = at("2026-03-28T12:00Z"), at("2026-10-24T12:00Z")
    for _ in range(2):  # the second round is answered from the cache
        assert next_run_after(job(base), spring) == at("2026-03-29T01:00Z")
        assert next_run_after(job({**base, "gapPolicy": "SKIP"}), spring) == at("2026-03-30T00:30Z")
        assert next_run_after(job(base), autumn) == at("2026-10-25T00:30Z")
        assert next_run_after(job({**base, "foldPolicy": "SECOND"}), autumn) == at(
            "2026-10-25T01:30Z"
        )
        assert previous_slot(job({**base, "gapPolicy": "SKIP"}), at("2026-03-30T00:30Z")) == at(
            "2026-03-28T01:30Z"
        )
        assert previous_slot(job(base), at("2026-03-30T00:30Z")) == at("2026-03-29T01:00Z")
        preset = CronJob(
            id="cron_p",
            frequency="DAILY",
            schedule="30 2 * * *",
            time_config={"hour": 2, "minute": 30, **base, "foldPolicy": "SECOND"},
        )
        assert next_run_after(preset, autumn) == at("2026-10-25T01:30Z")


# --- what previews say --------------------------------------------------------------------


def notes(rows: list[dict[str, str | None]]) -> list[tuple[str, str | None]]:
    zone_rows = []
    for row in rows:
        local = datetime.fromisoformat(str(row["local"]))
        zone_rows.append((local.strftime("%m-%d %H:%M"), row["note"]))
    return zone_rows


def test_previews_mark_what_each_policy_did() -> None:
    spring = at("2026-03-28T00:00Z")
    assert notes(preview_runs("30 2 * * *", "Europe/Berlin", spring, 3)) == [
        ("03-28 02:30", None),
        ("03-29 03:00", "moved: 02:30 does not exist, ran at 03:00 CEST"),
        ("03-30 02:30", None),
    ]
    assert notes(preview_runs("30 2 * * *", "Europe/Berlin", spring, 3, gap_policy="SKIP")) == [
        ("03-28 02:30", None),
        ("03-30 02:30", "skipped: 02:30 does not exist on 2026-03-29 (gapPolicy SKIP)"),
        ("03-31 02:30", None),
    ]
    night = at("2026-03-28T23:00Z")
    assert notes(preview_runs("0,30 2 * * *", "Europe/Berlin", night, 2, gap_policy="SKIP")) == [
        ("03-30 02:00", "skipped: 02:00, 02:30 do not exist on 2026-03-29 (gapPolicy SKIP)"),
        ("03-30 02:30", None),
    ]


def test_preview_notes_for_fold_second_and_for_skips_across_days() -> None:
    autumn = at("2026-10-24T00:00Z")
    config = {"hour": 2, "minute": 30, "timezone": "Europe/Berlin"}
    assert notes(preview_preset_runs("DAILY", config, autumn, 2)) == [
        ("10-24 02:30", None),
        ("10-25 02:30", "merged: 02:30 occurs twice, ran once at the first (02:30 CEST)"),
    ]
    second = {**config, "foldPolicy": "SECOND"}
    assert notes(preview_preset_runs("DAILY", second, autumn, 2)) == [
        ("10-24 02:30", None),
        (
            "10-25 02:30",
            "merged: 02:30 occurs twice, ran once at the second (02:30 CET, foldPolicy SECOND)",
        ),
    ]
    # March's last Sunday is dropped; October's, a fold, runs at the second 02:30 and says both.
    rows = preview_runs(
        "30 2 * 3,10 0L",
        "Europe/Berlin",
        at("2026-01-01T00:00Z"),
        1,
        gap_policy="SKIP",
        fold_policy="SECOND",
    )
    assert rows[0]["utc"] == "2026-10-25T01:30:00Z"
    assert rows[0]["note"] == (
        "skipped: 02:30 does not exist on 2026-03-29 (gapPolicy SKIP); "
        "merged: 02:30 occurs twice, ran once at the second (02:30 CET, foldPolicy SECOND)"
    )
    # Dropped times of different days are dated one by one: 2026-03-29 and 2027-03-28 are
    # spring-forward days, 2027-03-29 is not.
    years = preview_runs(
        "30 2 28,29 3 *", "Europe/Berlin", at("2026-03-28T12:00Z"), 1, gap_policy="SKIP"
    )
    assert years[0]["local"] == "2027-03-29T02:30:00+02:00"
    assert years[0]["note"] == (
        "skipped: 2026-03-29 02:30, 2027-03-28 02:30 do not exist (gapPolicy SKIP)"
    )
