"""exec on real sockets and real processes: the seed's ncat -c examples, lifecycle, no zombies."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tcpbench.engine import SessionManager
from tcpbench.engine.events import ServiceNoted
from tcpbench.engine.exec_handler import ExecService
from tcpbench.services.base import OptionError
from tcpbench.services.exec_spec import (
    REFUSAL,
    child_env,
    describe_exit,
    exec_spec,
    split_stderr,
)
from tests.conftest import wait_until
from tests.procutil import process_group


def _gone(pid: int) -> bool:
    """True once the pid is reaped: a zombie still answers kill(pid, 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _group_gone(pgid: int) -> bool:
    """No live process left in the group. Zombies do not count: an orphaned
    grandchild is reaped by init (this container's pid 1 does not reap, which
    is outside tcpbench's reach)."""
    return not process_group(pgid)[0]


async def _start(manager: SessionManager, **options):
    notes: list[ServiceNoted] = []
    manager.subscribe(lambda e: notes.append(e) if isinstance(e, ServiceNoted) else None)
    service = ExecService(allow_exec=True, **options)
    listener = await manager.start_listener(service, "127.0.0.1", 0)
    return service, listener, notes


# --- the pure parts ---------------------------------------------------------------


def test_spec_refuses_without_allow_exec_and_validates():
    with pytest.raises(OptionError) as info:
        exec_spec(["cat"], None, False, 2.0)
    assert str(info.value) == REFUSAL and "\n" not in REFUSAL
    with pytest.raises(OptionError, match="not both"):
        exec_spec(["cat"], "cat", True, 2.0)
    with pytest.raises(OptionError, match="say what to run"):
        exec_spec(["--"], None, True, 2.0)
    with pytest.raises(OptionError, match="grace"):
        exec_spec(["cat"], None, True, -1)
    assert exec_spec(["--", "cat", "-n"], None, True, 1).argv == ("cat", "-n")
    shell = exec_spec(None, "echo $PPID", True, 1)
    assert shell.argv[-1] == "echo $PPID" and shell.display == "echo $PPID"


def test_env_and_exit_descriptions():
    env = child_env({"PATH": "/bin"}, ("::1", 5), ("127.0.0.1", 6), 9)
    assert env == {"PATH": "/bin", "TCPBENCH_PEER_HOST": "::1", "TCPBENCH_PEER_PORT": "5",
                   "TCPBENCH_LOCAL_HOST": "127.0.0.1", "TCPBENCH_LOCAL_PORT": "6", "TCPBENCH_SESSION": "9"}
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(-15) == "killed by signal 15 (SIGTERM)"
    assert split_stderr(b"ab", b"c\r\nde") == ([b"abc"], b"de")
    lines, tail = split_stderr(b"", b"x" * 1200, max_line=512)
    assert lines == [b"x" * 512, b"x" * 512] and tail == b"x" * 176


# --- the seed's examples ------------------------------------------------------------


async def test_cat_is_an_echo_server_and_the_child_is_reaped(manager):
    service, listener, notes = await _start(manager, command=["cat"], grace=1.0)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"is this on?\n")
        assert await reader.readline() == b"is this on?\n"
        pid = next(iter(service.children.values()))
        writer.write(b"this is echoed.\n")
        writer.write_eof()
        assert await reader.read() == b"this is echoed.\n"  # then a clean EOF, no reset
        writer.close()
        await wait_until(lambda: not service.children, 5, "child reaped")
    assert _gone(pid)
    assert any(n.text == f"pid {pid} exited with status 0" for n in notes)


async def test_echo_hello_world_is_a_motd_with_a_clean_close(manager):
    service, listener, notes = await _start(manager, command=["echo", "hello", "world"])
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await reader.read() == b"hello world\n"
        # The handler does not wait for the peer's FIN to finish with the program.
        await wait_until(lambda: not service.children, 0.8, "handler done without the peer's FIN")
        writer.close()
        await wait_until(lambda: not listener.sessions, 5, "session closed")
    session = manager.history[max(manager.history)]
    assert session.state == "closed"


async def test_the_seed_chat_pipeline_with_two_clients(manager, tmp_path):
    if not (shutil.which("tail") and shutil.which("sed") and shutil.which("grep")):
        pytest.skip("needs sed, tail and grep")
    (tmp_path / "messages").touch()
    command = (f"cd {tmp_path} && sed -ue \"s/^/$PPID: /\" | cat >>messages | tail -f messages"
               " | grep --line-buffered -v \"^$PPID:\"")
    service, listener, notes = await _start(manager, shell=command, grace=0.2)
    async with asyncio.timeout(15):
        ra, wa = await asyncio.open_connection("127.0.0.1", listener.port)
        rb, wb = await asyncio.open_connection("127.0.0.1", listener.port)
        await wait_until(lambda: len(service.children) == 2, 5, "two programs")
        pids = list(service.children.values())
        wa.write(b"hi from a\n")
        line = await rb.readline()
        assert line.endswith(b": hi from a\n")
        tag_a = line.split(b":")[0]
        wb.write(b"hello a\n")
        got_a = await ra.readline()
        assert got_a.endswith(b": hello a\n")  # a never saw its own line first
        assert got_a.split(b":")[0] != tag_a  # each connection has its own $PPID
        wa.close()
        wb.close()
        # tail -f never ends by itself: the grace period, then SIGTERM to the group.
        await wait_until(lambda: not service.children, 10, "programs stopped")
    for pid in pids:
        assert _gone(pid)
        # The whole pipeline, tail -f included (SIGKILL lands a moment after kill() returns).
        await wait_until(lambda: _group_gone(pid), 5, f"group {pid} gone")
    assert any("SIGTERM" in n.text for n in notes)


