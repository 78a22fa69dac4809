"""The CloudFormation stack: plan as a change set, apply it with progress, delete it; and the bundle bucket."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sprout.errors import ServiceError
from sprout.providers.aws.clients import error_code

#: CloudFormation takes a template body up to this size inline; larger ones go through S3.
MAX_INLINE_TEMPLATE = 51_200
FAILED_STATES = (
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_FAILED",
)
#: How many times `down` asks CloudFormation to delete a stack whose deletion failed.
DELETE_ATTEMPTS = 3
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


@dataclass(frozen=True)
class Change:
    """One row of a change set: what happens to which resource."""

    action: str
    logical_id: str
    resource_type: str
    replacement: str


@dataclass(frozen=True)
class Plan:
    """A created change set and its changes (empty when the stack already matches)."""

    stack: str
    change_set: str
    kind: str
    changes: tuple[Change, ...]

    def describe(self) -> str:
        """The plan as readable lines."""
        if not self.changes:
            return f"stack {self.stack}: no changes"
        verb = "create" if self.kind == "CREATE" else "update"
        lines = [f"stack {self.stack}: {verb}, {len(self.changes)} change(s) (change set {self.change_set})"]
        symbols = {"Add": "+", "Remove": "-", "Modify": "~", "Import": ">", "Dynamic": "?"}
        width = max(len(c.logical_id) for c in self.changes)
        for c in self.changes:
            note = f"  (replacement: {c.replacement})" if c.replacement not in ("", "False") else ""
            lines.append(f"  {symbols.get(c.action, '?')} {c.logical_id:<{width}}  {c.resource_type}{note}")
        return "\n".join(lines)


def bucket_name(account: str, region: str) -> str:
    """The default bundle bucket of an account and region."""
    return f"sprout-{account}-{region}"


def ensure_bucket(s3: Any, bucket: str, region: str) -> bool:
    """Create the private bundle bucket unless it exists; return whether it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise ServiceError(f"bucket {bucket}: {exc}; pick another name with --bucket") from exc
    args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return True


