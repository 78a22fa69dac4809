"""The fleet: a launch template and an Auto Scaling group per colour; the idle colour waits at size 0."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Parameter, Ref, Template
from troposphere.autoscaling import AutoScalingGroup, LaunchTemplateSpecification
from troposphere.autoscaling import Tags as AsgTags
from troposphere.ec2 import (
    IamInstanceProfile,
    LaunchTemplate,
    LaunchTemplateData,
    MetadataOptions,
    TagSpecifications,
)
from troposphere.iam import InstanceProfile
from troposphere.policies import (
    AutoScalingRollingUpdate,
    CreationPolicy,
    ResourceSignal,
    UpdatePolicy,
)

from sprout.errors import UserError
from sprout.providers.aws.context import COLOURS, Colour, RenderContext, title
from sprout.providers.aws.data import DataRefs
from sprout.providers.aws.loadbalancer import LoadBalancerRefs
from sprout.providers.aws.network import Network
from sprout.providers.aws.security import SecurityGroups
from sprout.providers.aws.userdata import BOOT_HEALTH_TIMEOUT, user_data

#: Seconds a fresh EC2 instance gets before ELB health counts: as long as its boot waits for the app.
BOOT_GRACE = BOOT_HEALTH_TIMEOUT
#: How long CloudFormation waits for a booting instance's signal (the boot waits 10 min for health).
BOOT_SIGNAL_MINUTES = 15
#: Amazon Linux 2023, resolved by CloudFormation from the public SSM parameter at deploy time.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@dataclass(frozen=True)
class Fleet:
    """The launch template and Auto Scaling group of each colour."""

    launch_templates: dict[Colour, LaunchTemplate]
    groups: dict[Colour, AutoScalingGroup]


def instance_type(ctx: RenderContext) -> str:
    """The EC2 instance type for `[instances] size`, from `[aws] instance_types`."""
    size = ctx.manifest.instances.size
    types = ctx.manifest.aws.instance_types
    if size not in types:
        raise UserError(
            f'[aws] instance_types: no instance type for size "{size}" (known: {", ".join(sorted(types))}); '
            f'add {size} = "t3.small" or similar'
        )
    return types[size]


def boot_policies(ctx: RenderContext, live: bool) -> dict[str, object]:
    """CloudFormation waits for each booting instance's signal (sent once its app is healthy).

    On creation the live colour's first `[instances] min` hosts must signal, so `aws up` fails when none
    gets healthy; a launch template change replaces instances one by one, each waiting for its signal.
    """
    instances = ctx.manifest.instances
    wait = f"PT{BOOT_SIGNAL_MINUTES}M"
    policies: dict[str, object] = {
        "UpdatePolicy": UpdatePolicy(
            AutoScalingRollingUpdate=AutoScalingRollingUpdate(
                MaxBatchSize=1,
                MinInstancesInService=min(instances.min, instances.max - 1) if live else 0,
                PauseTime=wait,
                WaitOnResourceSignals=True,
            )
        )
    }
    if live and instances.min > 0:
        policies["CreationPolicy"] = CreationPolicy(
            ResourceSignal=ResourceSignal(Count=instances.min, Timeout=wait)
        )
    return policies


def add_fleet(
    t: Template,
    ctx: RenderContext,
    network: Network,
    groups: SecurityGroups,
    lb: LoadBalancerRefs,
    profile: InstanceProfile,
    data: DataRefs,
) -> Fleet:
    """Create both colours; the live one at `[instances]` size, the idle one at zero."""
    ami = t.add_parameter(
        Parameter(
            "ImageId",
            Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            Default=AMI_PARAMETER,
            Description="The instances' AMI (Amazon Linux 2023 by default).",
        )
    )
    instances = ctx.manifest.instances
    launch_templates: dict[Colour, LaunchTemplate] = {}
    asgs: dict[Colour, AutoScalingGroup] = {}
    for colour in COLOURS:
        extra = {"KeyName": ctx.manifest.aws.key_name} if ctx.manifest.aws.key_name else {}
        lt = t.add_resource(
            LaunchTemplate(
                f"{title(colour)}LaunchTemplate",
                LaunchTemplateData=LaunchTemplateData(
                    ImageId=Ref(ami),
                    InstanceType=instance_type(ctx),
                    IamInstanceProfile=IamInstanceProfile(Arn=GetAtt(profile, "Arn")),
                    SecurityGroupIds=[GetAtt(groups.instances, "GroupId")],
                    MetadataOptions=MetadataOptions(HttpTokens="required", HttpPutResponseHopLimit=1),
                    UserData=user_data(ctx, data, colour),
                    TagSpecifications=[
                        TagSpecifications(ResourceType="instance", Tags=ctx.tags(**{"sprout:colour": colour}))
                    ],
                    **extra,
                ),
            )
        )
        # The idle colour keeps its maximum (target tracking needs max > min) but runs nothing. Desired
        # capacity is set only when the manifest names one: a stack update must not undo autoscaling.
        live = colour == ctx.live
        desired = (
            {"DesiredCapacity": str(instances.desired)} if live and instances.desired is not None else {}
        )
        asgs[colour] = t.add_resource(
            AutoScalingGroup(
                f"{title(colour)}Group",
                **boot_policies(ctx, live),
                VPCZoneIdentifier=network.private_subnets,
                LaunchTemplate=LaunchTemplateSpecification(
                    LaunchTemplateId=Ref(lt), Version=GetAtt(lt, "LatestVersionNumber")
                ),
                MinSize=str(instances.min if live else 0),
                MaxSize=str(instances.max),
                TargetGroupARNs=[Ref(lb.target_groups[colour])],
                HealthCheckType="ELB",
                HealthCheckGracePeriod=max(int(ctx.manifest.health.grace), BOOT_GRACE),
                **desired,
                Tags=AsgTags(**{"sprout:app": ctx.app, "sprout:env": ctx.env, "sprout:colour": colour}),
            )
        )
        launch_templates[colour] = lt
    return Fleet(launch_templates=launch_templates, groups=asgs)
