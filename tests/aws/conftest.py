"""A moto server (real HTTP on 127.0.0.1, a free port) for the aws provider's flow tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.core.responses import ActionResult
from moto.server import ThreadedMotoServer

from loopback import free_port

REGION = "eu-central-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; each test starts from a reset backend."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    shared_bundle_cache: Path,
) -> str:
    """Dummy credentials, AWS_ENDPOINT_URL at moto, an empty backend and a private SPROUT_HOME (with the
    run's shared cache: the wheelhouse of Sprout's dependencies is packed once for every test)."""
    # Generous: under load a reset of a big backend takes longer than httpx's 5 s default (seen timing out).
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=120).raise_for_status()
    SIGNALS.clear()
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SPROUT_HOME": str(tmp_path_factory.mktemp("home")),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


def client(service: str) -> object:
    """A boto3 client for moto (the environment set by the `aws` fixture)."""
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="session", autouse=True)
def _moto_launch_template_versions() -> Iterator[None]:
    """Make moto's CreateLaunchTemplateVersion behave like EC2's for the deploy flow.

    moto 5.2 ignores `SourceVersion` and stores the new version's UserData unparsed (CreateLaunchTemplate
    does parse it), so an Auto Scaling group launching from such a version trips moto's own assertion.
    EC2 copies the source version and applies the given changes; this patch does the same.
    """
    from moto.ec2.responses.launch_templates import LaunchTemplates
    from moto.ec2.utils import parse_user_data

    original = LaunchTemplates.create_launch_template_version

    def create_launch_template_version(self: Any) -> Any:
        template = self.ec2_backend.get_launch_template(self._get_param("LaunchTemplateId"))
        source = self._get_param("SourceVersion")
        data = dict(template.get_version(source).data) if source else {}
        data.update(self._get_param("LaunchTemplateData", {}))
        if self._get_param("LaunchTemplateData.UserData"):
            data["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
        version = template.create_version(data, self._get_param("VersionDescription"))
        return ActionResult(
            {
                "LaunchTemplateVersion": {
                    "CreateTime": version.create_time,
                    "DefaultVersion": template.is_default(version),
                    "LaunchTemplateData": version.data,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "VersionDescription": version.description,
                    "VersionNumber": version.number,
                }
            }
        )

    LaunchTemplates.create_launch_template_version = create_launch_template_version  # type: ignore[method-assign]
    try:
        yield
    finally:
        LaunchTemplates.create_launch_template_version = original  # type: ignore[method-assign]


#: The SignalResource calls moto received: (stack, logical id, unique id, status).
SIGNALS: list[tuple[str, str, str, str]] = []


@pytest.fixture(scope="session", autouse=True)
def _moto_signal_resource() -> Iterator[None]:
    """Give moto's CloudFormation the SignalResource action it lacks, recording each signal.

    Booting instances send it when their app is healthy (the stack's CreationPolicy waits for it);
    moto 5 answers NotImplementedError, so the boot test could not see what an instance signalled.
    """
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import EmptyResult

    def signal_resource(self: Any) -> Any:
        SIGNALS.append(
            (
                self._get_param("StackName"),
                self._get_param("LogicalResourceId"),
                self._get_param("UniqueId"),
                self._get_param("Status"),
            )
        )
        return EmptyResult()

    CloudFormationResponse.signal_resource = signal_resource  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del CloudFormationResponse.signal_resource  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _moto_template_gaps() -> Iterator[None]:
    """moto's CloudFormation creates Sprout's whole template (see moto_gaps for what is filled in)."""
    from .moto_gaps import moto_template_support

    with moto_template_support():
        yield