# --- lifecycle ---------------------------------------------------------------------------


async def test_environment_names_both_ends(manager):
    service, listener, notes = await _start(
        manager, shell="echo $TCPBENCH_PEER_HOST $TCPBENCH_PEER_PORT $TCPBENCH_LOCAL_HOST "
                       "$TCPBENCH_LOCAL_PORT")
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        own = writer.get_extra_info("sockname")
        assert (await reader.read()).decode() == f"{own[0]} {own[1]} 127.0.0.1 {listener.port}\n"
        writer.close()


async def test_peer_close_terminates_the_program_then_sigkill(manager):
    service, listener, notes = await _start(manager, command=["sh", "-c", "trap '' TERM; sleep 30"],
                                          grace=0.2)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await wait_until(lambda: service.children, 5, "program started")
        pid = next(iter(service.children.values()))
        writer.close()
        await wait_until(lambda: not service.children, 5, "program stopped")
    assert _gone(pid)
    await wait_until(lambda: _group_gone(pid), 5, f"group {pid} gone")
    texts = [n.text for n in notes]
    assert f"pid {pid} still runs after the peer closed: SIGTERM" in texts
    assert f"pid {pid} ignored SIGTERM: SIGKILL" in texts
    assert f"pid {pid} killed by signal 9 (SIGKILL)" in texts


async def test_manager_shutdown_kills_and_reaps_children():
    async with asyncio.timeout(10):
        async with SessionManager(linger=0.2) as manager:
            service, listener, notes = await _start(manager, command=["sleep", "30"], grace=5)
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            await wait_until(lambda: service.children, 5, "program started")
            pid = next(iter(service.children.values()))
        assert _gone(pid)
        assert not service.children
        writer.close()


async def test_stderr_goes_to_the_event_log_escaped(manager):
    service, listener, notes = await _start(
        manager, shell="printf 'oops\\n\\033]0;owned\\007\\n' >&2; echo done")
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await reader.read() == b"done\n"
        writer.close()
        await wait_until(lambda: len([n for n in notes if n.topic == "stderr"]) == 2, 5, "stderr notes")
    assert [n.text for n in notes if n.topic == "stderr"] == ["oops", "\\e]0;owned\\x07"]


def test_a_missing_program_is_refused_at_startup():
    with pytest.raises(OptionError, match="no such program"):
        ExecService(command=["/nonexistent/tcpbench-prog"], allow_exec=True)
    with pytest.raises(OptionError, match="on PATH"):
        ExecService(command=["tcpbench-no-such-program"], allow_exec=True)


async def test_a_program_that_cannot_start_is_reported_and_the_client_closed(manager, tmp_path):
    program = tmp_path / "prog"
    program.write_text("#!/bin/sh\necho hi\n")
    program.chmod(0o755)
    service, listener, notes = await _start(manager, command=[str(program)])
    program.unlink()  # gone between startup and the connection
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await reader.read() == b""
        writer.close()
    assert any(n.text.startswith(f"cannot start {program}: No such file") for n in notes)


async def test_a_slow_peer_throttles_the_program(manager):
    size = 32_000_000
    service, listener, notes = await _start(manager, command=["head", "-c", str(size), "/dev/zero"])
    async with asyncio.timeout(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, limit=1 << 16)
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        await wait_until(lambda: session.bytes_out > 0, 5, "first bytes")
        # Not reading: the pipe and the socket buffers fill, then the program blocks.
        peak = 0
        for _ in range(30):
            peak = max(peak, session.write_buffer_size)
            await asyncio.sleep(0.01)
        assert peak <= 1024 * 1024, peak
        assert session.bytes_out < size  # it did not all pile up in our memory
        total = 0
        while chunk := await reader.read(1 << 20):
            total += len(chunk)
        assert total == size
        writer.close()


async def test_a_program_that_does_not_read_throttles_the_peer(manager):
    service, listener, notes = await _start(manager, command=["sleep", "30"], grace=0.1)
    async with asyncio.timeout(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await wait_until(lambda: service.children, 5, "program started")
        session = manager.sessions[next(iter(listener.sessions))]
        block = b"\x00" * (1 << 20)

        async def flood() -> None:
            for _ in range(64):  # bounded: 64 MiB at most
                writer.write(block)
                await writer.drain()

        task = asyncio.create_task(flood())
        previous = -1
        for _ in range(200):  # until the session stops taking bytes (bounded, about 1 s)
            await asyncio.sleep(0.02)
            if session.bytes_in == previous and previous > 0:
                break
            previous = session.bytes_in
        # The pipe (64 KiB), the stdin buffer and the conduit queue (256 KiB): no more.
        assert 0 < session.bytes_in <= 1024 * 1024, session.bytes_in
        assert not task.done()
        task.cancel()
        # The operator aborts the stuck session: its program goes too, though its
        # stdin is still blocked. (A peer's RST is only noticed once the engine
        # reads the socket again: reading is paused here, by design.)
        session.abort("operator")
        await wait_until(lambda: not service.children, 5, "program stopped")
        writer.transport.abort()
