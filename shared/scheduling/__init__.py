"""Schedule engine: DST-exact next runs for cron expressions and presets in any IANA zone."""

from shared.scheduling.cronexpr import validate_expression
from shared.scheduling.engine import MAX_COUNT, expression_spec, next_runs, previous_run
from shared.scheduling.errors import ProblemCollector, ScheduleError
from shared.scheduling.presets import (
    FREQUENCIES,
    preset_expression,
    preset_next_runs,
    preset_previous_run,
    validate_preset,
)
from shared.scheduling.preview import preview_preset_runs, preview_runs
from shared.scheduling.zones import validate_timezone

__all__ = [
    "FREQUENCIES",
    "MAX_COUNT",
    "ProblemCollector",
    "ScheduleError",
    "expression_spec",
    "next_runs",
    "preset_expression",
    "preset_next_runs",
    "preset_previous_run",
    "preview_preset_runs",
    "preview_runs",
    "previous_run",
    "validate_expression",
    "validate_preset",
    "validate_timezone",
]
