"""The TLS options of the headless commands, and turning them into engine TLS settings.

Client side (`connect`, `probe`): `--tls`, `--sni`, `--insecure`, `--ca`, `--alpn`
(and `--starttls` for connect). Server side (`serve SERVICE`): `--tls`, `--cert`,
`--key`. A setting that cannot be used (a missing file, a key that does not match)
is a `UsageError`: one line, exit 2.
"""

from __future__ import annotations

import argparse
from tcpbench.engine.tls import (ClientTls, ServerTls, TlsConfigError, client_tls, server_tls)
from tcpbench.usage import UsageError

STARTTLS_PROTOCOLS = ("smtp", "imap", "ftp")


def add_client_options(parser: argparse.ArgumentParser, *, starttls: bool = False) -> None:
    group = parser.add_argument_group("TLS")
    group.add_argument("--tls", "--ssl", action="store_true",
                       help="speak TLS (like ncat --ssl / openssl s_client); the certificate is "
                            "verified against the system's CAs unless --insecure")
    group.add_argument("--sni", metavar="NAME",
                       help="server name to send (SNI) and to verify the certificate against "
                            "(default: HOST)")
    group.add_argument("--insecure", "-k", action="store_true",
                       help="do not verify the certificate (it is still shown)")
    group.add_argument("--ca", metavar="FILE", help="trust the CA certificates in FILE (PEM)")
    group.add_argument("--alpn", type=_alpn_list, default=(), metavar="LIST",
                       help="application protocols to offer, e.g. h2,http/1.1")
    if starttls:
        group.add_argument("--starttls", choices=STARTTLS_PROTOCOLS, metavar="PROTO",
                           help="speak PROTO in plain text until the server agrees, then start "
                                "TLS on the same connection: " + ", ".join(STARTTLS_PROTOCOLS))


def _alpn_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("--alpn needs at least one protocol name (e.g. h2,http/1.1)")
    return names


def wants_client_tls(args: argparse.Namespace) -> bool:
    return bool(args.tls or getattr(args, "starttls", None))


def build_client(args: argparse.Namespace, host: str, timeout: float) -> ClientTls | None:
    """The client TLS setting the arguments ask for, or None for plain TCP.

    Errors: `UsageError` for TLS options without `--tls`, or a CA file that does not load.
    """
    if not wants_client_tls(args):
        extra = [flag for flag, value in (("--sni", args.sni), ("--insecure", args.insecure),
                                          ("--ca", args.ca), ("--alpn", args.alpn)) if value]
        if extra:
            raise UsageError(f"{', '.join(extra)} only work with --tls")
        return None
    try:
        return client_tls(host, sni=args.sni, insecure=args.insecure, ca_file=args.ca,
                          alpn=args.alpn, handshake_timeout=timeout)
    except TlsConfigError as exc:
        raise UsageError(str(exc)) from None


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS")
    group.add_argument("--tls", "--ssl", action="store_true",
                       help="speak TLS; without --cert, a self-signed certificate is made for "
                            "this machine's name (and localhost) and its fingerprint printed")
    group.add_argument("--cert", metavar="FILE", help="the certificate chain to present (PEM)")
    group.add_argument("--key", metavar="FILE",
                       help="its private key (PEM; default: inside the --cert file)")


def build_server(args: argparse.Namespace, alpn: tuple[str, ...] = ()) -> ServerTls | None:
    """The listener TLS setting the arguments ask for, or None for plain TCP.

    Errors: `UsageError` for --cert/--key without --tls, or files that do not load.
    """
    if not args.tls:
        if args.cert or args.key:
            raise UsageError("--cert and --key only work with --tls")
        return None
    try:
        return server_tls(args.host, cert_file=args.cert, key_file=args.key, alpn=alpn)
    except TlsConfigError as exc:
        raise UsageError(str(exc)) from None


def describe_server(tls: ServerTls, *, json_lines: bool = False) -> str:
    """The line `serve` prints after `listening on`: what certificate, and its fingerprint
    (a JSON object with `--json`)."""
    from tcpbench.safetext import escape_text

    if json_lines:
        import json

        return json.dumps({"event": "tls_certificate", "self_signed": tls.self_signed,
                           "subject": tls.subject, "sha256": tls.fingerprint}, ensure_ascii=True)
    what = "self-signed certificate" if tls.self_signed else "certificate"
    return f"tls: {what} {escape_text(tls.subject)}, SHA-256 fingerprint {tls.fingerprint}"
