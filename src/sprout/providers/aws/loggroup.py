"""The environment's CloudWatch Logs group, with retention from `[logs] retention_days`."""

from __future__ import annotations

import bisect

from troposphere import Template
from troposphere.logs import LogGroup

from sprout.providers.aws.context import RenderContext

#: The retention periods CloudWatch Logs accepts, in days.
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def retention(days: int) -> int:
    """The shortest accepted retention that keeps logs at least `days` days."""
    return RETENTION_DAYS[min(bisect.bisect_left(RETENTION_DAYS, days), len(RETENTION_DAYS) - 1)]


def add_log_group(t: Template, ctx: RenderContext) -> LogGroup:
    """Create `/sprout/<app>/<env>`; instances write one stream each."""
    return t.add_resource(
        LogGroup(
            "LogGroup",
            LogGroupName=ctx.log_group,
            RetentionInDays=retention(ctx.manifest.logs.retention_days),
            Tags=ctx.tags(),
        )
    )
