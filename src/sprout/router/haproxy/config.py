"""The HAProxy engine's static side: finding the binary and rendering the config it starts with.

HAProxy 2.6 cannot add a backend at runtime, so the config declares a fixed pool of backend slots
(`SLOTS`); each route (environment) is given a free slot when it first appears, and its groups are
servers of that one backend, weighted so that each group gets its share. Everything that changes with
the routing table lives in runtime maps and dynamic servers, so no routing change ever needs a reload.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sprout.errors import UserError
from sprout.router.config import RouterConfig

#: Backends declared up front: the most routes (environments) one HAProxy engine can serve.
SLOTS = 64
#: Environment variable naming the HAProxy binary (a path, or a name looked up on PATH).
BINARY_ENV = "SPROUT_HAPROXY"
#: Where Debian installs it; searched after PATH, which often lacks the sbin folders for a normal user.
_SYSTEM_DIRS = ("/usr/sbin", "/usr/local/sbin")
MISSING = (
    "HAProxy is not installed; install Debian's package with `sudo apt-get install haproxy` (2.6 or newer)"
)

#: The access line of the embedded router's access files (`sprout.accessfiles`), tab-separated:
#: time route method host+path status bytes duration target version zone retries request_id.
#: `%Ta` is milliseconds: the `e-3` after it makes it seconds to any float parser.
_LOG_FIELDS = (
    "%Ts.%ms",
    "%[be_name,map({routes},)]",
    "%HM",
    "%[capture.req.hdr(0)]%HU",
    "%ST",
    "%B",
    "%Ta%[str(e-3)]",
    "%s",
    "%[srv_name,map({version},)]",
    "%[srv_name,map({zone},)]",
    "%rc",
    "%[var(txn.rid)]",
)


def find_haproxy() -> str:
    """The HAProxy binary to run: `$SPROUT_HAPROXY`, else `haproxy` on PATH or in the sbin folders."""
    name = os.environ.get(BINARY_ENV)
    if name:
        found = shutil.which(name)
    else:
        path = os.pathsep.join([os.environ.get("PATH", ""), *_SYSTEM_DIRS])
        found = shutil.which("haproxy", path=path)
    if found is None:
        where = f" ({BINARY_ENV}={name} not found)" if name else ""
        raise UserError(f"--engine haproxy: {MISSING}{where}")
    return found


#: HAProxy's buffer of access lines not yet taken by the shipper: ~130,000 lines, 5 s at 25,000/s.
RING_BYTES = 16 * 1024 * 1024

#: The longest unix socket path HAProxy 2.6 accepts in `stats socket`.
SOCKET_PATH_MAX = 97


@dataclass(frozen=True)
class Layout:
    """The files of one HAProxy engine under a Sprout home's run folder."""

    root: Path

    @property
    def config(self) -> Path:
        """The generated config file."""
        return self.root / "haproxy.cfg"

    @property
    def socket(self) -> Path:
        """The runtime API's unix socket: in the run folder, or, when that path is longer than HAProxy
        takes (a deep home), in a private folder of this user under the temp folder named after it."""
        inside = self.root / "haproxy.sock"
        if len(str(inside)) <= SOCKET_PATH_MAX:
            return inside
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"sprout-haproxy-{os.getuid()}-{digest}" / "haproxy.sock"

    @property
    def temp_folder(self) -> Path | None:
        """The private temp folder holding the sockets of a home too deep for them; None otherwise."""
        folder = self.socket.parent
        return None if folder == self.root else folder

    @property
    def table(self) -> Path:
        """The routing table last applied (restored into a new HAProxy at start)."""
        return self.root / "table.json"

    @property
    def access_socket(self) -> Path:
        """The shipper's unix socket, beside the runtime API's: HAProxy forwards its access lines to it."""
        return self.socket.with_name("access.sock")

    def map(self, name: str) -> Path:
        """One runtime map file (written empty at start, then filled over the runtime API)."""
        return self.root / f"{name}.map"


#: The runtime maps: host → slot, `.suffix` → slot, "default" → slot, slot → route, slot → health path,
#: slot → body limit, target → group, version and zone.
MAPS = ("hosts", "suffixes", "default", "routes", "check", "max_body", "group", "version", "zone")


def slot_names() -> list[str]:
    """The backend slots the config declares."""
    return [f"slot{i}" for i in range(SLOTS)]


def render(layout: Layout, listen: str, config: RouterConfig) -> str:
    """The HAProxy config for a router listening on `listen` with `config`'s limits."""
    maps = {name: str(layout.map(name)) for name in MAPS}
    log_format = "\\t".join(_LOG_FIELDS)
    for name in ("routes", "version", "zone"):
        log_format = log_format.replace("{" + name + "}", maps[name])
    import jinja2  # here, not at the top: the CLI imports this module and must start fast

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sprout.router.haproxy", "."),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    return env.get_template("haproxy.cfg.j2").render(
        socket=layout.socket,
        access_socket=layout.access_socket,
        ring_bytes=RING_BYTES,
        listen=listen,
        config=config,
        bufsize=max(16384, config.max_header_bytes + 1024),
        maxconn=min(config.max_connections, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2),
        maps=maps,
        slots=slot_names(),
        log_format=log_format,
        ms=lambda seconds: f"{int(seconds * 1000)}ms",
    )


def write_config(layout: Layout, listen: str, config: RouterConfig) -> Path:
    """Write the config and empty maps (a new HAProxy starts empty; the saved table is applied after)."""
    make_folders(layout)
    for name in MAPS:
        layout.map(name).write_text("")
    layout.config.write_text(render(layout, listen, config))
    return layout.config


def make_folders(layout: Layout) -> None:
    """Create the run folder and, for a deep home, the private temp folder of the sockets."""
    layout.root.mkdir(parents=True, exist_ok=True)
    folder = layout.temp_folder
    if folder is not None:
        # In the shared temp folder: refuse one that someone else made or may enter.
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077 or not stat.S_ISDIR(info.st_mode):
            raise UserError(
                f"{folder}: the HAProxy socket's folder must be a private folder of this user; remove it"
            )


def remove_socket_folder(layout: Layout) -> None:
    """Remove a deep home's private temp folder of the sockets, once HAProxy and its shipper are gone."""
    folder = layout.temp_folder
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
