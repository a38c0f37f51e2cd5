"""A real headless Chromium against `tcpbench serve http` (the first seed's symptom).

One Chromium run loads the page under test RUNS times as iframes, one after the
other: each is a real document navigation over Chromium's own connection pool.
The page under test posts "ok" to its parent when it rendered; an error page
(ERR_CONNECTION_RESET) posts nothing. A driver page, served by a second tcpbench
http listener on another origin, counts and reports the result with a request
to /report?ok=N&fail=M, which we read from the access-log Notes.

The same test against `--naive` (the seed's netcat behaviour) must fail pages,
which proves the test can fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
import time

import pytest

from tcpbench.engine import SessionManager
from tcpbench.engine import events as ev
from tcpbench.engine.registry import build_service
from tcpbench.engine.tls import server_tls
from tests.procutil import process_group

CHROMIUM = "/usr/lib/chromium/chromium"
RUNS = 100
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"no Chromium at {CHROMIUM} (Debian package chromium)")

PAGE = '<!doctype html><title>t</title><p>a</p><script>parent.postMessage("ok", "*")</script>\n'
DRIVER = """<!doctype html><title>driver</title><body><script>
const target = %(target)s, runs = %(runs)d;
let ok = 0, fail = 0, i = 0, got = false;
window.addEventListener("message", e => { if (e.data === "ok") got = true; });
function next() {
  if (i >= runs) { fetch("/report?ok=" + ok + "&fail=" + fail); return; }
  got = false;
  const frame = document.createElement("iframe");
  let settled = false;
  const settle = () => {
    if (settled) return; settled = true;
    // the page's message may be handled just after the load event
    setTimeout(() => { got ? ok++ : fail++; frame.remove(); i++; next(); }, 0);
  };
  frame.onload = settle;
  setTimeout(settle, 5000);
  frame.src = target + "?run=" + i;
  document.body.appendChild(frame);
}
next();
</script>
"""


async def stop_browser(proc: asyncio.subprocess.Process) -> None:
    """Stop the browser we started and every process of its group (renderers, zygotes).

    Killing only the browser left renderers writing into the profile while the temporary
    directory was being removed ("Directory not empty"). The group is ours: the browser
    was started in a new session, so its group id is its pid.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await proc.wait()
    deadline = time.monotonic() + 10
    while _live_members(proc.pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _live_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are still running (zombies do not count)."""
    return process_group(pgid)[0]


async def run_chromium(target_service_options: dict, parser: str = "h11",
                       tls: bool = False) -> tuple[int, int, list[ev.Event]]:
    seen: list[ev.Event] = []
    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.join(tmp, "site")
        os.mkdir(site)
        async with SessionManager(linger=1.0) as manager:
            manager.subscribe(seen.append)
            target = await manager.start_listener(
                build_service("http", {"parser": parser, **target_service_options}),
                tls=server_tls("127.0.0.1", alpn=("http/1.1",)) if tls else None)
            url = f"{'https' if tls else 'http'}://127.0.0.1:{target.port}/"
            with open(os.path.join(site, "index.html"), "w") as f:
                f.write(DRIVER % {"target": repr(url), "runs": RUNS})
            # Over TLS the driver is https too: an http parent and an https frame are two sites,
            # so the frame runs in another process and its message can come after its load event.
            driver = await manager.start_listener(
                build_service("http", {"dir": site, "parser": parser}),
                tls=server_tls("127.0.0.1", alpn=("http/1.1",)) if tls else None)
            report = asyncio.get_running_loop().create_future()

            def on_event(event: ev.Event) -> None:
                if (isinstance(event, ev.ServiceNoted) and event.listener == driver.id
                        and dict(event.fields).get("path", "").startswith("/report")
                        and not report.done()):
                    report.set_result(dict(event.fields)["path"])

            manager.subscribe(on_event)
            proc = await asyncio.create_subprocess_exec(
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={os.path.join(tmp, 'profile')}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, "
                "EXCLUDE ::1", *(["--ignore-certificate-errors"] if tls else []),
                f"{'https' if tls else 'http'}://127.0.0.1:{driver.port}/",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True)
            try:
                path = await asyncio.wait_for(report, 45)
            finally:
                await manager.aclose()  # our FINs first: killing the browser resets what is open
                await stop_browser(proc)
    match = re.fullmatch(r"/report\?ok=(\d+)&fail=(\d+)", path)
    assert match, path
    return int(match[1]), int(match[2]), seen


@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_chromium_loads_the_page_100_times_without_a_failure(parser: str) -> None:
    ok, fail, seen = await run_chromium({"body": PAGE, "content_type": "text/html; charset=utf-8"},
                                        parser)
    assert (ok, fail) == (RUNS, 0)
    assert not [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]


@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_chromium_loads_the_page_100_times_over_tls_without_a_failure(parser: str) -> None:
    """`serve http --tls` with its self-signed certificate (`--ignore-certificate-errors`)."""
    ok, fail, seen = await run_chromium({"body": PAGE, "content_type": "text/html; charset=utf-8"},
                                        parser, tls=True)
    assert (ok, fail) == (RUNS, 0)
    negotiated = [e for e in seen if isinstance(e, ev.TlsNegotiated)]
    assert negotiated and all(e.version == "TLSv1.3" and e.alpn == "http/1.1" for e in negotiated)
    # Until the report: when we close at the end, Chromium answers our close_notify on an idle
    # pooled socket with RST (the record is unread data to it), so the end is not checked.
    report = next(i for i, e in enumerate(seen) if isinstance(e, ev.ServiceNoted)
                  and dict(e.fields).get("path", "").startswith("/report"))
    assert not [e for e in seen[:report] if isinstance(e, (ev.SessionReset, ev.SessionAborted))]
    # Chromium sometimes opens a spare connection and drops it mid-handshake once the first
    # one wins (its backup connect job): "closed" or, when our ServerHello was still unread,
    # "reset" is that; any other failure (a certificate, a protocol version) is ours.
    failed = [e for e in seen[:report] if isinstance(e, ev.TlsHandshakeFailed)]
    assert all(e.reason in ("closed", "reset") for e in failed) and len(failed) <= 2, failed


async def test_chromium_fails_against_the_naive_netcat_mode() -> None:
    ok, fail, seen = await run_chromium({"body": PAGE, "content_type": "text/html; charset=utf-8",
                                         "naive": True})
    assert ok + fail == RUNS
    assert fail > 0, "the naive (netcat) mode should make Chromium fail some loads"


async def test_chromium_reads_a_fuzz_http_body_to_the_end_without_a_reset() -> None:
    """The second seed's example 6 done right: Chromium gets a valid head, then
    gibberish, then our FIN (its unread request bytes are drained, never RST)."""
    seen: list[ev.Event] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with SessionManager(linger=1.0) as manager:
            manager.subscribe(seen.append)
            listener = await manager.start_listener(
                build_service("fuzz", {"mode": "http", "bytes": 200_000, "seed": 5}))
            proc = await asyncio.create_subprocess_exec(
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={os.path.join(tmp, 'profile')}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, "
                "EXCLUDE ::1", "--dump-dom", f"http://127.0.0.1:{listener.port}/",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True)
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                await manager.aclose()  # our FINs first: killing the browser resets what is open
                await stop_browser(proc)
    assert proc.returncode == 0
    assert out.startswith(b"<html>") and len(out) > 10_000  # the gibberish was parsed as a page
    sent = [e for e in seen if isinstance(e, ev.SessionClosed)]
    assert sent and max(e.bytes_out for e in sent) > 200_000
    assert not [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]
