"""The lottery's fairness rules, and a script anyone can run to re-check a draw.

1. Before entries close the lottery publishes a commitment: ``sha256(seed)`` (hex).
2. When entries close it publishes the digest of the sorted ticket list: ``sha256("\\n".join(tickets))``.
3. The draw reveals the seed.  Winners are the tickets with the smallest ``HMAC-SHA256(seed, ticket)``,
   so nobody can choose a winning ticket without knowing the seed, and the seed cannot be changed
   after the fact without breaking the commitment.

Re-check a draw (standard library only; the lottery serves this file at ``/verify.py``)::

    curl -s http://lottery.localhost/tickets.txt > tickets.txt
    python verify.py --seed SEED --commitment HASH --tickets tickets.txt --winners 3
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys


def commitment(seed: str) -> str:
    """The published commitment to a hex seed."""
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def tickets_digest(tickets: list[str]) -> str:
    """The digest of a ticket list, independent of its order."""
    return hashlib.sha256("\n".join(sorted(tickets)).encode()).hexdigest()


def draw_winners(seed: str, tickets: list[str], prizes: int) -> list[str]:
    """The winning tickets, first prize first: smallest HMAC-SHA256(seed, ticket)."""
    key = bytes.fromhex(seed)
    ranked = sorted(set(tickets), key=lambda t: (hmac.new(key, t.encode(), hashlib.sha256).hexdigest(), t))
    return ranked[:prizes]


def main(argv: list[str] | None = None) -> int:
    """Re-check a draw from its public data; exit 1 if anything does not match."""
    parser = argparse.ArgumentParser(description="Re-check the Christmas lottery draw.")
    parser.add_argument("--seed", required=True, help="the seed revealed at the draw (hex)")
    parser.add_argument("--commitment", required=True, help="the sha256 published before entries closed")
    parser.add_argument("--tickets", required=True, help="file with one ticket per line (/tickets.txt)")
    parser.add_argument("--winners", type=int, default=3, help="number of prizes")
    parser.add_argument("--digest", help="the ticket-list digest published when entries closed")
    args = parser.parse_args(argv)
    with open(args.tickets, encoding="utf-8") as f:
        tickets = [line.strip() for line in f if line.strip()]
    ok = commitment(args.seed) == args.commitment.lower()
    print(f"commitment {'matches' if ok else 'DOES NOT MATCH'} the revealed seed")
    if args.digest:
        same = tickets_digest(tickets) == args.digest.lower()
        ok = ok and same
        print(f"ticket list of {len(tickets)} {'matches' if same else 'DOES NOT MATCH'} the published digest")
    for place, ticket in enumerate(draw_winners(args.seed, tickets, args.winners), start=1):
        print(f"prize {place}: {ticket}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
