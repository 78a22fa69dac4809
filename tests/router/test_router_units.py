"""Table-driven unit tests of the pure parts: table validation, host matching, balancing, metrics, cache rules."""

from __future__ import annotations

import bisect
import collections
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprout.errors import UserError
from sprout.router.balancer import Group, choose
from sprout.router.cache import EdgeCache, Entry, cache_lifetime
from sprout.router.metrics import BUCKETS, Stats, bucket_of
from sprout.router.table import HostMatcher, load_table, parse_table, save_table
from sprout.router.target import State, Target

CONTRACT_EXAMPLE = {
    "routes": [
        {
            "name": "microsite-production",
            "hosts": ["microsite.localhost", "*.microsite.localhost"],
            "default": False,
            "cache": False,
            "max_body": 10485760,
            "drain_timeout": 30.0,
            "health": {"path": "/healthz", "interval": 2.0, "timeout": 1.0, "healthy_threshold": 2,
                       "unhealthy_threshold": 3, "expected_status": [200, 399]},
            "groups": [{"name": "blue", "weight": 100, "version": "v3",
                        "targets": [{"id": "i-abc123", "address": "127.0.0.1:41001", "zone": "a", "version": "v3"}]}],
        }
    ]
}  # fmt: skip


def test_contract_example_round_trips(tmp_path):
    spec = parse_table(CONTRACT_EXAMPLE)
    save_table(tmp_path / "t.json", spec)
    again = load_table(tmp_path / "t.json")
    assert again == spec
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["routes"][0]["groups"][0]["targets"][0]["healthy"] is False
    assert not list(tmp_path.glob(".*tmp"))


def test_missing_state_file_is_an_empty_table(tmp_path):
    assert load_table(tmp_path / "absent.json").routes == []


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda t: t["routes"][0]["groups"][0]["targets"][0].update(address="nohost"), "must be host:port"),
        (lambda t: t["routes"].append(dict(t["routes"][0])), "duplicate route name"),
        (lambda t: t["routes"][0]["groups"][0].update(weight=-1), "greater than or equal to 0"),
        (lambda t: t["routes"][0]["health"].update(path="healthz"), "must start with '/'"),
        (lambda t: t["routes"][0].update(colour="red"), "Extra inputs are not permitted"),
        (lambda t: t["routes"][0]["groups"].append(t["routes"][0]["groups"][0]), "duplicate group names"),
    ],
)
def test_invalid_tables_name_the_problem(mutation, message):
    doc = json.loads(json.dumps(CONTRACT_EXAMPLE))
    mutation(doc)
    with pytest.raises(UserError, match=message):
        parse_table(doc)


@pytest.mark.parametrize(
    ("host", "route"),
    [
        ("microsite.localhost", "exact"),
        ("shop.microsite.localhost", "wild"),
        ("a.b.microsite.localhost", "wild"),
        ("deep.special.microsite.localhost", "special"),
        ("other.localhost", "fallback"),
        ("microsite.localhost.evil", "fallback"),
    ],
)
def test_host_matching(host, route):
    spec = parse_table(
        {
            "routes": [
                {"name": "exact", "hosts": ["microsite.localhost"]},
                {"name": "wild", "hosts": ["*.microsite.localhost"]},
                {"name": "special", "hosts": ["*.special.microsite.localhost"]},
                {"name": "fallback", "hosts": [], "default": True},
            ]
        }
    )
    assert HostMatcher(spec).match(host) == route


def _targets(n: int, group: str = "g") -> list[Target]:
    out = []
    for i in range(n):
        t = Target(f"{group}{i}", "127.0.0.1", 1000 + i, lambda _: None)
        t.state = State.HEALTHY
        out.append(t)
    return out


def _group(name: str, weight: int, targets: list[Target]) -> Group:
    g = Group(name, weight, "", targets)
    g.healthy = [t for t in targets if t.state is State.HEALTHY]
    return g


def test_power_of_two_prefers_less_loaded():
    targets = _targets(2)
    targets[0].stats.in_flight = 5
    group = _group("g", 100, targets)
    assert {choose([group]).id for _ in range(50)} == {"g1"}


def test_weights_split_and_zero_weight_gets_nothing():
    a, b, c = (
        _group("a", 75, _targets(2, "a")),
        _group("b", 25, _targets(2, "b")),
        _group("c", 0, _targets(1, "c")),
    )
    seen = collections.Counter(choose([a, b, c]).id[0] for _ in range(4000))
    assert seen == {"a": 3000, "b": 1000}, "smooth weighted round-robin: exact shares"
    canary, stable = _group("canary", 5, _targets(1, "n")), _group("stable", 95, _targets(2, "s"))
    first = [choose([stable, canary]).id[0] for _ in range(100)]
    assert first.count("n") == 5, "5 % means 5 in every 100, not 5 on average"
    assert "".join(first).find("nn") == -1, "spread out, never two canary requests in a row"


