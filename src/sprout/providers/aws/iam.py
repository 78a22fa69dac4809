"""The instance role: read its bundle prefix and its secrets, write its log group; nothing else."""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.iam import InstanceProfile, Policy, Role
from troposphere.logs import LogGroup

from sprout.providers.aws.context import RenderContext
from sprout.providers.aws.secrets import secret_arn_pattern


def artifact_arns(ctx: RenderContext) -> list[Sub]:
    """The ARN patterns of this app's bundles and Sprout wheels (and nothing else in the bucket)."""
    return [
        Sub(f"arn:${{AWS::Partition}}:s3:::{ctx.bundle_bucket}/{ctx.bundle_prefix}/{folder}/*")
        for folder in ("bundles", "sprout")
    ]


def add_instance_role(
    t: Template, ctx: RenderContext, log_group: LogGroup, secret_arns: tuple[object, ...]
) -> InstanceProfile:
    """Create the role and its instance profile; `secret_arns` are the database's secrets, if any."""
    statements: list[dict[str, object]] = [
        {
            "Sid": "ReadArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": artifact_arns(ctx),
        },
        {
            "Sid": "WriteReleaseResults",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [
                Sub(
                    f"arn:${{AWS::Partition}}:s3:::{ctx.bundle_bucket}/{ctx.bundle_prefix}/releases/{ctx.env}/*"
                )
            ],
        },
        {
            "Sid": "SignalBoot",
            "Effect": "Allow",
            "Action": ["cloudformation:SignalResource"],
            "Resource": [Ref("AWS::StackId")],
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [GetAtt(log_group, "Arn")],
        },
    ]
    if secret_arns:
        # The master secret too: the first boot after `up` and each release phase make the app's user.
        statements.append(
            {
                "Sid": "ReadDatabaseSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": list(secret_arns),
            }
        )
    if ctx.manifest.secrets:
        statements.append(
            {
                "Sid": "ReadAppSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [secret_arn_pattern(ctx.app, ctx.env)],
            }
        )
    # Session Manager is opt-in (`[aws] ssm = true`): without it no one has a shell on an instance.
    managed = (
        {"ManagedPolicyArns": [Sub("arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")]}
        if ctx.manifest.aws.ssm
        else {}
    )
    role = t.add_resource(
        Role(
            "InstanceRole",
            AssumeRolePolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": ["sts:AssumeRole"],
                    }
                ],
            },
            Policies=[
                Policy(
                    PolicyName="sprout-instance",
                    PolicyDocument={"Version": "2012-10-17", "Statement": statements},
                )
            ],
            Tags=ctx.tags(),
            **managed,
        )
    )
    return t.add_resource(InstanceProfile("InstanceProfile", Roles=[Ref(role)]))
