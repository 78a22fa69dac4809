"""The EC2 instance metadata service (IMDSv2): who and where this instance is."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from sprout.errors import ServiceError

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL = "60"


@dataclass(frozen=True)
class Identity:
    """This instance's id and availability zone."""

    instance_id: str
    zone: str


def endpoint() -> str:
    """The metadata endpoint: botocore's `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the link-local address."""
    return (os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def identity(timeout: float = 2.0) -> Identity:
    """Ask the metadata service (session token first, as IMDSv2 requires) for id and zone."""
    base = endpoint()
    try:
        with httpx.Client(base_url=base, timeout=timeout) as http:
            token = (
                http.put("/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL})
                .raise_for_status()
                .text
            )
            headers = {"X-aws-ec2-metadata-token": token}
            instance_id = http.get("/latest/meta-data/instance-id", headers=headers).raise_for_status().text
            zone = (
                http.get("/latest/meta-data/placement/availability-zone", headers=headers)
                .raise_for_status()
                .text
            )
    except httpx.HTTPError as exc:
        raise ServiceError(
            f"instance metadata at {base}: {exc}; `sprout aws boot` runs on EC2 (or set "
            "AWS_EC2_METADATA_SERVICE_ENDPOINT)"
        ) from exc
    return Identity(instance_id.strip(), zone.strip())
