"""The pod template of one colour: an init container that writes the spec, the agent, probes, spread."""

from __future__ import annotations

import math

from kubernetes.client import (
    V1Capabilities,
    V1ConfigMapVolumeSource,
    V1Container,
    V1ContainerPort,
    V1EmptyDirVolumeSource,
    V1EnvFromSource,
    V1EnvVar,
    V1EnvVarSource,
    V1HTTPGetAction,
    V1LabelSelector,
    V1Lifecycle,
    V1LifecycleHandler,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1Probe,
    V1SeccompProfile,
    V1SecretEnvSource,
    V1SecurityContext,
    V1SleepAction,
    V1TopologySpreadConstraint,
    V1Volume,
    V1VolumeMount,
)

from sprout.providers.kubernetes.config import SPEC_KEY, secret_names, spec_digest
from sprout.providers.kubernetes.context import (
    APP_PORT,
    CACHE_DIR,
    SPEC_FILE,
    SPEC_TEMPLATE_DIR,
    ZONE_LABEL,
    Colour,
    RenderContext,
)
from sprout.providers.kubernetes.sizes import TOOL, pod_size

#: Seconds a stopping pod keeps serving after Kubernetes removed it from the Service's endpoints: the
#: kube-proxies and ingress controllers learn of the removal asynchronously, so SIGTERM waits for them.
PRESTOP_SLEEP = 5
#: Seconds the agent may need beyond the app's drain to log and exit.
EXIT_MARGIN = 5
#: The unprivileged user the pods run as (the image needs no root: everything writable is a volume).
RUN_AS = 10001


def seconds(value: float) -> int:
    """A manifest duration as the whole seconds Kubernetes wants (at least 1)."""
    return max(1, math.ceil(value))


def termination_grace(ctx: RenderContext) -> int:
    """preStop sleep + `[deploy] drain` (the agent's grace for in-flight requests) + a margin to exit."""
    return PRESTOP_SLEEP + seconds(ctx.manifest.deploy.drain) + EXIT_MARGIN


def probes(ctx: RenderContext) -> tuple[V1Probe, V1Probe, V1Probe]:
    """Readiness, liveness and startup probes from `[health]`.

    Readiness gates traffic (it is what the Service's endpoints follow); liveness restarts a hung
    app; the startup probe holds liveness off for `[health] grace` while the agent bootstraps (fetch,
    install), as the local control plane and an ASG's health-check grace period do.
    """
    health = ctx.manifest.health
    period = seconds(health.interval)

    def probe(success: int, failure: int) -> V1Probe:
        return V1Probe(
            http_get=V1HTTPGetAction(path=health.path, port="http"),
            period_seconds=period,
            timeout_seconds=seconds(health.timeout),
            success_threshold=success,
            failure_threshold=failure,
        )

    readiness = probe(health.healthy_threshold, health.unhealthy_threshold)
    # Kubernetes requires successThreshold 1 for liveness and startup probes.
    liveness = probe(1, health.unhealthy_threshold)
    startup = probe(1, max(1, math.ceil(health.grace / period)))
    return readiness, liveness, startup


def spread(ctx: RenderContext, colour: Colour) -> list[V1TopologySpreadConstraint]:
    """Even across zones (a hard rule: the two-zone promise), then across nodes (best effort)."""
    selector = V1LabelSelector(match_labels=ctx.selector(colour))
    # Per ReplicaSet revision, so a rollout's new pods spread among themselves, not around the old ones.
    revision = ["pod-template-hash"]
    return [
        V1TopologySpreadConstraint(
            max_skew=1,
            topology_key=ZONE_LABEL,
            when_unsatisfiable="DoNotSchedule",
            label_selector=selector,
            match_label_keys=revision,
        ),
        V1TopologySpreadConstraint(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=selector,
            match_label_keys=revision,
        ),
    ]


def _downward(name: str, field_path: str) -> V1EnvVar:
    return V1EnvVar(
        name=name, value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=field_path))
    )


