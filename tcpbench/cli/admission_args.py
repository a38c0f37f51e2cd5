"""The admission flags of `tcpbench serve`: who may connect, how many, how the rest are turned away.

    --max-conns N            at most N connections at once (like ncat's --max-conns)
    --allow CIDR, --deny CIDR, --allow-file FILE, --deny-file FILE   (like ncat; deny wins)
    --refuse close|reset|banner:TEXT, --refuse-banner TEXT           (like TCP wrappers)

A bad CIDR or refusal mode is argparse's one-line error (exit 2); a rules file
that cannot be read or has a bad line is a `UsageError` naming the line.
"""

from __future__ import annotations

import argparse

from tcpbench.engine.admission import (AdmissionError, AdmissionPolicy, Refusal, banner_refusal,
                                       build_policy, parse_cidr, parse_refusal)
from tcpbench.usage import UsageError


def _cidr(text: str) -> str:
    try:
        parse_cidr(text)
    except AdmissionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _refusal(text: str) -> Refusal:
    try:
        return parse_refusal(text)
    except AdmissionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _banner(text: str) -> Refusal:
    try:
        return banner_refusal(text)
    except AdmissionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_admission_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("who may connect")
    group.add_argument("--max-conns", type=_count, default=None, metavar="N",
                       help="at most N connections at once; more are turned away (see --refuse)")
    group.add_argument("--allow", type=_cidr, action="append", default=[], metavar="CIDR",
                       help="admit only peers in CIDR (IPv4 or IPv6; repeatable)")
    group.add_argument("--deny", type=_cidr, action="append", default=[], metavar="CIDR",
                       help="turn away peers in CIDR (repeatable; wins over --allow)")
    group.add_argument("--allow-file", action="append", default=[], metavar="FILE",
                       help="--allow each CIDR in FILE (one per line, # comments)")
    group.add_argument("--deny-file", action="append", default=[], metavar="FILE",
                       help="--deny each CIDR in FILE (one per line, # comments)")
    refuse = group.add_mutually_exclusive_group()
    refuse.add_argument("--refuse", type=_refusal, default=None, metavar="HOW",
                        help="how to turn a connection away: close (FIN at once, the default), "
                             "reset (RST), or banner:TEXT (send TEXT, then FIN)")
    refuse.add_argument("--refuse-banner", dest="refuse", type=_banner, metavar="TEXT",
                        help="same as --refuse banner:TEXT, e.g. '421 Service not available'")


def policy_from_args(args: argparse.Namespace) -> AdmissionPolicy | None:
    """The listener's policy, or None when no flag restricts anything.

    Errors: `UsageError` (one line) for a rules file that cannot be read or has a bad line.
    """
    try:
        policy = build_policy(allow=args.allow, deny=args.deny, allow_files=args.allow_file,
                              deny_files=args.deny_file, max_conns=args.max_conns,
                              refusal=args.refuse)
    except AdmissionError as exc:
        raise UsageError(str(exc)) from None
    if not policy.restricts:
        if args.refuse is not None:
            raise UsageError("--refuse needs a rule to refuse by (--max-conns, --allow or --deny)")
        return None
    return policy
