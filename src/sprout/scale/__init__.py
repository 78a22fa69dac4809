"""Autoscaling: pure policies, the stateful scaler the daemon calls each second, and the simulator."""

from sprout.scale.config import Limits
from sprout.scale.model import Decision, Fleet, MetricSample
from sprout.scale.policy import decide
from sprout.scale.scaler import Scaler
from sprout.scale.zones import choose_victims

__all__ = [
    "Decision",
    "Fleet",
    "Limits",
    "MetricSample",
    "Scaler",
    "choose_victims",
    "decide",
]