class Stack:
    """One environment's stack; every call goes through the CloudFormation client given."""

    def __init__(self, cfn: Any, s3: Any, name: str, bucket: str, prefix: str) -> None:
        self.cfn = cfn
        self.s3 = s3
        self.name = name
        self.bucket = bucket
        self.prefix = prefix

    def status(self) -> str | None:
        """The stack's status, or None when there is no such stack (or only a never-executed plan)."""
        status = self.raw_status()
        return None if status in (None, "REVIEW_IN_PROGRESS", "DELETE_COMPLETE") else status

    def outputs(self) -> dict[str, str]:
        """The stack's outputs by key."""
        stacks = self.cfn.describe_stacks(StackName=self.name)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def _template_args(self, template: dict[str, Any]) -> dict[str, str]:
        body = json.dumps(template, sort_keys=True, separators=(",", ":"))
        if len(body) <= MAX_INLINE_TEMPLATE:
            return {"TemplateBody": body}
        key = f"{self.prefix}/templates/{hashlib.sha256(body.encode()).hexdigest()}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        return {"TemplateURL": f"https://{self.bucket}.s3.amazonaws.com/{key}"}

    def plan(
        self, template: dict[str, Any], poll: float = 2.0, sleep: Callable[[float], None] = time.sleep
    ) -> Plan:
        """Create a change set for `template` and wait until CloudFormation has computed it."""
        kind = "UPDATE" if self.status() else "CREATE"
        name = f"sprout-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        try:
            self.cfn.create_change_set(
                StackName=self.name,
                ChangeSetName=name,
                ChangeSetType=kind,
                Capabilities=["CAPABILITY_IAM"],
                Tags=[{"Key": "sprout:stack", "Value": self.name}],
                **self._template_args(template),
            )
        except Exception as exc:
            raise ServiceError(f"stack {self.name}: cannot create a change set: {exc}") from exc
        while True:
            found = self.cfn.describe_change_set(StackName=self.name, ChangeSetName=name)
            status = found.get("Status", "")
            if status == "FAILED":
                reason = str(found.get("StatusReason", ""))
                if any(text in reason for text in NO_CHANGES):
                    self.cfn.delete_change_set(StackName=self.name, ChangeSetName=name)
                    return Plan(self.name, name, kind, ())
                raise ServiceError(f"stack {self.name}: change set {name} failed: {reason}")
            if status == "CREATE_COMPLETE":
                break
            sleep(poll)
        changes = tuple(
            Change(
                action=str(rc.get("Action", "")),
                logical_id=str(rc.get("LogicalResourceId", "")),
                resource_type=str(rc.get("ResourceType", "")),
                replacement=str(rc.get("Replacement", "")),
            )
            for rc in (c.get("ResourceChange", {}) for c in found.get("Changes", []))
        )
        return Plan(self.name, name, kind, changes)

    def apply(
        self,
        plan: Plan,
        report: Callable[[str], None],
        poll: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Execute the plan's change set and wait, reporting each stack event; return the final status."""
        if not plan.changes:
            return self.status() or "NO_CHANGES"
        seen = {e["EventId"] for e in self._events()}
        self.cfn.execute_change_set(StackName=self.name, ChangeSetName=plan.change_set)
        return self._wait(report, seen, poll, sleep)

    def raw_status(self) -> str | None:
        """CloudFormation's own status of the stack (REVIEW_IN_PROGRESS: only a plan), or None."""
        try:
            stacks = self.cfn.describe_stacks(StackName=self.name)["Stacks"]
        except Exception as exc:
            if "does not exist" in str(exc):
                return None
            raise ServiceError(f"stack {self.name}: {exc}") from exc
        return str(stacks[0]["StackStatus"]) if stacks else None

    def physical_id(self, logical_id: str) -> str | None:
        """The physical id of one of the stack's resources, or None when it has none."""
        try:
            found = self.cfn.describe_stack_resource(StackName=self.name, LogicalResourceId=logical_id)
        except Exception:
            return None
        value = found.get("StackResourceDetail", {}).get("PhysicalResourceId")
        return str(value) if value else None

    def delete(
        self,
        report: Callable[[str], None],
        poll: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = DELETE_ATTEMPTS,
    ) -> str:
        """Delete the stack (and so its change sets) and wait; a failed deletion is retried.

        A first deletion often fails on a dependency AWS releases a little later (an ALB's network
        interfaces, a NAT gateway's address); the retry then finishes it. The bucket is not part of it.
        """
        status = self.raw_status()
        if status in (None, "DELETE_COMPLETE"):
            return "DELETE_COMPLETE"
        self._delete_pending_change_sets(report)
        for attempt in range(1, attempts + 1):
            seen = {e["EventId"] for e in self._events()}
            try:
                self.cfn.delete_stack(StackName=self.name)
                return self._wait(report, seen, poll, sleep)
            except Exception as exc:
                if not isinstance(exc, ServiceError) and error_code(exc) != "DependencyViolation":
                    raise
                if attempt == attempts:
                    raise ServiceError(
                        f"stack {self.name}: still DELETE_FAILED after {attempts} attempts; remove what the "
                        "events above name by hand, then run `sprout aws down` again"
                    ) from None
                report(f"stack {self.name}: deletion failed ({exc}); retrying ({attempt + 1}/{attempts})")
                sleep(poll)
        return "DELETE_COMPLETE"

    def _delete_pending_change_sets(self, report: Callable[[str], None]) -> None:
        """Delete the change sets nobody executed (plans); CloudFormation drops executed ones itself."""
        pages = self.cfn.get_paginator("list_change_sets").paginate(StackName=self.name)
        for page in pages:
            for summary in page.get("Summaries", []):
                if summary.get("ExecutionStatus") == "EXECUTE_COMPLETE":
                    continue
                self.cfn.delete_change_set(StackName=self.name, ChangeSetName=summary["ChangeSetName"])
                report(f"change set {summary['ChangeSetName']}: deleted (never executed)")

    def _events(self) -> list[dict[str, Any]]:
        try:
            events: list[dict[str, Any]] = self.cfn.describe_stack_events(StackName=self.name)["StackEvents"]
        except Exception:
            return []
        return events

    def _wait(
        self, report: Callable[[str], None], seen: set[str], poll: float, sleep: Callable[[float], None]
    ) -> str:
        while True:
            for event in reversed(self._events()):
                if event["EventId"] in seen:
                    continue
                seen.add(event["EventId"])
                reason = f" - {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                report(f"{event['LogicalResourceId']} {event['ResourceStatus']}{reason}")
            status = self.status() or "DELETE_COMPLETE"
            if not status.endswith("_IN_PROGRESS"):
                if status in FAILED_STATES:
                    raise ServiceError(f"stack {self.name} ended {status}; see the events above")
                return status
            sleep(poll)
