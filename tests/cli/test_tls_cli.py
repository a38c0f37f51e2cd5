"""TLS from the command line: serve --tls, connect --tls / --starttls, with real peers.

Peers: `openssl s_server` / `s_client`, `ncat --ssl`, `curl --insecure`. Each peer
process is stopped by its pid; ports are port 0 or read from the peer's output.
"""

from __future__ import annotations

import asyncio
import re
import select
import shutil
import subprocess
import threading
import time

import pytest

from tcpbench.engine.certs import MadeCert, make_self_signed
from tests.cli.test_cli import TCPBENCH, Served, run
from tests.netutil import closed_port

pytestmark = pytest.mark.timeout(60)
FINGERPRINT = re.compile(r"SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$")


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def files(tmp_path, made: MadeCert, name: str = "server") -> tuple[str, str]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert.write_bytes(made.cert_pem)
    key.write_bytes(made.key_pem)
    return str(cert), str(key)


def read_line_with(proc: subprocess.Popen, needle: str, stream: str = "stdout",
                   timeout: float = 20.0) -> str:
    """The first line holding `needle`. The pipe must be unbuffered (`bufsize=0`): a buffered
    readline takes several lines at once, and select() then misses the ones it holds."""
    pipe = getattr(proc, stream)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([pipe], [], [], 0.1)
        if ready:
            line = pipe.readline().decode(errors="replace")
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if needle in line:
                return line
    raise AssertionError(f"no {needle!r} from {proc.args[0]} within {timeout} s: {seen}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)


def test_serve_tls_prints_the_fingerprint_and_connect_v_shows_the_handshake() -> None:
    with Served("echo", "--tls") as served:
        assert served.first_line == f"listening on 127.0.0.1:{served.port}"
        tls_line = served.wait_for("tls: ")
        assert tls_line.startswith("tls: self-signed certificate ")
        fingerprint = FINGERPRINT.search(tls_line.rstrip("\n")).group(1)
        done = run("connect", "--tls", "--insecure", "-v", "--alpn", "h2,http/1.1", "127.0.0.1",
                   str(served.port), stdin=b"hello tls\n")
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"hello tls\n"
        err = done.stderr.decode()
        assert "TLS negotiated: TLSv1.3" in err and "no ALPN" in err
        assert "NOT verified (--insecure)" in err and f"SHA-256 {fingerprint}" in err
        assert "names DNS:" in err and "IP:127.0.0.1" in err
        served.wait_for("TLS plaintext: 10 bytes in, 10 out; on the wire")
        code, out, _ = served.stop()
    assert code == 0
    assert "TLS negotiated: TLSv1.3" in out


def test_a_failed_handshake_is_one_line_and_exit_1() -> None:
    with Served("echo", "--tls") as served:
        done = run("connect", "--tls", "127.0.0.1", str(served.port), stdin=b"x\n")
        served.wait_for("TLS handshake with")
        served.stop()
    assert done.returncode == 1 and done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "TLS handshake with 127.0.0.1:" in lines[0] and "self-signed" in lines[0]


def test_tls_to_a_plain_text_service_says_it_does_not_speak_tls() -> None:
    with Served("motd", "--message", "220 hello\\r\\n", "--keep-open") as served:
        done = run("connect", "--tls", "-k", "127.0.0.1", str(served.port))
        served.stop()
    assert done.returncode == 1
    assert done.stderr.decode().count("\n") == 1 and "does not speak TLS" in done.stderr.decode()


def test_cert_and_key_files_with_a_private_ca_verify(tmp_path) -> None:
    ca = make_self_signed(["test CA"], ca=True)
    cert, key = files(tmp_path, make_self_signed(["localhost"], issuer_cert=ca))
    ca_path, _ = files(tmp_path, ca, "ca")
    with Served("echo", "--tls", "--cert", cert, "--key", key) as served:
        line = served.wait_for("tls: ")
        assert line.startswith("tls: certificate ") and "CN=localhost" in line
        done = run("connect", "--tls", "--ca", ca_path, "-v", "localhost", str(served.port),
                   stdin=b"ok\n")
        served.stop()
    assert done.returncode == 0, done.stderr
    assert b"; verified;" in done.stderr and done.stdout == b"ok\n"


def test_bad_tls_arguments_exit_2_with_one_line(tmp_path) -> None:
    for args in (["connect", "--sni", "x", "127.0.0.1", "1"],
                 ["connect", "--tls", "--ca", str(tmp_path / "none.pem"), "127.0.0.1", "1"],
                 ["serve", "echo", "--cert", "x.pem"],
                 ["serve", "echo", "--tls", "--cert", str(tmp_path / "none.pem")]):
        done = run(*args)
        assert done.returncode == 2, args
        assert done.stderr.decode().count("\n") == 1, done.stderr


def test_our_client_against_openssl_s_server(tmp_path) -> None:
    need("openssl")
    cert, key = files(tmp_path, make_self_signed(["localhost", "127.0.0.1"]))
    server = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert,
                               "-key", key, "-rev", "-naccept", "1", "-alpn", "http/1.1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, bufsize=0)
    try:
        port = read_line_with(server, "ACCEPT").strip().rsplit(":", 1)[1]
        done = run("connect", "--tls", "-k", "-v", "--alpn", "http/1.1", "localhost", port,
                   stdin=b"tcpbench\n")
    finally:
        stop(server)
    assert done.returncode == 0, done.stderr
    assert b"hcnebpct" in done.stdout  # s_server -rev answers each line reversed
    assert b"ALPN http/1.1" in done.stderr and b"SNI localhost" in done.stderr


def test_openssl_s_client_against_our_listener() -> None:
    need("openssl")
    with Served("echo", "--tls") as served:
        client = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{served.port}",
                                   "-servername", "localhost", "-quiet"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        try:
            client.stdin.write(b"ping\n")
            client.stdin.flush()
            echoed = read_line_with(client, "ping")
        finally:
            stop(client)
        line = served.wait_for("TLS negotiated: TLSv1.3")
        served.stop()
    assert echoed == "ping\n" and "SNI localhost" in line


def test_our_client_against_ncat_ssl_listen(tmp_path) -> None:
    need("ncat")
    cert, key = files(tmp_path, make_self_signed(["localhost"]))  # no RSA key made under load
    port = str(closed_port())  # ncat cannot listen on port 0; a moment's race with others
    server = subprocess.Popen(["ncat", "--ssl", "--ssl-cert", cert, "--ssl-key", key, "-v", "-l",
                               "127.0.0.1", port],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              bufsize=0)
    try:
        read_line_with(server, "Listening on", stream="stderr")
        client = subprocess.Popen([*TCPBENCH, "connect", "--tls", "-k", "-v", "127.0.0.1", port],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, bufsize=0)
        try:
            client.stdin.write(b"from tcpbench\n")
            client.stdin.flush()
            assert "from tcpbench" in read_line_with(server, "from tcpbench")
            server.stdin.write(b"from ncat\n")
            server.stdin.flush()
            assert "from ncat" in read_line_with(client, "from ncat")
            _, err = client.communicate(timeout=20)  # stdin closes: EOF ends the session
        finally:
            stop(client)
    finally:
        stop(server)
    assert client.returncode == 0, err
    assert b"TLS negotiated" in err


def test_ncat_ssl_client_against_our_listener() -> None:
    need("ncat")
    with Served("echo", "--tls") as served:
        done = subprocess.run(["ncat", "--ssl", "127.0.0.1", str(served.port)], input=b"echo me\n",
                              capture_output=True, timeout=20)
        served.stop()
    assert done.stdout == b"echo me\n", done.stderr


def test_curl_insecure_100_requests_against_serve_http_tls() -> None:
    need("curl")
    with Served("http", "--tls") as served:
        served.drain()
        url = f"https://localhost:{served.port}/"
        outputs = [arg for _ in range(100) for arg in ("-o", "/dev/null", url)]
        done = subprocess.run(["curl", "--insecure", "-sS", "-v", "-w", "%{http_code}\\n", *outputs],
                              capture_output=True, timeout=60)
        served.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.decode().split() == ["200"] * 100
    assert b"ALPN: server accepted http/1.1" in done.stderr
    # Each request on its own connection: 100 handshakes, and 100 closes after the answer.
    with Served("http", "--tls", "--quiet-data") as served:
        served.drain()
        url = f"https://127.0.0.1:{served.port}/"
        outputs = [arg for _ in range(100) for arg in ("-o", "/dev/null", url)]
        fresh = subprocess.run(["curl", "--insecure", "-sS", "-H", "Connection: close",
                                "-w", "%{http_code} %{num_connects}\\n", *outputs],
                               capture_output=True, timeout=60)
        served.wait_for("TLS plaintext")
        code, out, _ = served.stop()
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.decode().splitlines() == ["200 1"] * 100
    assert out.count("TLS negotiated") == 100 and "RESET" not in out and "failed" not in out
    # curl without --insecure refuses the self-signed certificate: the fingerprint is how to check it.
    with Served("http", "--tls") as served:
        strict = subprocess.run(["curl", "-sS", f"https://localhost:{served.port}/"],
                                capture_output=True, timeout=20)
        served.wait_for("TLS handshake with")
        served.stop()
    assert strict.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION


class SmtpInThread:
    """An SMTP-like server (greeting, EHLO, STARTTLS, then TLS echo) on its own loop and thread."""

    def __init__(self) -> None:
        from tcpbench.engine.tls import server_tls

        self.context = server_tls("127.0.0.1").context
        self.ready = threading.Event()
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 smtp.test ESMTP\r\n")
            await reader.readline()
            writer.write(b"250-smtp.test\r\n250-STARTTLS\r\n250 SIZE 1000\r\n")
            await reader.readline()
            writer.write(b"220 2.0.0 Ready to start TLS\r\n")
            await writer.drain()
            await writer.start_tls(self.context)
            line = await reader.readline()
            writer.write(b"250 got " + line)
            await writer.drain()
            await reader.read()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> "SmtpInThread":
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_connect_starttls_smtp_shows_the_exchange_then_talks_tls() -> None:
    with SmtpInThread() as smtp:
        done = run("connect", "--starttls", "smtp", "-k", "-v", "127.0.0.1", str(smtp.port),
                   stdin=b"NOOP\n")
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "starttls < 220 smtp.test ESMTP" in err and "starttls > STARTTLS" in err
    assert err.index("starttls < 220 2.0.0 Ready") < err.index("TLS negotiated")
    assert done.stdout == b"250 got NOOP\n"


def test_probe_tls_reports_version_subject_and_expiry_per_port(tmp_path) -> None:
    import datetime
    import json

    now = datetime.datetime.now(datetime.timezone.utc)
    expired = make_self_signed(["old.example"], not_before=now - datetime.timedelta(days=40),
                               not_after=now - datetime.timedelta(days=10))
    cert, key = files(tmp_path, expired)
    with Served("motd", "--tls", "--message", "220 smtps\\x1b[31m here\\r\\n") as greeting, \
            Served("echo", "--tls", "--cert", cert, "--key", key) as old, \
            Served("echo") as plain:
        ports = f"{greeting.port},{old.port},{plain.port}"
        table = run("probe", "--tls", "--banner", "-w", "2", "127.0.0.1", ports)
        listed = run("probe", "--tls", "--json", "127.0.0.1", f"{greeting.port},{old.port}")
        for served in (greeting, old, plain):
            served.stop()
    out = table.stdout.decode()
    assert table.returncode == 1  # the plain port did not negotiate TLS
    lines = out.splitlines()
    tls_lines = [line for line in lines if line.startswith("    tls: ")]
    assert len(tls_lines) == 3
    assert "TLSv1.3" in tls_lines[0] and "CN=" in tls_lines[0] and "(in 30 days)" in tls_lines[0]
    assert "CN=old.example" in tls_lines[1] and "EXPIRED 10 days ago" in tls_lines[1]
    assert tls_lines[2].startswith("    tls: not negotiated: ") and "does not speak TLS" in tls_lines[2]
    assert "    banner: 220 smtps\\e[31m here\\r\\n" in lines  # read inside TLS, escaped
    assert "\x1b" not in out
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert [row["tls"]["negotiated"] for row in rows] == [True, True]
    assert rows[1]["tls"]["subject"].endswith("CN=old.example") or "CN=old.example" in rows[1]["tls"]["subject"]


HOSTILE = "evil\x1b]0;pwned\x07[bold red]x[/]"


def test_hostile_certificate_fields_are_escaped_in_connect_v_and_serve_json(tmp_path) -> None:
    import json

    cert, key = files(tmp_path, make_self_signed([HOSTILE, "localhost"]))
    with Served("echo", "--tls", "--cert", cert, "--key", key, "--json") as served:
        line = served.wait_for("tls_certificate")
        assert "evil" in json.loads(line)["subject"] and "\x1b" not in line
        done = run("connect", "--tls", "-k", "-v", "127.0.0.1", str(served.port), stdin=b"x\n")
        served.wait_for('"event": "tls"')
        served.stop()
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "CN=evil\\e]0" in err and "[bold red]x[/]" in err  # escaped, shown as text
    assert "\x1b" not in err and "\x07" not in err