def container_security() -> V1SecurityContext:
    """No privilege escalation, no capabilities, a read-only root filesystem (writes go to volumes)."""
    return V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=V1Capabilities(drop=["ALL"]),
    )


def init_container(ctx: RenderContext) -> V1Container:
    """Writes this pod's spec (pod name, zone) from the ConfigMap's template; see `podspec`."""
    return V1Container(
        name="spec",
        image=ctx.image,
        command=[
            "python",
            "-m",
            "sprout.providers.kubernetes.podspec",
            f"{SPEC_TEMPLATE_DIR}/{SPEC_KEY}",
            SPEC_FILE,
        ],
        env=[
            _downward("SPROUT_INSTANCE", "metadata.name"),
            _downward("SPROUT_ZONE", f"metadata.labels['{ZONE_LABEL}']"),
        ],
        resources=TOOL.requirements(),
        security_context=container_security(),
        volume_mounts=[
            V1VolumeMount(name="config", mount_path=SPEC_TEMPLATE_DIR, read_only=True),
            V1VolumeMount(name="spec", mount_path="/etc/sprout"),
        ],
    )


def app_container(ctx: RenderContext) -> V1Container:
    """The agent: bootstraps the bundle and runs `web` on :8080, exactly as on a machine."""
    readiness, liveness, startup = probes(ctx)
    env_from = None
    if secret_names(ctx.manifest):
        # optional: false: a missing Secret keeps the pod from starting instead of running without it.
        env_from = [V1EnvFromSource(secret_ref=V1SecretEnvSource(name=ctx.secret, optional=False))]
    return V1Container(
        name="app",
        image=ctx.image,
        command=["sprout", "agent", "--spec", SPEC_FILE],
        ports=[V1ContainerPort(name="http", container_port=APP_PORT, protocol="TCP")],
        # pip (the bundle's `install`) wants a writable home for its cache.
        env=[V1EnvVar(name="HOME", value="/tmp")],
        env_from=env_from,
        resources=pod_size(ctx.manifest.instances.size).requirements(),
        readiness_probe=readiness,
        liveness_probe=liveness,
        startup_probe=startup,
        lifecycle=V1Lifecycle(pre_stop=V1LifecycleHandler(sleep=V1SleepAction(seconds=PRESTOP_SLEEP))),
        security_context=container_security(),
        volume_mounts=[
            V1VolumeMount(name="spec", mount_path="/etc/sprout", read_only=True),
            V1VolumeMount(name="cache", mount_path=CACHE_DIR),
            V1VolumeMount(name="tmp", mount_path="/tmp"),
        ],
    )


def pod_template(ctx: RenderContext, colour: Colour) -> V1PodTemplateSpec:
    """The pods of one colour."""
    return V1PodTemplateSpec(
        metadata=V1ObjectMeta(
            labels=ctx.labels(**{"sprout.dev/color": colour, "sprout.dev/version": ctx.version}),
            annotations={
                "sprout.dev/bundle-sha256": ctx.bundle_sha256,
                # A changed spec (new version, env, commands) changes the template, so the pods roll.
                "sprout.dev/spec-sha256": spec_digest(ctx),
            },
        ),
        spec=V1PodSpec(
            # The app never talks to the Kubernetes API: no token in its filesystem.
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=RUN_AS,
                run_as_group=RUN_AS,
                fs_group=RUN_AS,
                seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
            ),
            termination_grace_period_seconds=termination_grace(ctx),
            topology_spread_constraints=spread(ctx, colour),
            init_containers=[init_container(ctx)],
            containers=[app_container(ctx)],
            volumes=[
                V1Volume(
                    name="config",
                    config_map=V1ConfigMapVolumeSource(name=ctx.deployment_name(colour)),
                ),
                V1Volume(name="spec", empty_dir=V1EmptyDirVolumeSource(medium="Memory", size_limit="1Mi")),
                V1Volume(name="cache", empty_dir=V1EmptyDirVolumeSource(size_limit="2Gi")),
                V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource(size_limit="1Gi")),
            ],
        ),
    )
