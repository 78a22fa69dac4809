"""boto3 clients from the standard credential chain; `AWS_ENDPOINT_URL` points them at moto or LocalStack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sprout.errors import ServiceError, SproutError, UserError


def client(service: str, region: str) -> Any:
    """A boto3 client for `service` in `region`, honouring `AWS_ENDPOINT_URL`."""
    import boto3

    make: Any = boto3.client  # one factory for every service name; the stubs overload per literal name
    try:
        return make(service, region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    except Exception as exc:
        raise UserError(
            f"aws {service} in {region}: cannot create a client ({exc}); check AWS credentials"
        ) from exc


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def reported(resource: str, step: str) -> Iterator[None]:
    """Turn any AWS failure inside into one ServiceError line: the resource, AWS's words, the next step."""
    try:
        yield
    except SproutError:
        raise
    except Exception as exc:
        code = error_code(exc)
        response: Any = getattr(exc, "response", None)
        message = str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""
        words = f"{code}: {message}" if code else (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ServiceError(f"{resource}: {words}; {step}") from exc
