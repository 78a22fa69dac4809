"""The router's compiled hot path: mypyc builds of the per-request modules, used only when built from the
sources beside them.

The same Python modules compiled to C by mypyc (`python -m sprout.router.build_native`, run by `make
setup`/`make test`) cost the router ~30 % less CPU per request. They live in `_native/<tag>/` in this
package, with a stamp of the sources they were built from; `sprout.router` puts that folder first on its
module search path only while the stamp matches the sources, so an edited source, another Python or
`SPROUT_ROUTER_PURE=1` runs the pure-Python modules, which stay the reference and the fallback (no
compiler, `make demo`). Not compiled: what a request never runs (admin API, health checks, table, TLS).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

#: The modules on the per-request path, and the Router and Route objects it reads (an attribute of a
#: compiled class is a struct field; of a Python one, a dict lookup), compiled together as one group.
HOT = (
    "wire",
    "balancer",
    "target",
    "metrics",
    "request",
    "accesslog",
    "exchange",
    "upstream",
    "proxy",
    "routes",
    "router",
)
GROUP = "sprout.router.hot"
PURE_ENV = "SPROUT_ROUTER_PURE"
STAMP = "sources.sha256"
PACKAGE = Path(__file__).resolve().parent


def folder(package: Path = PACKAGE) -> Path:
    """Where the build for this interpreter and platform lives."""
    return package / "_native" / f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"


def digest(package: Path = PACKAGE) -> str:
    """The hash of the hot modules' sources and the interpreter's version the build must match."""
    h = hashlib.sha256(sys.version.encode())
    for name in HOT:
        h.update(name.encode() + b"\0" + (package / f"{name}.py").read_bytes())
    return h.hexdigest()


def state(package: Path = PACKAGE) -> str:
    """Why the router runs what it runs: `compiled`, or `pure: <reason>`."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"pure: {PURE_ENV} is set"
    stamp = _stamp(package)
    if stamp is None:
        return "pure: not built (python -m sprout.router.build_native)"
    if stamp != digest(package):
        return "pure: the build is older than the sources (python -m sprout.router.build_native)"
    return "compiled"


def _stamp(package: Path) -> str | None:
    """The source hash the build in `folder(package)` was made from, or None without a build."""
    try:
        return (folder(package) / STAMP).read_text().strip()
    except OSError:
        return None


def search_path(path: list[str]) -> list[str]:
    """The router package's module search path, the compiled folder first when `state()` allows it."""
    return [str(folder()), *path] if state() == "compiled" else path


def running() -> str:
    """`compiled` when the loaded hot modules are the extension modules, else `pure: <reason>`."""
    from sprout.router import exchange

    return "compiled" if not exchange.__file__.endswith(".py") else state()


def build() -> Path:
    """Compile the hot modules with mypyc into `folder()` (nothing to do when it is fresh)."""
    target = folder()
    want = digest()
    if _stamp(PACKAGE) == want:
        return target
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    src = PACKAGE.parent.parent
    with tempfile.TemporaryDirectory(prefix="sprout-native-") as tmp:
        work = Path(tmp)
        paths = [str(Path("sprout", "router", f"{name}.py")) for name in HOT]
        cwd = Path.cwd()
        os.chdir(src)  # mypy names the modules from their paths below the source root
        try:
            extensions = mypycify(
                [f"--cache-dir={work / 'mypy'}", *paths],
                opt_level="3",
                group_name=GROUP,
                target_dir=str(work / "c"),
            )
            setup(
                name="sprout-router-hot",
                ext_modules=extensions,
                script_args=[
                    "--quiet",
                    "build_ext",
                    f"--build-lib={work / 'lib'}",
                    f"--build-temp={work / 't'}",
                ],
            )
        finally:
            os.chdir(cwd)
        fresh = target.with_name(target.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        for built in (work / "lib" / "sprout" / "router").glob("*.so"):
            shutil.copy2(built, fresh / built.name)
        # Stamped last: a build cut short is never taken for a fresh one.
        (fresh / STAMP).write_text(want + "\n")
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)
    return target
