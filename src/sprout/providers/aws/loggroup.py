"""The environment's CloudWatch Logs group, with retention from `[logs] retention_days`."""

from __future__ import annotations

import bisect

from troposphere import GetAtt, Sub, Template
from troposphere.kms import Key
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
    """Create `/sprout/<app>/<env>`, encrypted with its own KMS key; instances write one stream each."""
    key = t.add_resource(
        Key(
            "LogKey",
            Description=f"{ctx.stack_name}: encrypts the log group {ctx.log_group}",
            EnableKeyRotation=True,
            PendingWindowInDays=7,
            KeyPolicy={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "LogsEncryptThisGroup",
                        "Effect": "Allow",
                        "Principal": {"Service": Sub("logs.${AWS::Region}.${AWS::URLSuffix}")},
                        "Action": [
                            "kms:Encrypt*",
                            "kms:Decrypt*",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:Describe*",
                        ],
                        "Resource": "*",
                        "Condition": {
                            "ArnEquals": {
                                "kms:EncryptionContext:aws:logs:arn": Sub(
                                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                                    + ctx.log_group
                                )
                            }
                        },
                    },
                ],
            },
            Tags=ctx.tags(),
        )
    )
    return t.add_resource(
        LogGroup(
            "LogGroup",
            LogGroupName=ctx.log_group,
            KmsKeyId=GetAtt(key, "Arn"),
            RetentionInDays=retention(ctx.manifest.logs.retention_days),
            Tags=ctx.tags(),
        )
    )
