"""Container requests and limits per `[instances] size` (the table is documented in docs/kubernetes.md)."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import V1ResourceRequirements

from sprout.errors import UserError


@dataclass(frozen=True)
class PodSize:
    """What one instance of a size asks the scheduler for, and the most it may use."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def requirements(self) -> V1ResourceRequirements:
        """The container's `resources`."""
        return V1ResourceRequirements(
            requests={"cpu": self.cpu_request, "memory": self.memory_request},
            limits={"cpu": self.cpu_limit, "memory": self.memory_limit},
        )


#: Roughly the AWS sizes' shape (t3.small/medium/large) at a quarter of a node each; memory limits
#: equal requests so an instance is never OOM-killed for memory the scheduler did not promise it.
SIZES: dict[str, PodSize] = {
    "small": PodSize("250m", "512Mi", "1", "512Mi"),
    "medium": PodSize("500m", "1Gi", "2", "1Gi"),
    "large": PodSize("1", "2Gi", "2", "2Gi"),
}


#: The short helper containers (the init container, the scheduled HPA patch): measured at 13 MB and
#: 49 MB peak resident, so 128Mi leaves room; they must not inflate the pod's effective request.
TOOL = PodSize("50m", "128Mi", "500m", "128Mi")


def pod_size(size: str) -> PodSize:
    """The requests and limits of a size; an unknown size is a UserError naming the known ones."""
    try:
        return SIZES[size]
    except KeyError:
        known = ", ".join(SIZES)
        raise UserError(
            f"instances.size: no Kubernetes resources for size {size!r} (use one of {known})"
        ) from None
