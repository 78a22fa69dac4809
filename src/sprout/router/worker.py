"""`python -m sprout.router.worker`: one router worker, started by the supervisor on its listening sockets.

Not run by hand: the supervisor (`python -m sprout.router`) binds the sockets and passes their file
descriptors; the worker serves them until SIGTERM. It dies with its supervisor (a kill -9 of the
supervisor leaves no worker behind holding the port).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

from sprout.errors import SproutError
from sprout.router.options import options_from, parser

_PR_SET_PDEATHSIG = 1


def _die_with(supervisor: int) -> None:
    """Have the kernel SIGKILL this process when its supervisor ends; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:
        sys.exit(1)


def main(argv: list[str]) -> int:
    """Serve the inherited sockets with the supervisor's options; exit code 2 for a user error."""
    p = parser("sprout router worker")
    p.add_argument("--listen-fd", type=int, required=True)
    p.add_argument("--admin-fd", type=int, required=True)
    p.add_argument("--supervisor", type=int, required=True)
    p.add_argument("--https-fd", type=int)
    args = p.parse_args(argv)
    _die_with(args.supervisor)
    from sprout.router.server import run

    proxy_sock = socket.socket(fileno=args.listen_fd)
    admin_sock = socket.socket(fileno=args.admin_fd)
    https_sock = socket.socket(fileno=args.https_fd) if args.https_fd is not None else None
    try:
        run(options_from(args), proxy_sock, admin_sock, https_sock)
    except SproutError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
