"""The init container's job: give the ConfigMap's spec template this pod's identity and zone.

The agent takes `SPROUT_INSTANCE` and `SPROUT_ZONE` from its spec file (as `sprout aws boot` fills them
from the instance metadata service), and one ConfigMap serves every pod of a colour, so each pod writes
its own copy: the pod name from the downward API, and the zone from the pod label that KEP-4742
(`PodTopologyLabelsAdmission`, beta in Kubernetes 1.35) copies from the node. Without that label the
zone reads "unknown"; the scheduler still spreads pods across zones (topologySpreadConstraints).

Run as `python -m sprout.providers.kubernetes.podspec TEMPLATE OUT`; it imports only the standard library
and `sprout.providers.base`, so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sprout.providers.base import InstanceSpec

#: The zone of a pod whose node's zone label did not reach it.
UNKNOWN_ZONE = "unknown"


def personalise(template: Mapping[str, object], environ: Mapping[str, str]) -> InstanceSpec:
    """The spec of this pod: the template with `instance_id` and `zone` from the environment."""
    instance_id = environ.get("SPROUT_INSTANCE", "")
    if not instance_id:
        raise ValueError("SPROUT_INSTANCE is not set (the pod's downward API env supplies the pod name)")
    data = dict(template)
    data["instance_id"] = instance_id
    data["zone"] = environ.get("SPROUT_ZONE") or UNKNOWN_ZONE
    return InstanceSpec.from_json(data)


def write_spec(template_file: Path, out: Path, environ: Mapping[str, str]) -> InstanceSpec:
    """Read the template, personalise it, write it to `out` (created private), and return it."""
    spec = personalise(json.loads(template_file.read_text(encoding="utf-8")), environ)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(spec.to_json(), handle, indent=2, sort_keys=True)
    return spec


def main(argv: Sequence[str]) -> int:
    """Entry point of the init container; exit status 2 with one line on stderr when it cannot."""
    if len(argv) != 2:
        print("usage: python -m sprout.providers.kubernetes.podspec TEMPLATE OUT", file=sys.stderr)
        return 2
    try:
        spec = write_spec(Path(argv[0]), Path(argv[1]), os.environ)
    except (OSError, ValueError, TypeError) as exc:
        print(f"sprout podspec: cannot write {argv[1]} from {argv[0]}: {exc}", file=sys.stderr)
        return 2
    print(f"sprout podspec: {spec.instance_id} in zone {spec.zone} runs {spec.app}/{spec.env} {spec.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
