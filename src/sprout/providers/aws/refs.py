"""The deployed stack's moving parts, by physical id: what deploy and rollback act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sprout.errors import NotFoundError
from sprout.providers.aws.context import COLOURS, Colour, title


@dataclass(frozen=True)
class StackRefs:
    """The listener, and per colour the target group ARN, Auto Scaling group name and launch template id."""

    listener_arn: str
    target_groups: dict[Colour, str]
    groups: dict[Colour, str]
    launch_templates: dict[Colour, str]

    @classmethod
    def from_outputs(cls, stack: str, outputs: Mapping[str, str]) -> StackRefs:
        """Read the refs from the stack's outputs (as `template.build` names them)."""
        try:
            return cls(
                listener_arn=outputs["ListenerArn"],
                target_groups={c: outputs[f"{title(c)}TargetGroup"] for c in COLOURS},
                groups={c: outputs[f"{title(c)}Group"] for c in COLOURS},
                launch_templates={c: outputs[f"{title(c)}LaunchTemplate"] for c in COLOURS},
            )
        except KeyError as exc:
            raise NotFoundError(
                f"stack {stack}: output {exc.args[0]} is missing; it was not created by `sprout aws up`"
            ) from exc
