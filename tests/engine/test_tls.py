"""TLS in the engine: our client against our listener, and every handshake failure made for real.

Certificates are made in the test with `cryptography` (a private CA, leaves signed by it,
an expired one, one for another name); servers are real sockets on 127.0.0.1, port 0.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading

import pytest

from tcpbench.engine import ConnectError, SessionManager
from tcpbench.engine import events as ev
from tcpbench.engine import tls as engine_tls
from tcpbench.engine.certs import MadeCert, make_self_signed
from tcpbench.engine.registry import build_service
from tcpbench.engine.starttls import StartTlsRefused, open_starttls
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def ca() -> MadeCert:
    return make_self_signed(["tcpbench test CA"], ca=True)


def ca_file(tmp_path, ca: MadeCert) -> str:
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return str(path)


def server_files(tmp_path, made: MadeCert) -> engine_tls.ServerTls:
    (tmp_path / "cert.pem").write_bytes(made.cert_pem)
    (tmp_path / "key.pem").write_bytes(made.key_pem)
    return engine_tls.server_tls("127.0.0.1", cert_file=str(tmp_path / "cert.pem"),
                                 key_file=str(tmp_path / "key.pem"), handshake_timeout=5.0)


async def tls_echo(manager: SessionManager, made: MadeCert | None = None, tmp_path=None):
    tls = (server_files(tmp_path, made) if made
           else engine_tls.server_tls("127.0.0.1", handshake_timeout=5.0))
    return await manager.start_listener(build_service("echo"), "127.0.0.1", 0, tls=tls)


def collect(manager: SessionManager) -> list[ev.Event]:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    return seen


async def test_our_client_and_listener_talk_tls_and_report_the_handshake(manager, tmp_path, ca) -> None:
    seen = collect(manager)
    leaf = make_self_signed(["localhost", "127.0.0.1"], issuer_cert=ca)
    listener = await tls_echo(manager, leaf, tmp_path)
    client = engine_tls.client_tls("localhost", ca_file=ca_file(tmp_path, ca), alpn=("h2", "http/1.1"))
    session = await manager.open_session("localhost", listener.port, tls=client)
    session.send(b"hello over tls\n")
    await wait_until(lambda: session.bytes_in == 15, what="the echo")
    info = session.tls
    assert info is not None and info.verified
    assert info.version in ("TLSv1.3", "TLSv1.2") and info.cipher and info.bits >= 128
    assert info.sni == "localhost"
    assert "CN=localhost" in info.subject and "CN=tcpbench test CA" in info.issuer
    assert info.sans == ("DNS:localhost", "IP:127.0.0.1")
    assert info.not_before < info.not_after and len(info.fingerprint) == 95
    # The listener's side negotiated too, and saw the name the client asked for.
    await wait_until(lambda: len([e for e in seen if isinstance(e, ev.TlsNegotiated)]) == 2)
    server_side = [e for e in seen if isinstance(e, ev.TlsNegotiated) and e.session != session.id][0]
    assert server_side.sni == "localhost" and server_side.subject == ""
    opened = [e for e in seen if isinstance(e, ev.SessionOpened) and e.session == session.id][0]
    assert seen.index(opened) < seen.index(info)  # opened, then TLS, then the bytes
    session.close()
    await asyncio.wait_for(session.closed_future, 10)
    counted = [e for e in seen if isinstance(e, ev.TlsBytesCounted) and e.session == session.id]
    assert counted and counted[0].bytes_in == 15 and counted[0].bytes_out == 15
    # The kernel counted the records and the handshake: more than the plaintext.
    assert counted[0].wire_in > 15 + 500 and counted[0].wire_out > 15 + 100
    assert session.state == "closed"


async def test_alpn_is_negotiated_when_both_sides_offer_it(manager) -> None:
    tls = engine_tls.server_tls("127.0.0.1", alpn=("http/1.1",))
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0, tls=tls)
    client = engine_tls.client_tls("127.0.0.1", insecure=True, alpn=("h2", "http/1.1"))
    session = await manager.open_session("127.0.0.1", listener.port, tls=client)
    assert session.tls is not None and session.tls.alpn == "http/1.1"
    assert not session.tls.verified and session.tls.subject  # shown even when not verified
    session.close()
    await asyncio.wait_for(session.closed_future, 10)


async def failure(manager: SessionManager, host: str, port: int, client: engine_tls.ClientTls):
    seen = collect(manager)
    with pytest.raises(engine_tls.TlsHandshakeError) as caught:
        await manager.open_session(host, port, tls=client)
    assert isinstance(caught.value, ConnectError)
    failed = [e for e in seen if isinstance(e, ev.TlsHandshakeFailed) and e.listener is None]
    assert failed and failed[0].reason == caught.value.reason
    assert "\n" not in str(caught.value)
    return caught.value


async def test_self_signed_is_unknown_ca_and_the_listener_keeps_serving(manager) -> None:
    seen = collect(manager)
    listener = await tls_echo(manager)
    error = await failure(manager, "127.0.0.1", listener.port, engine_tls.client_tls("127.0.0.1"))
    assert error.reason == engine_tls.UNKNOWN_CA
    assert "self-signed" in str(error) and "--insecure" in str(error)
    # The listener reports its side of it, and still answers the next client.
    await wait_until(lambda: any(isinstance(e, ev.TlsHandshakeFailed) and e.listener == listener.id
                                 for e in seen))
    assert listener.tls_failures == 1
    session = await manager.open_session("127.0.0.1", listener.port,
                                         tls=engine_tls.client_tls("127.0.0.1", insecure=True))
    session.send(b"x")
    await wait_until(lambda: session.bytes_in == 1)
    session.close()
    await asyncio.wait_for(session.closed_future, 10)


async def test_a_certificate_for_another_name_is_a_name_mismatch(manager, tmp_path, ca) -> None:
    listener = await tls_echo(manager, make_self_signed(["other.example"], issuer_cert=ca), tmp_path)
    error = await failure(manager, "localhost", listener.port,
                          engine_tls.client_tls("localhost", ca_file=ca_file(tmp_path, ca)))
    assert error.reason == engine_tls.NAME_MISMATCH and "'localhost'" in str(error)
    # --sni with the name the certificate carries makes it verify.
    session = await manager.open_session(
        "127.0.0.1", listener.port,
        tls=engine_tls.client_tls("127.0.0.1", sni="other.example", ca_file=ca_file(tmp_path, ca)))
    assert session.tls is not None and session.tls.verified and session.tls.sni == "other.example"
    session.close()
    await asyncio.wait_for(session.closed_future, 10)


async def test_an_expired_certificate_is_reported_as_expired(manager, tmp_path, ca) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = make_self_signed(["localhost"], issuer_cert=ca, not_before=now - datetime.timedelta(days=60),
                               not_after=now - datetime.timedelta(days=1))
    listener = await tls_echo(manager, expired, tmp_path)
    error = await failure(manager, "localhost", listener.port,
                          engine_tls.client_tls("localhost", ca_file=ca_file(tmp_path, ca)))
    assert error.reason == engine_tls.EXPIRED and "expired" in str(error)


async def test_a_plain_text_server_is_not_tls(manager) -> None:
    listener = await manager.start_listener(build_service("motd", {"message": "220 plain smtp here\\r\\n", "keep_open": True}),
                                            "127.0.0.1", 0)
    error = await failure(manager, "127.0.0.1", listener.port,
                          engine_tls.client_tls("127.0.0.1", insecure=True))
    assert error.reason == engine_tls.NOT_TLS and "does not speak TLS" in str(error)


async def test_a_server_that_closes_at_once_is_closed_during_the_handshake(manager) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        error = await failure(manager, "127.0.0.1", port, engine_tls.client_tls("127.0.0.1", insecure=True))
    assert error.reason in (engine_tls.CLOSED, engine_tls.RESET)


async def test_a_reset_during_the_handshake_is_reset(manager) -> None:
    def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> asyncio.Future:
        async def go() -> None:
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.transport.abort()
        return asyncio.ensure_future(go())

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        error = await failure(manager, "127.0.0.1", port, engine_tls.client_tls("127.0.0.1", insecure=True))
    assert error.reason == engine_tls.RESET and "reset" in str(error)


async def test_no_common_protocol_version(manager) -> None:
    # A blocking stdlib server in a thread: unlike asyncio's, it sends its alert
    # (protocol_version) before closing, as openssl and nginx do.
    context = engine_tls.server_tls("127.0.0.1").context
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.settimeout(10)

        def serve_one() -> None:
            conn, _ = listening.accept()
            with conn:
                conn.settimeout(10)
                try:
                    context.wrap_socket(conn, server_side=True).close()
                except (ssl.SSLError, OSError):
                    pass

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        client = engine_tls.client_tls("127.0.0.1", insecure=True)
        client.context.maximum_version = ssl.TLSVersion.TLSv1_2
        error = await failure(manager, "127.0.0.1", listening.getsockname()[1], client)
        await asyncio.to_thread(thread.join, 10)
    assert error.reason == engine_tls.PROTOCOL_VERSION and "TLS version" in str(error)


async def test_a_silent_server_times_the_handshake_out(manager) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the ClientHello
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        client = engine_tls.client_tls("127.0.0.1", insecure=True, handshake_timeout=0.5)
        error = await failure(manager, "127.0.0.1", port, client)
    assert error.reason == engine_tls.TIMED_OUT and "0.5 s" in str(error)


async def test_a_plain_client_on_the_tls_listener_is_a_failed_handshake_event(manager) -> None:
    seen = collect(manager)
    listener = await tls_echo(manager)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.read()  # the listener gives up on us
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: any(isinstance(e, ev.TlsHandshakeFailed) for e in seen))
    failed = [e for e in seen if isinstance(e, ev.TlsHandshakeFailed)][0]
    assert failed.listener == listener.id and failed.reason == engine_tls.NOT_TLS
    assert "plain HTTP" in failed.message
    assert listener.id in manager.listeners and not manager.sessions


def test_bad_settings_are_one_line_config_errors(tmp_path) -> None:
    with pytest.raises(engine_tls.TlsConfigError, match="cannot use --ca"):
        engine_tls.client_tls("x", ca_file=str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(engine_tls.TlsConfigError, match="cannot use --cert"):
        engine_tls.server_tls("127.0.0.1", cert_file=str(tmp_path / "junk.pem"))
    with pytest.raises(engine_tls.TlsConfigError, match="ALPN"):
        engine_tls.client_tls("x", alpn=("h2\x1b",))


# --- STARTTLS ------------------------------------------------------------------


class SmtpLike:
    """A small SMTP-ish server: greeting, EHLO with STARTTLS offered, then TLS, then echo."""

    def __init__(self, offer: bool = True) -> None:
        self.offer = offer
        self.tls = engine_tls.server_tls("127.0.0.1")
        self.transcript: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220-smtp.test ESMTP\r\n220 ready\r\n")
            line = await reader.readline()
            self.transcript.append(line)
            extra = b"250-STARTTLS\r\n" if self.offer else b""
            writer.write(b"250-smtp.test\r\n" + extra + b"250 8BITMIME\r\n")
            line = await reader.readline()
            self.transcript.append(line)
            if not self.offer:
                writer.write(b"502 no\r\n")
                await writer.drain()
                return
            writer.write(b"220 go ahead\r\n")
            await writer.drain()
            await writer.start_tls(self.tls.context)
            data = await reader.readline()
            writer.write(b"secret: " + data)
            await writer.drain()
        finally:
            writer.close()


async def test_starttls_smtp_shows_the_plain_exchange_then_speaks_tls(manager) -> None:
    smtp = SmtpLike()
    server = await asyncio.start_server(smtp.handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        lines: list[tuple[str, str]] = []
        session = await open_starttls(manager, "127.0.0.1", port, "smtp",
                                 engine_tls.client_tls("127.0.0.1", insecure=True), timeout=5,
                                 transcript=lambda d, t: lines.append((d, t)))
        assert ("<", "220 ready") in lines and (">", "STARTTLS") in lines and ("<", "220 go ahead") in lines
        assert session.tls is not None and session.tls.version
        plain_in = session.bytes_in
        session.send(b"hi\n")
        await wait_until(lambda: session.bytes_in == plain_in + len(b"secret: hi\n"))
        assert smtp.transcript[0].startswith(b"EHLO ") and smtp.transcript[1] == b"STARTTLS\r\n"
        session.close()
        await asyncio.wait_for(session.closed_future, 10)


async def test_starttls_not_offered_is_refused_in_one_line(manager) -> None:
    server = await asyncio.start_server(SmtpLike(offer=False).handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(StartTlsRefused, match="does not offer STARTTLS"):
            await open_starttls(manager, "127.0.0.1", port, "smtp",
                                engine_tls.client_tls("127.0.0.1", insecure=True), timeout=5)
        await wait_until(lambda: not manager.sessions, what="the refused session closed")


class Scripted:
    """A plain-text server that answers one command, then starts TLS and echoes a line."""

    def __init__(self, greeting: bytes, command: bytes, answer: bytes) -> None:
        self.greeting, self.command, self.answer = greeting, command, answer
        self.tls = engine_tls.server_tls("127.0.0.1")
        self.got: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.greeting)
            line = await reader.readline()
            self.got.append(line)
            if line != self.command:
                writer.write(b"500 what?\r\n")
                return
            writer.write(self.answer)
            await writer.drain()
            await writer.start_tls(self.tls.context)
            writer.write(b"tls: " + await reader.readline())
            await writer.drain()
        finally:
            writer.close()


@pytest.mark.parametrize("protocol, greeting, command, answer", [
    ("imap", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", b"a1 STARTTLS\r\n",
     b"a1 OK Begin TLS negotiation now\r\n"),
    ("ftp", b"220-Welcome\r\n220 FTP ready\r\n", b"AUTH TLS\r\n", b"234 AUTH TLS successful\r\n"),
])
async def test_starttls_imap_and_ftp(manager, protocol, greeting, command, answer) -> None:
    scripted = Scripted(greeting, command, answer)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        session = await open_starttls(manager, "127.0.0.1", port, protocol,
                                      engine_tls.client_tls("127.0.0.1", insecure=True), timeout=5)
        assert scripted.got == [command] and session.tls is not None
        before = session.bytes_in
        session.send(b"x\n")
        await wait_until(lambda: session.bytes_in == before + len(b"tls: x\n"))
        session.close()
        await asyncio.wait_for(session.closed_future, 10)


async def test_starttls_refused_by_the_server_says_what_it_answered(manager) -> None:
    scripted = Scripted(b"220 FTP ready\r\n", b"NOPE\r\n", b"")
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(StartTlsRefused, match="refused AUTH TLS: 500 what"):
            await open_starttls(manager, "127.0.0.1", port, "ftp",
                                engine_tls.client_tls("127.0.0.1", insecure=True), timeout=5)


async def test_half_close_on_tls_is_explained_and_close_ends_it_in_order(manager) -> None:
    seen = collect(manager)
    listener = await tls_echo(manager)
    session = await manager.open_session("127.0.0.1", listener.port,
                                         tls=engine_tls.client_tls("127.0.0.1", insecure=True))
    session.half_close()
    assert not session.our_fin and session.state == "open"
    notes = [e for e in seen if isinstance(e, ev.ServiceNoted) and e.session == session.id]
    assert notes and "no half-close" in notes[0].text
    session.send(b"still works\n")
    await wait_until(lambda: session.bytes_in == 12)
    session.close()
    await asyncio.wait_for(session.closed_future, 10)
    assert session.state == "closed" and session.closed_by == "us"
    await wait_until(lambda: not manager.sessions, what="the listener's side closed too")
    server_side = [e for e in seen if isinstance(e, ev.SessionClosed) and e.session != session.id]
    assert server_side and server_side[0].closed_by == "peer"


async def test_starttls_then_no_tls_is_a_handshake_error_and_the_session_is_aborted(manager) -> None:
    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 FTP ready\r\n")
        await reader.readline()
        writer.write(b"234 sure\r\n")
        await writer.drain()
        await reader.read(1)  # the ClientHello begins: answer it in plain text
        writer.write(b"500 what is this\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(liar, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(engine_tls.TlsHandshakeError) as caught:
            await open_starttls(manager, "127.0.0.1", port, "ftp",
                                engine_tls.client_tls("127.0.0.1", insecure=True), timeout=5)
        assert caught.value.reason == engine_tls.NOT_TLS
        session = manager.history[max(manager.history)]
        await asyncio.wait_for(session.closed_future, 10)
        assert session.state == "aborted" and session.tls is None
