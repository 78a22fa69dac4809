"""The `[aws]` section: where and how the aws provider deploys the same manifest."""

from __future__ import annotations

import re

from pydantic import Field, StrictBool, field_validator, model_validator

from sprout.spec.base import Section, quoted

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class AwsSection(Section):
    """Settings for `--provider aws`; every key optional."""

    region: str = "eu-central-1"
    vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]+$")
    subnets: list[str] = Field(default_factory=list, description="Existing subnets, one per zone.")
    instance_types: dict[str, str] = Field(
        default_factory=lambda: {"small": "t3.small", "medium": "t3.medium", "large": "t3.large"}
    )
    hosted_zone: str | None = None
    hosted_zone_id: str | None = Field(
        None, pattern=r"^Z[A-Z0-9]+$", description="The Route53 id of hosted_zone (for create_certificate)."
    )
    certificate_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:acm:", description="The ALB's certificate, in the stack's region."
    )
    cdn_certificate_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:acm:us-east-1:",
        description="CloudFront's certificate for the hosts; CloudFront takes it from us-east-1 only.",
    )
    create_certificate: StrictBool = Field(
        False,
        description="Create a DNS-validated ACM certificate for the hosts in hosted_zone (the load "
        "balancer's; CloudFront's too when the region is us-east-1).",
    )
    http_redirect: StrictBool = Field(
        False,
        description="With a certificate, also listen on port 80 to redirect to HTTPS (opens 80 to the world).",
    )
    ssm: StrictBool = Field(False, description="Let AWS Systems Manager Session Manager reach the instances.")
    cdn: StrictBool = False
    key_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("region")
    @classmethod
    def _valid_region(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError(f'{quoted(value)} is not an AWS region name (e.g. "eu-central-1")')
        return value

    @field_validator("subnets")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not re.fullmatch(r"subnet-[0-9a-f]+", subnet):
                raise ValueError(f'{quoted(subnet)} is not a subnet id (e.g. "subnet-0abc123")')
        return value

    @model_validator(mode="after")
    def _certificate_in_region(self) -> AwsSection:
        # The load balancer takes a certificate from its own region only (CloudFront's is cdn_certificate_arn).
        if self.certificate_arn and f":acm:{self.region}:" not in self.certificate_arn:
            raise ValueError(
                f"certificate_arn must be an ACM certificate in {self.region} (the load balancer's region); "
                "CloudFront's us-east-1 certificate goes in cdn_certificate_arn"
            )
        if self.create_certificate and self.certificate_arn:
            raise ValueError("create_certificate and certificate_arn exclude each other: keep one")
        if self.create_certificate and not (self.hosted_zone and self.hosted_zone_id):
            raise ValueError(
                "create_certificate needs hosted_zone and hosted_zone_id (Route53 → Hosted zones → Hosted "
                "zone ID): ACM validates through records CloudFormation writes there"
            )
        return self

    @property
    def https(self) -> bool:
        """Whether the load balancer has a certificate (given or created) and so listens on HTTPS."""
        return bool(self.certificate_arn or self.create_certificate)
