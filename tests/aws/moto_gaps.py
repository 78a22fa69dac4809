"""Where moto's CloudFormation falls short of AWS for Sprout's template, filled in for the tests only.

Each patch names the gap it fills; the template itself is never changed to suit moto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _kms_key_tags(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto passes a KMS key's CloudFormation tags (Key/Value) to the KMS API, which spells TagKey/TagValue."""

    def create(cls: Any, name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])
        ]
        return original.__func__(
            cls, name, {**cloudformation_json, "Properties": properties}, *args, **kwargs
        )

    return create


def _weighted_forward(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's CloudFormation listener knows `forward` to one TargetGroupArn only, not a weighted ForwardConfig."""

    def convert(self: Any, properties: dict[str, Any]) -> list[dict[str, Any]]:
        weighted = [a for a in properties["DefaultActions"] if "ForwardConfig" in a]
        rest = [a for a in properties["DefaultActions"] if "ForwardConfig" not in a]
        converted: list[dict[str, Any]] = original(self, {**properties, "DefaultActions": rest})
        return weighted + converted

    return convert


def _change_set_outputs(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto executes a change set's resources but keeps the stack's old (empty) outputs; AWS updates them."""

    def apply(self: Any) -> None:
        original(self)
        self.stack.template_dict = self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    return apply


@contextmanager
def moto_template_support() -> Iterator[None]:
    """Apply the patches while the context lasts."""
    from moto.cloudformation.models import ChangeSet
    from moto.elbv2.models import ELBv2Backend
    from moto.kms.models import Key

    saved_key = Key.__dict__["create_from_cloudformation_json"]
    saved_convert = ELBv2Backend.convert_and_validate_properties
    saved_apply = ChangeSet.apply
    ChangeSet.apply = _change_set_outputs(saved_apply)  # type: ignore[method-assign]
    Key.create_from_cloudformation_json = classmethod(_kms_key_tags(saved_key))  # type: ignore[method-assign,assignment,arg-type]
    ELBv2Backend.convert_and_validate_properties = _weighted_forward(saved_convert)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Key.create_from_cloudformation_json = saved_key  # type: ignore[method-assign]
        ELBv2Backend.convert_and_validate_properties = saved_convert  # type: ignore[method-assign]
        ChangeSet.apply = saved_apply  # type: ignore[method-assign]
