"""The app's `[secrets]` on AWS: one Secrets Manager secret per environment, written by `up`/`deploy`, read at boot.

Values are resolved on the operator's machine (from its environment or files, as on one machine) and
stored as one JSON object; the instance role may read that secret only, and the agent passes the values
to the app through its environment, never through a file.
"""

from __future__ import annotations

import json
from typing import Any

from troposphere import Sub

from sprout.errors import ServiceError
from sprout.providers.aws.clients import error_code


def secret_name(app: str, env: str) -> str:
    """The Secrets Manager name of an environment's app secrets."""
    return f"sprout/{app}/{env}"


def secret_arn_pattern(app: str, env: str) -> Sub:
    """The ARN of that secret for IAM (Secrets Manager appends six random characters to the name)."""
    return Sub(
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        f"{secret_name(app, env)}-??????"
    )


def store_secrets(client: Any, name: str, values: dict[str, str]) -> None:
    """Write the values as the secret's current version, creating the secret the first time."""
    body = json.dumps(values, sort_keys=True)
    try:
        client.put_secret_value(SecretId=name, SecretString=body)
        return
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise ServiceError(f"secret {name}: cannot store it ({exc})") from exc
    try:
        client.create_secret(Name=name, SecretString=body, Tags=[{"Key": "sprout:secret", "Value": name}])
    except Exception as exc:
        raise ServiceError(f"secret {name}: cannot create it ({exc})") from exc


def fetch_secrets(client: Any, name: str, expected: list[str]) -> dict[str, str]:
    """The secret's values; every expected name must be there."""
    try:
        values = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    except Exception as exc:
        raise ServiceError(
            f"secret {name}: cannot read it ({exc}); run `sprout aws deploy` to store it"
        ) from exc
    missing = [key for key in expected if key not in values]
    if missing:
        raise ServiceError(f"secret {name}: no value for {', '.join(missing)}; run `sprout aws deploy` again")
    return {key: str(values[key]) for key in expected}
