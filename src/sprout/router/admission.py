"""Which entries of a proposed routing table the router applies: each route on its own.

A table is one entry per environment. An entry that is invalid, or that claims a host name, target id
or the default slot another entry holds, is rejected alone: the router keeps that route's previous entry
(or none) and applies every other entry, so one environment's mistake never blocks the others. A host
name goes to the route serving it now; among newcomers, to the first in the table. The rejections are
returned so the control plane can tell the environment concerned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sprout.errors import UserError
from sprout.router.table import RouteSpec, TableSpec
from sprout.spec.rules import host_key


@dataclass(frozen=True)
class Rejection:
    """One route entry the router did not apply, and why."""

    route: str
    error: str

    def to_json(self) -> dict[str, str]:
        """The rejection as the admin API reports it."""
        return {"route": self.route, "error": self.error}


@dataclass(eq=False)
class _Candidate:
    spec: RouteSpec
    proposed: bool


def admit_table(data: Any, current: TableSpec) -> tuple[TableSpec, list[Rejection]]:
    """The table to apply in place of `current`, and the entries of `data` rejected; a document that is
    not a table at all raises UserError (and nothing changes)."""
    entries = _entries(data)
    previous = {route.name: route for route in current.routes}
    rejected: dict[str, Rejection] = {}
    candidates: list[_Candidate] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        name = _entry_name(entry, index)
        if name in names:
            rejected.setdefault(name, Rejection(name, f"duplicate route name {name!r}"))
            continue
        names.add(name)
        try:
            candidates.append(_Candidate(RouteSpec.model_validate(entry), proposed=True))
        except ValidationError as exc:
            rejected[name] = Rejection(name, _problems(exc))
            if name in previous:
                candidates.append(_Candidate(previous[name], proposed=False))
    holders = {host_key(host): route.name for route in current.routes for host in route.hosts}
    while True:
        losers = _conflicts(candidates, holders)
        if not losers:
            break
        for loser, why in losers.items():
            rejected.setdefault(loser.spec.name, Rejection(loser.spec.name, why))
            old = previous.get(loser.spec.name)
            if loser.proposed and old is not None:
                loser.spec, loser.proposed = old, False
            else:
                candidates.remove(loser)
    return TableSpec(routes=[c.spec for c in candidates]), list(rejected.values())


def _entries(data: Any) -> list[Any]:
    """The route entries of a table document; UserError when it is not one."""
    if not isinstance(data, dict) or set(data) - {"routes"} or not isinstance(data.get("routes", []), list):
        raise UserError(
            'routing table: invalid (expected a JSON object {"routes": [...]}); fix the table and send it again'
        )
    return list(data.get("routes", []))


def _entry_name(entry: Any, index: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and name else f"routes[{index}]"


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'route'}: {err['msg']}" for err in exc.errors()
    )


def _conflicts(candidates: list[_Candidate], holders: dict[str, str]) -> dict[_Candidate, str]:
    """Each candidate that loses a host name, a target id or the default slot, with the reason."""
    losers: dict[_Candidate, str] = {}
    claims: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        for host in candidate.spec.hosts:
            claims.setdefault(host_key(host), []).append(candidate)
    for host, claimants in claims.items():
        holder = next((c for c in claimants if c.spec.name == holders.get(host)), claimants[0])
        for other in claimants:
            if other is not holder:
                losers.setdefault(other, f"host {host!r} is already served by route {holder.spec.name!r}")
    targets: dict[str, _Candidate] = {}
    default: _Candidate | None = None
    for candidate in candidates:
        for group in candidate.spec.groups:
            for target in group.targets:
                first = targets.setdefault(target.id, candidate)
                if first is not candidate:
                    losers.setdefault(
                        candidate, f"target id {target.id!r} is already in route {first.spec.name!r}"
                    )
        if candidate.spec.default:
            if default is None:
                default = candidate
            else:
                losers.setdefault(candidate, f"route {default.spec.name!r} is already the default route")
    return losers
