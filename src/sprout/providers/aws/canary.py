"""Canary analysis on AWS: a target group's traffic over an interval, from CloudWatch ALB metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sprout.deploy.analysis import Window

NAMESPACE = "AWS/ApplicationELB"


def full_names(listener_arn: str, target_group_arn: str) -> tuple[str, str]:
    """The `app/<name>/<id>` and `targetgroup/<name>/<id>` dimension values CloudWatch uses."""
    load_balancer = "/".join(listener_arn.split(":listener/", 1)[1].split("/")[:3])
    target_group = target_group_arn.split(":", 5)[5]
    return load_balancer, target_group


def window(cloudwatch: Any, listener_arn: str, target_group_arn: str, start: float, end: float) -> Window:
    """Requests, 5xx answers and p95 response time of one target group between two instants."""
    load_balancer, target_group = full_names(listener_arn, target_group_arn)
    dims = [{"Name": "LoadBalancer", "Value": load_balancer}, {"Name": "TargetGroup", "Value": target_group}]
    period = max(60, int(end - start) // 60 * 60 or 60)
    span = {
        "StartTime": datetime.fromtimestamp(start, UTC),
        "EndTime": datetime.fromtimestamp(end, UTC),
        "Period": period,
    }

    def total(metric: str) -> int:
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=metric, Dimensions=dims, Statistics=["Sum"], **span
        )["Datapoints"]
        return int(sum(p.get("Sum", 0) for p in points))

    latency = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName="TargetResponseTime",
        Dimensions=dims,
        ExtendedStatistics=["p95"],
        **span,
    )["Datapoints"]
    p95 = max((float(p.get("ExtendedStatistics", {}).get("p95", 0.0)) for p in latency), default=0.0)
    return Window(requests=total("RequestCount"), errors=total("HTTPCode_Target_5XX_Count"), p95=p95)
