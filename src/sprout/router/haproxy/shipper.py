"""The HAProxy engine's access-log shipper: HAProxy's log lines in, the router's access files out.

HAProxy logs one line per request, already in the access files' format (`sprout.accessfiles`), into a
ring buffer that it forwards, newline-separated, to this process's unix socket; the shipper reads them
in batches at a lower CPU priority than the data plane. A batch of ordinary lines is appended to the
access files whole (no per-line work unless sampling); the few notable ones (an error status or a slow
request) are found by one regex over the batch, taken out, and written as JSON lines to the notable
log, which the daemon indexes. Notable lines are never sampled. HAProxy and the shipper restart
independently: HAProxy reconnects to a new shipper and sends it what waited in its ring meanwhile, and
a new HAProxy connects to the running shipper.

    python -m sprout.router.haproxy.shipper --socket S --notable-log N [--sample S] [--rotate-bytes B]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import signal
import socket
import time
from pathlib import Path

import sprout.accessfiles as access
from sprout.router.accesslog import AccessLog, Row, notable_line

#: How nicer than the data plane the shipper runs.
NICE = 10
#: Seconds between two batches: lines become searchable this much later, and a batch pays one write.
INTERVAL = 0.1
_READ = 1024 * 1024
#: The most one pass takes from a connection: a sender faster than the shipper still gets batches.
_BATCH = 16 * 1024 * 1024
#: A line with an error status (4xx, 5xx, or none: `-1`), or lasting 1000 ms or more: the status,
#: bytes and duration fields are the only tab-separated run that ends in `e-3` (HAProxy's `%Ta` in ms).
NOTABLE = re.compile(rb"\t(?:[4-9]\d\d|-\d+)\t\d+\t-?\d+e|\t\d{4,}e-3\t")


def split(batch: bytes) -> tuple[bytes, int, list[bytes]]:
    """A batch of whole lines as (ordinary lines, their count, notable lines without newline)."""
    found = NOTABLE.search(batch)
    if found is None:
        return batch, batch.count(b"\n"), []
    ordinary: list[bytes] = []
    notable: list[bytes] = []
    taken = 0
    while found is not None:
        start = batch.rfind(b"\n", 0, found.start()) + 1
        end = batch.find(b"\n", found.end())
        end = len(batch) if end < 0 else end + 1
        ordinary.append(batch[taken:start])
        notable.append(batch[start:end].rstrip(b"\n"))
        taken = end
        found = NOTABLE.search(batch, end)
    ordinary.append(batch[taken:])
    ok = b"".join(ordinary)
    return ok, ok.count(b"\n"), notable


def sampled(ok: bytes, sample: float) -> tuple[bytes, int]:
    """The share `sample` of the lines of `ok`, picked at random, and their count."""
    kept = [line for line in ok.split(b"\n")[:-1] if random.random() < sample]
    return b"".join(line + b"\n" for line in kept), len(kept)


def to_json(line: bytes) -> str:
    """A notable access line as the JSON line the log store indexes (as it came, when it is not one)."""
    text = line.decode("utf-8", "replace")
    parsed = access.parse_line(text)
    if parsed is None:
        return text
    slash = parsed.host_path.find("/")
    host, path = (
        (parsed.host_path[:slash], parsed.host_path[slash:]) if slash >= 0 else ("", parsed.host_path)
    )
    row: Row = (
        parsed.ts,
        parsed.request_id.encode("latin-1", "replace"),
        host.encode("latin-1", "replace"),
        parsed.method.encode("latin-1", "replace"),
        path.encode("latin-1", "replace"),
        parsed.status,
        parsed.bytes,
        parsed.duration,
        access.where(parsed.target, parsed.version, parsed.zone),
        parsed.retries,
        parsed.route.encode("utf-8", "replace"),
    )
    return notable_line(row)


class Shipper:
    """Takes HAProxy's lines on the unix socket `address` and appends them to `sink`'s files, batch by batch."""

    def __init__(self, address: Path, sink: AccessLog) -> None:
        self.sink = sink
        address.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(address))
        os.chmod(address, 0o600)
        self.server.listen(8)
        self.server.setblocking(False)
        #: Each HAProxy connection (a restarted HAProxy opens a new one) and its line cut by a read.
        self._peers: dict[socket.socket, bytes] = {}
        self.stopping = False

    def read(self) -> bytes:
        """Every whole line waiting on the connections (a line cut by a read waits for its end)."""
        while True:
            try:
                peer, _ = self.server.accept()
            except BlockingIOError:
                break
            peer.setblocking(False)
            self._peers[peer] = b""
        batch = []
        for peer, partial in list(self._peers.items()):
            chunks = [partial]
            closed = False
            size = 0
            while size < _BATCH:
                try:
                    chunk = peer.recv(_READ)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
            cut = data.rfind(b"\n") + 1
            batch.append(data[:cut])
            if closed:
                # HAProxy ends every line with a newline: a tail without one was cut by its exit.
                peer.close()
                del self._peers[peer]
            else:
                self._peers[peer] = data[cut:]
        return b"".join(batch)

    def ship_once(self) -> int:
        """Move what is waiting to the files; how many lines were read."""
        batch = self.read()
        if not batch:
            return 0
        ok, count, notable = split(batch)
        if self.sink.sample < 1.0 and ok:
            ok, kept = sampled(ok, self.sink.sample)
        else:
            kept = count
        self.sink.write(ok, kept, [to_json(line) for line in notable])
        return count + len(notable)

    def run(self) -> None:
        """Ship a batch every `INTERVAL` until SIGTERM, then ship what is left and close the files."""
        while not self.stopping:
            self.ship_once()
            time.sleep(INTERVAL)
        self.ship_once()
        self.sink.close()
        self.server.close()
        for peer in self._peers:
            peer.close()


def main(argv: list[str] | None = None) -> None:
    """Run the shipper until SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m sprout.router.haproxy.shipper", description=__doc__)
    p.add_argument("--socket", type=Path, required=True, help="The unix socket HAProxy sends its lines to.")
    p.add_argument("--notable-log", type=Path, required=True, help="Errors and slow requests, as JSON lines.")
    p.add_argument("--sample", type=float, default=1.0, help="Share (0-1) of successful requests kept.")
    p.add_argument("--rotate-bytes", type=int, default=access.ROTATE_BYTES, help="Access file rotation size.")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.nice(NICE)
    shipper = Shipper(
        args.socket, AccessLog(args.notable_log, sample=args.sample, rotate_bytes=args.rotate_bytes)
    )

    def stop(signum: int, frame: object) -> None:
        shipper.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    shipper.run()


if __name__ == "__main__":
    main()
