"""Schedule engine: DST-exact next runs for cron expressions and presets in any IANA zone."""

from shared.scheduling.cronexpr import validate_expression
from shared.scheduling.dst import (
    DEFAULT_POLICY,
    FOLD_FIELD,
    FOLD_POLICIES,
    GAP_FIELD,
    GAP_POLICIES,
    DstPolicy,
    fixed_local_time,
    never_fires,
    policy_of,
)
from shared.scheduling.engine import (
    MAX_COUNT,
    custom_spec,
    expression_spec,
    next_runs,
    previous_run,
)
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
    "DEFAULT_POLICY",
    "FOLD_FIELD",
    "FOLD_POLICIES",
    "FREQUENCIES",
    "GAP_FIELD",
    "GAP_POLICIES",
    "MAX_COUNT",
    "DstPolicy",
    "ProblemCollector",
    "ScheduleError",
    "custom_spec",
    "expression_spec",
    "fixed_local_time",
    "never_fires",
    "next_runs",
    "policy_of",
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
