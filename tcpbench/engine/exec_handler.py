"""exec: one program per connection, its stdin and stdout wired to the socket.

`tcpbench serve exec --allow-exec -- CMD [ARGS...]` (or `--shell 'COMMAND'`)
does what `ncat -e` / `ncat -c` do, with the lifecycle made explicit:

- socket -> the program's stdin, the program's stdout -> socket, both with flow
  control (a slow program throttles its peer through TCP; a slow peer blocks the
  program on a full pipe). Its stderr goes to the event log, escaped.
- The program's output ends (it exited) -> we half-close (FIN); the session
  closes once the peer is done (the engine's graceful close drains it).
- The peer closes -> the program's stdin gets EOF; if it is still running after
  the grace period it gets SIGTERM, then SIGKILL.
- Each program runs in its own process group (a new session), so a shell
  pipeline such as `tail -f messages | grep ...` is stopped as a whole.
- The program is always waited for: no zombies. If the manager shuts down,
  the handler task is cancelled and its `finally` kills and reaps the child.

The decisions (options, argv, environment, exit descriptions) are pure and
live in `tcpbench.services.exec_spec`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from asyncio.subprocess import PIPE, Process
from typing import Any, Sequence

from tcpbench.engine.conduit import Conduit, SessionClosedError
from tcpbench.safetext import escape_bytes, escape_text
from tcpbench.services.base import Option, OptionError, Service, ServiceInfo
from tcpbench.services.exec_spec import ExecSpec, child_env, describe_exit, exec_spec, split_stderr

READ_SIZE = 64 * 1024
STDERR_NOTE_LIMIT = 1000
"""Per session: a program that floods stderr must not flood the event log."""
OUTPUT_FLUSH_SECONDS = 2.0
"""After the program is gone, how long its last output may take to reach us
(a grandchild outside its process group could hold the pipe open forever)."""


class ExecService(Service):
    """Runs `spec` for every accepted connection. See the module docstring.

    Resource handling: each session owns one child process (its whole process
    group) and three pump tasks; all end, and the child is reaped, before the
    session's handler returns, whatever the exit path (cancellation included).

    Errors: a program that cannot be started is reported as a `note` with the
    OS reason and the session is closed gracefully.
    """

    name = "exec"
    summary = "run a program per connection: socket to its stdin, its stdout to the socket"
    options = (
        Option("command", tuple, None, "the program and its arguments, after --", "-- CMD [ARGS...]"),
        Option("shell", str, None, "run this shell command with sh -c (like ncat -c)", "COMMAND"),
        Option("allow_exec", bool, False, "confirm: run a program for every connection"),
        Option("grace", float, 2.0, "seconds the program may run after the peer closed, "
                                    "before SIGTERM (then SIGKILL)", "S"),
    )

    def __init__(self, command: Sequence[str] | None = None, shell: str | None = None,
                 allow_exec: bool = False, grace: float = 2.0) -> None:
        self.spec: ExecSpec = exec_spec(command, shell, allow_exec, grace)
        program = self.spec.argv[0]
        if shutil.which(program) is None:
            # Fail at startup with one line, not once per connection.
            raise OptionError(f"exec: cannot run {escape_text(program)!r}: no such program "
                              "(or not executable)" + ("" if "/" in program else " on PATH"))
        self.close_on_peer_fin = False
        self.children: dict[int, int] = {}
        """Live children: session id -> pid (for the UI and for tests)."""

    def describe(self) -> str:
        return f"exec {escape_text(self.spec.display)}"

    async def handler(self, conduit: Conduit) -> None:
        spec = self.spec
        env = child_env(os.environ, conduit.peer, conduit.local, conduit.id)
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env, start_new_session=True)
        except OSError as exc:
            conduit.note(f"cannot start {escape_text(spec.argv[0])}: {exc.strerror or exc}",
                         topic="exec", error=True)
            return  # the engine's wrapper closes the session gracefully
        self.children[conduit.id] = proc.pid
        conduit.note(f"started pid {proc.pid}: {escape_text(spec.display)}", topic="exec", pid=proc.pid)
        tasks: list[asyncio.Task[Any]] = []
        try:
            to_child = asyncio.create_task(_pump_in(conduit, proc))
            from_child = asyncio.create_task(_pump_out(conduit, proc))
            tasks = [to_child, from_child, asyncio.create_task(_pump_err(conduit, proc))]
            exited = asyncio.create_task(proc.wait())
            # The session can end (RST, abort) while stdin is blocked on a program
            # that does not read: watch for that apart from the stdin pump.
            gone = asyncio.create_task(conduit.wait_closed())
            tasks += [exited, gone]
            await asyncio.wait([to_child, from_child, gone], return_when=asyncio.FIRST_COMPLETED)
            if from_child.done() and not gone.done():
                # Its output ended (it exited or closed stdout): FIN to the peer.
                conduit.half_close()
                await asyncio.wait([exited, to_child, gone], return_when=asyncio.FIRST_COMPLETED)
            if gone.done() and not to_child.done():
                to_child.cancel()
                _abort_stdin(proc)  # nobody will read what is still queued: EOF now
            if not exited.done():
                # The peer is done (stdin got EOF): the program may finish on its own.
                await asyncio.wait([exited], timeout=spec.grace)
            if not exited.done():
                await _terminate(conduit, proc, spec.grace)
            await asyncio.wait([from_child], timeout=OUTPUT_FLUSH_SECONDS)
            conduit.half_close()
            conduit.note(f"pid {proc.pid} {describe_exit(proc.returncode)}", topic="exec",
                         pid=proc.pid, returncode=proc.returncode)
        finally:
            # The session is over, so is every process it started: the group
            # (a pipeline's tail -f, a background job) gets SIGKILL; then the
            # pipes reach EOF and the pumps end on their own.
            _kill_group(proc, signal.SIGKILL)
            # Reap it whatever happens (cancellation included): no zombies.
            await asyncio.shield(proc.wait())
            # Socket -> stdin and the session watch are pointless now (and may wait
            # for the peer forever); the output pumps get a moment to deliver what
            # the program wrote.
            for task in tasks[:1] + tasks[3:]:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)
            for task in tasks:
                task.cancel()
            _close_pipes(proc)
            self.children.pop(conduit.id, None)


async def _pump_in(conduit: Conduit, proc: Process) -> None:
    """Socket -> stdin until the peer's FIN; then stdin gets EOF."""
    stdin = proc.stdin
    assert stdin is not None
    open_ = True
    while True:
        data = await conduit.read()
        if not data:
            break
        if not open_:
            continue  # the program closed its stdin: read on so the peer is not reset
        try:
            stdin.write(data)
            await stdin.drain()  # a slow program throttles the peer (TCP window)
        except (BrokenPipeError, ConnectionResetError):
            open_ = False
    if open_:
        try:
            stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass


