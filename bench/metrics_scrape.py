"""What a Prometheus scrape of the router costs, and how much of it runs on the event loop.

Builds a router (no sockets) with `--routes` environments of two groups of `--targets` targets each,
counts `--requests` requests per target, then times the two halves of `GET /metrics`: the reading of
the counters on the event loop (it stalls traffic while it runs) and the text exposition by
`prometheus_client` (done on a thread: it slows the loop's thread by sharing the GIL, never stalls it).

    .venv/bin/python bench/metrics_scrape.py [--routes 50] [--targets 2] [--scrapes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

from sprout.router.config import RouterConfig
from sprout.router.metrics import Reading, exposition
from sprout.router.router import Router
from sprout.router.table import parse_table


async def measure(routes: int, targets: int, requests: int, scrapes: int) -> None:
    """Print the page's size and the time of each half of a scrape."""
    router = Router(RouterConfig(), asyncio.get_running_loop(), None, None)
    port = 20000
    table = []
    for i in range(routes):
        groups = []
        for name in ("blue", "green"):
            members = []
            for _ in range(targets):
                port += 1
                members.append({"id": f"t{port}", "address": f"127.0.0.1:{port}", "healthy": True})
            groups.append({"name": name, "targets": members})
        table.append({"name": f"app{i}-production", "hosts": [f"app{i}.localhost"], "groups": groups})
    router.apply_table(parse_table({"routes": table}), persist=False)
    for target in router.targets.values():
        for _ in range(requests):
            status, seconds = random.choice((200, 200, 200, 404, 500)), random.random() / 10
            target.stats.observe(status, seconds)
            target.group_stats.observe(status, seconds)
    start = time.perf_counter()
    for _ in range(scrapes):
        reading = Reading(router)
    read = (time.perf_counter() - start) / scrapes
    start = time.perf_counter()
    for _ in range(scrapes):
        text = exposition(reading)
    written = (time.perf_counter() - start) / scrapes
    lines = len(text.splitlines())
    print(
        f"{len(router.targets)} targets, {routes * 2} groups, {routes} routes: "
        f"{lines} lines, {len(text) / 1024:.0f} KiB per scrape; "
        f"reading on the event loop {read * 1000:.1f} ms, text on a thread {written * 1000:.1f} ms "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    await router.close()


def main() -> None:
    """Parse the options and measure."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--routes", type=int, default=50)
    p.add_argument("--targets", type=int, default=2, help="targets per group")
    p.add_argument("--requests", type=int, default=100, help="requests counted per target")
    p.add_argument("--scrapes", type=int, default=30)
    args = p.parse_args()
    asyncio.run(measure(args.routes, args.targets, args.requests, args.scrapes))


if __name__ == "__main__":
    main()
