"""The aws provider: the same manifest as a CloudFormation stack (ALB, two Auto Scaling groups, S3, ...)."""

from sprout.providers.aws.template import render_template, template_json

__all__ = ["render_template", "template_json"]
