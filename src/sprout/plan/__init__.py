"""Plan and apply: desired state against recorded and observed state → ordered, inert actions."""

from sprout.plan.actions import (
    Action,
    CreateEnvironment,
    Noop,
    SetCapacity,
    SetVersion,
    StartResource,
    StopResource,
    UpdateRoutes,
    UpdateSettings,
)
from sprout.plan.apply import ApplyResult, apply_manifest, build_plan, resolve_version, run
from sprout.plan.executors import ApplyExecutor, DisplayExecutor, Executor
from sprout.plan.planner import Plan, desired_capacity, plan, spread

__all__ = [
    "Action",
    "ApplyExecutor",
    "ApplyResult",
    "CreateEnvironment",
    "DisplayExecutor",
    "Executor",
    "Noop",
    "Plan",
    "SetCapacity",
    "SetVersion",
    "StartResource",
    "StopResource",
    "UpdateRoutes",
    "UpdateSettings",
    "apply_manifest",
    "build_plan",
    "desired_capacity",
    "plan",
    "resolve_version",
    "run",
    "spread",
]
