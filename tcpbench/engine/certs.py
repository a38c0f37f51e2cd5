"""X.509 certificates: a self-signed one made on the spot, and reading a peer's.

The standard library's `ssl` can only describe a peer certificate it verified
(`getpeercert()` is empty under `CERT_NONE`, which is exactly when people most
want to see what the peer sent, like `openssl s_client` shows it), and it cannot
make a certificate at all. Both jobs use `cryptography`; nothing else in the
engine does, and it is imported only when a TLS feature is used.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What a person checks on a certificate. Text comes from the peer: escape it to show it."""

    subject: str
    issuer: str
    sans: tuple[str, ...]
    """Subject alternative names as `DNS:name` / `IP:address`."""
    not_before: str
    """ISO 8601, UTC."""
    not_after: str
    fingerprint: str
    """SHA-256 of the DER encoding, as `AB:CD:...` (what browsers and `openssl x509 -fingerprint -sha256` show)."""


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, colon-separated upper-case hex."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def describe_der(der: bytes) -> CertInfo:
    """Read a DER certificate. Errors: `ValueError` when it is not one."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple([f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)]
                     + [f"IP:{a}" for a in names.get_values_for_type(x509.IPAddress)])
    except x509.ExtensionNotFound:
        sans = ()
    except ValueError:  # a malformed extension from a peer: still show the rest
        sans = ("(unreadable)",)
    return CertInfo(_name(cert.subject), _name(cert.issuer), sans,
                    _iso(cert.not_valid_before_utc), _iso(cert.not_valid_after_utc), fingerprint(der))


def _name(name: object) -> str:
    try:
        return name.rfc4514_string()  # type: ignore[attr-defined]
    except ValueError:
        return "(unreadable name)"


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MadeCert:
    """A certificate and its private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes
    der: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.der)


def default_names(host: str) -> list[str]:
    """Names a self-signed certificate for a listener on `host` should carry: this machine's
    name first (the subject), then localhost and the loopback addresses, then `host` itself."""
    names = [socket.gethostname() or "localhost", "localhost", "127.0.0.1", "::1"]
    if host and host not in ("0.0.0.0", "::"):
        names.append(host)
    return list(dict.fromkeys(names))


def make_self_signed(names: Iterable[str], *, days: float = 30.0,
                     not_before: datetime.datetime | None = None,
                     not_after: datetime.datetime | None = None,
                     issuer_cert: MadeCert | None = None, ca: bool = False) -> MadeCert:
    """A certificate for `names` (the first is the subject's CN; IP literals become IP SANs).

    Self-signed unless `issuer_cert` (a `ca=True` certificate made here) signs it. The
    key is EC P-256: made in a millisecond, accepted by every current client.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = list(names)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start = not_before or now - datetime.timedelta(hours=1)
    end = not_after or now + datetime.timedelta(days=days)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tcpbench")])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    if issuer_cert is not None:
        signer_cert = x509.load_pem_x509_certificate(issuer_cert.cert_pem)
        signer_key = serialization.load_pem_private_key(issuer_cert.key_pem, None)
        issuer = signer_cert.subject
    else:
        signer_key, issuer = key, subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = (builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False))
    else:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False), critical=True)
    cert = builder.sign(signer_key, hashes.SHA256())  # type: ignore[arg-type]
    return MadeCert(cert.public_bytes(serialization.Encoding.PEM),
                    key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
                    cert.public_bytes(serialization.Encoding.DER))


def load_into(context: object, made: MadeCert) -> None:
    """`context.load_cert_chain` from memory: `ssl` reads only files, so the PEM goes to a
    private temporary directory that is removed at once."""
    with tempfile.TemporaryDirectory(prefix="tcpbench-tls-") as folder:
        cert_path = os.path.join(folder, "cert.pem")
        key_path = os.path.join(folder, "key.pem")
        with open(cert_path, "wb") as handle:
            handle.write(made.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(made.key_pem)
        context.load_cert_chain(cert_path, key_path)  # type: ignore[attr-defined]


def pem_to_der(pem: bytes) -> bytes:
    """The first certificate of a PEM file as DER. Errors: `ValueError`."""
    import ssl

    text = pem.decode("ascii", "replace")
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise ValueError("no PEM certificate in the file")
    return ssl.PEM_cert_to_DER_cert(text[begin:end + len("-----END CERTIFICATE-----")])