async def _pump_out(conduit: Conduit, proc: Process) -> None:
    """stdout -> socket until EOF; a slow peer blocks the program on a full pipe."""
    stdout = proc.stdout
    assert stdout is not None
    while True:
        data = await stdout.read(READ_SIZE)
        if not data:
            return
        try:
            await conduit.write(data)
        except SessionClosedError:
            return


async def _pump_err(conduit: Conduit, proc: Process) -> None:
    """stderr -> notes in the event log, one per line, escaped, bounded in count."""
    stderr = proc.stderr
    assert stderr is not None
    pending = b""
    count = 0
    while True:
        data = await stderr.read(READ_SIZE)
        lines, pending = split_stderr(pending, data)
        if not data and pending:
            lines.append(pending)
            pending = b""
        for line in lines:
            count += 1
            if count <= STDERR_NOTE_LIMIT:
                conduit.note(escape_bytes(line), topic="stderr", pid=proc.pid)
            elif count == STDERR_NOTE_LIMIT + 1:
                conduit.note(f"more stderr from pid {proc.pid} is not shown", topic="stderr")
        if not data:
            return


async def _terminate(conduit: Conduit, proc: Process, grace: float) -> None:
    conduit.note(f"pid {proc.pid} still runs after the peer closed: SIGTERM", topic="exec")
    _kill_group(proc, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), max(grace, 0.1))
    except TimeoutError:
        conduit.note(f"pid {proc.pid} ignored SIGTERM: SIGKILL", topic="exec")
    # Members of its group may ignore SIGTERM even when the leader did not.
    _kill_group(proc, signal.SIGKILL)
    await proc.wait()


def _kill_group(proc: Process, sig: int) -> None:
    """Signal the child's process group (its own session, see start_new_session).

    Only ever called while the session's child is alive or was reaped moments
    ago: a group id stays reserved while any member lives, so the signal reaches
    nothing but what this session started.
    """
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # a member changed its uid (setuid program): the leader at least
        if proc.returncode is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


def _abort_stdin(proc: Process) -> None:
    if proc.stdin is not None:
        proc.stdin.transport.abort()


def _close_pipes(proc: Process) -> None:
    # A grandchild outside the group could keep a pipe open forever; the
    # subprocess transport has no public accessor, so close it defensively.
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()


EXEC_INFO = ServiceInfo(ExecService.name, ExecService.summary, ExecService.options, ExecService,
                        dangerous=True)
