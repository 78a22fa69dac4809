"""`[[scaling.schedule]]` as CronJobs that patch the HPA's bounds, with exactly the rights that needs."""

from __future__ import annotations

from kubernetes.client import (
    RbacV1Subject,
    V1Container,
    V1CronJob,
    V1CronJobSpec,
    V1JobSpec,
    V1JobTemplateSpec,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
    V1SeccompProfile,
    V1ServiceAccount,
)

from sprout.providers.kubernetes.context import RenderContext
from sprout.providers.kubernetes.pod import RUN_AS, container_security
from sprout.providers.kubernetes.sizes import TOOL
from sprout.spec.scaling import ScheduleEntry


def scheduled(ctx: RenderContext) -> list[tuple[int, ScheduleEntry]]:
    """The schedule entries a CronJob can carry out (numbered from 1): cron ones that set min or max."""
    if not ctx.manifest.scaling.enabled:
        return []
    return [
        (number, entry)
        for number, entry in enumerate(ctx.manifest.scaling.schedule, start=1)
        if entry.cron is not None and (entry.min is not None or entry.max is not None)
    ]


def account_name(ctx: RenderContext) -> str:
    """The ServiceAccount (and Role, RoleBinding) the scheduled jobs run as."""
    return f"{ctx.app}-scheduler"


def rbac(ctx: RenderContext) -> list[V1ServiceAccount | V1Role | V1RoleBinding]:
    """A ServiceAccount allowed one verb on one object: `patch` on this environment's HPA."""
    name = account_name(ctx)
    meta = V1ObjectMeta(name=name, namespace=ctx.namespace, labels=ctx.labels())
    return [
        V1ServiceAccount(api_version="v1", kind="ServiceAccount", metadata=meta),
        V1Role(
            api_version="rbac.authorization.k8s.io/v1",
            kind="Role",
            metadata=meta,
            rules=[
                V1PolicyRule(
                    api_groups=["autoscaling"],
                    resources=["horizontalpodautoscalers"],
                    resource_names=[ctx.hpa_name],
                    verbs=["patch"],
                )
            ],
        ),
        V1RoleBinding(
            api_version="rbac.authorization.k8s.io/v1",
            kind="RoleBinding",
            metadata=meta,
            role_ref=V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
            subjects=[RbacV1Subject(kind="ServiceAccount", name=name, namespace=ctx.namespace)],
        ),
    ]


def patch_command(ctx: RenderContext, entry: ScheduleEntry) -> list[str]:
    """The job's command: `hpapatch` with the entry's bounds."""
    command = [
        "python",
        "-m",
        "sprout.providers.kubernetes.hpapatch",
        "--namespace",
        ctx.namespace,
        "--hpa",
        ctx.hpa_name,
    ]
    if entry.min is not None:
        command += ["--min", str(max(1, entry.min))]
    if entry.max is not None:
        command += ["--max", str(entry.max)]
    return command


def cron_job(ctx: RenderContext, number: int, entry: ScheduleEntry) -> V1CronJob:
    """One scheduled action; times are UTC, as everywhere in Sprout."""
    labels = ctx.labels(**{"sprout.dev/schedule": str(number)})
    pod = V1PodSpec(
        service_account_name=account_name(ctx),
        restart_policy="OnFailure",
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUN_AS,
            run_as_group=RUN_AS,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[
            V1Container(
                name="patch-hpa",
                image=ctx.image,
                command=patch_command(ctx, entry),
                resources=TOOL.requirements(),
                security_context=container_security(),
            )
        ],
    )
    return V1CronJob(
        api_version="batch/v1",
        kind="CronJob",
        metadata=V1ObjectMeta(name=f"{ctx.app}-schedule-{number}", namespace=ctx.namespace, labels=labels),
        spec=V1CronJobSpec(
            schedule=entry.cron,
            time_zone="Etc/UTC",
            concurrency_policy="Forbid",
            # A run missed by more than this (controller down) is skipped; the next one still comes.
            starting_deadline_seconds=300,
            successful_jobs_history_limit=1,
            failed_jobs_history_limit=3,
            job_template=V1JobTemplateSpec(
                metadata=V1ObjectMeta(labels=labels),
                spec=V1JobSpec(
                    backoff_limit=3,
                    active_deadline_seconds=300,
                    ttl_seconds_after_finished=86400,
                    template=V1PodTemplateSpec(metadata=V1ObjectMeta(labels=labels), spec=pod),
                ),
            ),
        ),
    )
