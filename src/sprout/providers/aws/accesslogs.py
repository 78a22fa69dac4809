"""The load balancer's access logs: a private bucket of the stack that only ELB log delivery may write to.

The bucket outlives `sprout aws down` (DeletionPolicy Retain, like the database's final snapshot);
`sprout aws down --purge` empties and deletes it.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.s3 import Bucket as S3Bucket
from troposphere.s3 import (
    BucketEncryption,
    LifecycleConfiguration,
    LifecycleRule,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
)
from troposphere.s3 import BucketPolicy as S3BucketPolicy

from sprout.providers.aws.context import RenderContext
from sprout.providers.aws.skips import skip_checks

#: ELB's log-delivery accounts of the regions that opened before August 2022; newer ones use the service.
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-south-1": "635631232127",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}
#: Days access logs are kept.
ACCESS_LOG_DAYS = 90


def access_log_prefix(ctx: RenderContext) -> str:
    """The key prefix of this environment's access logs."""
    return f"{ctx.app}/{ctx.env}"


def add_access_log_bucket(t: Template, ctx: RenderContext) -> tuple[S3Bucket, S3BucketPolicy]:
    """Create the bucket and the policy that lets the region's ELB deliver logs into it."""
    bucket = t.add_resource(
        S3Bucket(
            "AccessLogBucket",
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BucketEncryption=BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    # ALB log delivery writes SSE-S3 only; a KMS key would make every delivery fail.
                    ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                    )
                ]
            ),
            PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
                BlockPublicAcls=True,
                BlockPublicPolicy=True,
                IgnorePublicAcls=True,
                RestrictPublicBuckets=True,
            ),
            OwnershipControls=OwnershipControls(
                Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
            ),
            LifecycleConfiguration=LifecycleConfiguration(
                Rules=[LifecycleRule(Id="expire", Status="Enabled", ExpirationInDays=ACCESS_LOG_DAYS)]
            ),
            Tags=ctx.tags(),
        )
    )
    skip_checks(
        bucket,
        {
            "CKV_AWS_18": "this bucket holds the access logs; logging access to it would log forever",
            "CKV_AWS_21": "access logs are written once and expire; versions would only keep deleted logs",
        },
    )
    account = ELB_ACCOUNTS.get(ctx.manifest.aws.region)
    principal: dict[str, object] = (
        {"AWS": Sub(f"arn:${{AWS::Partition}}:iam::{account}:root")}
        if account
        else {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    )
    policy = t.add_resource(
        S3BucketPolicy(
            "AccessLogBucketPolicy",
            Bucket=Ref(bucket),
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ElbDelivers",
                        "Effect": "Allow",
                        "Principal": principal,
                        "Action": "s3:PutObject",
                        "Resource": Sub(
                            f"${{AccessLogBucket.Arn}}/{access_log_prefix(ctx)}/AWSLogs/${{AWS::AccountId}}/*"
                        ),
                    },
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [GetAtt(bucket, "Arn"), Sub("${AccessLogBucket.Arn}/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            },
        )
    )
    return bucket, policy