def test_exclude_falls_back_to_other_targets_and_none_when_exhausted():
    targets = _targets(2)
    group = _group("g", 100, targets)
    assert choose([group], exclude=[targets[0]]) is targets[1]
    assert choose([group], exclude=targets) is None
    assert choose([_group("g", 100, [])]) is None


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ([True], State.ADDING),
        ([True, True], State.HEALTHY),
        ([True, True, False, False], State.HEALTHY),
        ([True, True, False, False, False], State.UNHEALTHY),
        ([True, True, False, False, False, True, True], State.HEALTHY),
        ([True, False, True], State.ADDING),
    ],
)
def test_health_thresholds(events, final):
    target = _targets(1)[0]
    target.state = State.ADDING
    for ok in events:
        target.record_check(ok, healthy_threshold=2, unhealthy_threshold=3)
    assert target.state is final


def test_quantiles_interpolate_inside_buckets():
    stats = Stats()
    for _ in range(90):
        stats.observe(200, 0.003)
    for _ in range(10):
        stats.observe(503, 0.2)
    snap = stats.snapshot()
    assert snap["requests"]["2xx"] == 90 and snap["requests"]["5xx"] == 10
    assert 0.0025 <= snap["latency"]["p50"] <= 0.005
    assert 0.1 <= snap["latency"]["p99"] <= 0.25
    assert snap["latency"]["buckets"]["+Inf"] == 100


@given(st.one_of(st.floats(min_value=0.0, max_value=60.0), st.sampled_from(BUCKETS)))
def test_a_duration_lands_in_the_bucket_of_the_first_bound_at_or_above_it(seconds: float) -> None:
    assert bucket_of(seconds) == bisect.bisect_left(BUCKETS, seconds)


@pytest.mark.parametrize(
    ("status", "headers", "ttl"),
    [
        (200, [(b"Cache-Control", b"public, max-age=60")], 60),
        (200, [(b"cache-control", b"max-age=60")], 0),
        (200, [(b"Cache-Control", b"public, max-age=60"), (b"Set-Cookie", b"a=b")], 0),
        (200, [(b"Cache-Control", b"public, private, max-age=60")], 0),
        (200, [(b"Cache-Control", b"public, no-store, max-age=60")], 0),
        (200, [(b"Cache-Control", b"public, max-age=60"), (b"Vary", b"Accept-Encoding")], 60),
        (200, [(b"Cache-Control", b"public, max-age=60"), (b"Vary", b"Cookie")], 0),
        (404, [(b"Cache-Control", b"public, max-age=60")], 0),
    ],
)
def test_cache_rules(status, headers, ttl):
    assert cache_lifetime(status, headers) == ttl


def test_cache_lru_stays_in_budget():
    cache = EdgeCache(max_bytes=1000, max_object=500)
    for i in range(10):
        cache.put((b"k", str(i).encode()), Entry(200, b"", b"x" * 200, expires=100.0))
    assert cache.size <= 1000 and len(cache) == 3
    assert cache.get((b"k", b"9"), now=1.0) is not None
    assert cache.get((b"k", b"0"), now=1.0) is None
    assert cache.get((b"k", b"9"), now=200.0) is None


def test_stats_between_two_snapshots_counts_only_the_window() -> None:
    stats = Stats()
    for status, seconds in [(200, 0.002), (200, 0.002), (404, 0.02)]:
        stats.observe(status, seconds)
    before = json.loads(json.dumps(stats.snapshot()))  # as it crosses the API
    stats.in_flight = 3
    for status, seconds in [(200, 0.004), (200, 0.004), (200, 0.004), (503, 0.3)]:
        stats.observe(status, seconds)
    after = json.loads(json.dumps(stats.snapshot()))
    window = Stats.between(before, after)
    assert window.by_class == [0, 3, 0, 0, 1]
    assert window.count == 4
    assert window.total == pytest.approx(0.312)
    assert window.in_flight == 3
    assert sum(window.latency) == 4
    assert 0.0025 < window.quantile(0.5) <= 0.005  # the three 4 ms requests, not the earlier 2 ms ones
    assert 0.25 < window.quantile(0.99) <= 0.5
    # No earlier reading, or counters that went back (the router restarted): everything since its start.
    assert Stats.between(None, after).count == 7
    assert Stats.between(after, before).by_class == [0, 2, 0, 1, 0]
    total = Stats()
    total.add(window)
    total.add(Stats.between(None, before))
    assert (total.count, total.by_class, total.in_flight) == (7, [0, 5, 0, 1, 1], 3)
