"""A job's daylight-saving policy: what a fixed-time job does in a gap and in a fold.

Classic cron (Vixie/Debian), which herald follows by default, runs a job at a fixed local
time whose time does not exist that day (spring forward) once, at the first instant after
the gap (``SHIFT``), and a time that occurs twice (fall back) once, at its first occurrence
(``FIRST``).  A job may choose instead to have no run on the gap day (``gapPolicy SKIP``) or
to run at the second occurrence (``foldPolicy SECOND``).

Only a job at a fixed local time has a choice.  Which jobs those are is the engine's own
classification (``CronSpec.fixed_time``): presets always, and a cron expression whose minute
and hour fields both do not start with ``*`` (``30 2 * * *``, ``0,30 1-3 * * *``).  The
others (``*/15 * * * *``, ``0 * * * *``, ``0 */2 * * *``, ``* 2 * * *``) follow elapsed time
across a transition and keep classic cron's behaviour; a policy other than the default is
refused on them.

In a job's stored ``timeConfig`` the policies are ``gapPolicy`` and ``foldPolicy``; absent
means the default, so jobs stored before the policies existed keep classic cron's behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.scheduling.cronexpr import CronSpec, parse_expression
from shared.scheduling.errors import ProblemCollector, ScheduleError

GAP_FIELD = "gapPolicy"
FOLD_FIELD = "foldPolicy"
# The first of each is the default: classic cron's behaviour.
GAP_POLICIES = ("SHIFT", "SKIP")
FOLD_POLICIES = ("FIRST", "SECOND")
FIXED_TIME_RULE = (
    "applies only to a job at a fixed local time (a preset, or a cron expression whose "
    "minute and hour fields do not start with '*')"
)


@dataclass(frozen=True, slots=True)
class DstPolicy:
    """What a fixed-time job does when its wall time does not exist (gap) or repeats (fold)."""

    gap: str = GAP_POLICIES[0]
    fold: str = FOLD_POLICIES[0]

    @property
    def is_default(self) -> bool:
        return self.gap == GAP_POLICIES[0] and self.fold == FOLD_POLICIES[0]


DEFAULT_POLICY = DstPolicy()


def _choice(value: object, field: str, allowed: tuple[str, ...]) -> str:
    if value is None:
        return allowed[0]
    if not isinstance(value, str) or value not in allowed:
        raise ScheduleError(f"{field} must be one of {', '.join(allowed)}, got {value!r}", field)
    return value


def read_policy(gap_policy: object = None, fold_policy: object = None) -> DstPolicy:
    """Return the policy named by two values (None: the default); a ScheduleError names both."""
    if gap_policy is None and fold_policy is None:
        return DEFAULT_POLICY
    found = ProblemCollector()
    gap = found.check(_choice, gap_policy, GAP_FIELD, GAP_POLICIES)
    fold = found.check(_choice, fold_policy, FOLD_FIELD, FOLD_POLICIES)
    found.raise_found()
    assert gap is not None and fold is not None  # else a problem was raised just above
    return DstPolicy(gap, fold)


def policy_of(time_config: Mapping[str, Any]) -> DstPolicy:
    """Return the policy a stored ``timeConfig`` holds (absent keys: the defaults)."""
    return read_policy(time_config.get(GAP_FIELD), time_config.get(FOLD_FIELD))


def check_applies(policy: DstPolicy, spec: CronSpec) -> None:
    """Raise ScheduleError naming each non-default policy a wildcard-time schedule was given."""
    if spec.fixed_time or policy.is_default:
        return
    found = ProblemCollector()
    for field, value, default in (
        (GAP_FIELD, policy.gap, GAP_POLICIES[0]),
        (FOLD_FIELD, policy.fold, FOLD_POLICIES[0]),
    ):
        if value != default:
            found.add(
                ScheduleError(
                    f"{field} {value} {FIXED_TIME_RULE}; {spec.expression!r} follows elapsed "
                    f"time across daylight-saving changes (leave {field} out, or {default})",
                    field,
                )
            )
    found.raise_found()


def applied_policy(spec: CronSpec, gap_policy: object, fold_policy: object) -> DstPolicy:
    """Read a policy and check that it applies to ``spec``; a ScheduleError names every fault."""
    policy = read_policy(gap_policy, fold_policy)
    check_applies(policy, spec)
    return policy


def fixed_local_time(frequency: str | None, schedule: str | None) -> bool | None:
    """Tell whether a job's schedule is at a fixed local time, so that a policy applies.

    Presets always are; a CUSTOM job's cron expression is classified as the engine does.
    None when the expression is not a valid one (nothing is known then).
    """
    if frequency != "CUSTOM":
        return True
    try:
        return parse_expression(schedule or "").fixed_time
    except ScheduleError:
        return None


def never_fires(expression: str, timezone: str) -> ScheduleError:
    """The error for a schedule gap policy SKIP leaves without a run (``30 2 * 3 0L`` in
    Europe/Berlin: the last Sunday of March is always the spring-forward day)."""
    return ScheduleError(
        f"{expression} never fires in {timezone} with {GAP_FIELD} SKIP: every time it names "
        "falls in a daylight-saving gap",
        GAP_FIELD,
    )
