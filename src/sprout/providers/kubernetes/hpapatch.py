"""A scheduled action's job: set the HPA's minReplicas/maxReplicas (runs in-cluster from a CronJob).

Run as `python -m sprout.providers.kubernetes.hpapatch --namespace NS --hpa NAME [--min N] [--max N]`.
Its ServiceAccount may only `patch` that one HPA, so it sends one merge patch and reads nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def patch_body(min_replicas: int | None, max_replicas: int | None) -> dict[str, Any]:
    """The merge patch that sets the given bounds; a bound not given is left as it is."""
    spec: dict[str, int] = {}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if max_replicas is not None:
        spec["maxReplicas"] = max_replicas
    if not spec:
        raise ValueError("give --min, --max or both")
    return {"spec": spec}


def main(argv: Sequence[str]) -> int:
    """Entry point of the scheduled job; a failure exits non-zero so the Job retries it."""
    parser = argparse.ArgumentParser(prog="hpapatch", description="Set an HPA's replica bounds.")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--hpa", required=True)
    parser.add_argument("--min", type=int, dest="min_replicas")
    parser.add_argument("--max", type=int, dest="max_replicas")
    args = parser.parse_args(argv)
    try:
        body = patch_body(args.min_replicas, args.max_replicas)
    except ValueError as exc:
        parser.error(str(exc))
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    config.load_incluster_config()  # type: ignore[no-untyped-call]
    api = client.AutoscalingV2Api()
    try:
        # The client's default Content-Type for a patch is a JSON Patch; a dict body is a merge patch.
        api.patch_namespaced_horizontal_pod_autoscaler(
            args.hpa, args.namespace, body, _content_type="application/merge-patch+json"
        )
    except ApiException as exc:
        print(f"hpapatch: {args.namespace}/{args.hpa}: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    print(f"hpapatch: {args.namespace}/{args.hpa} set to {body['spec']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
