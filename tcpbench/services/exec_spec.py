"""The pure parts of `exec`: option validation, the argv to run, the child's environment.

`exec` runs a program per connection (what `ncat -e CMD` and `ncat -c "shell"` do):
the socket becomes the program's stdin and stdout. The I/O half lives in
`tcpbench.engine.exec_handler`; everything that is a decision lives here and is
tested without starting a process.

Why `--shell` runs `sh -c 'sh -c "$1"; exit $?'` and not `sh -c CMD`: with ncat,
`$PPID` in the shell command is ncat's per-connection child, so the seed's
improved chat server (`sed -ue "s/^/$PPID: /" | ... | grep -v "^$PPID:"`) tells
clients apart by it. Run directly by us, every connection's shell would see
tcpbench's own pid. One intermediate shell per connection (kept alive by the
trailing `exit $?`, so it cannot be replaced by `exec`) gives each connection its
own `$PPID`, as with ncat.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from tcpbench.services.base import OptionError

SHELL = "/bin/sh"
SHELL_WRAPPER = 'sh -c "$1"; exit $?'
MAX_GRACE = 60.0

REFUSAL = ("exec runs a program for every connection, with your rights: "
           "add --allow-exec to confirm you want that")


@dataclass(frozen=True)
class ExecSpec:
    """What to run for each connection."""

    argv: tuple[str, ...]
    shell_command: str | None
    grace: float
    """Seconds the program may run on after the peer closed (its stdin hit EOF)
    before it gets SIGTERM; SIGKILL follows `grace` seconds later."""

    @property
    def display(self) -> str:
        """The command as a person would type it."""
        if self.shell_command is not None:
            return self.shell_command
        return shlex.join(self.argv)


def exec_spec(command: Sequence[str] | None, shell: str | None, allow_exec: bool,
              grace: float) -> ExecSpec:
    """Validate the options of `exec`. Errors: `OptionError`, one line."""
    if not allow_exec:
        raise OptionError(REFUSAL)
    argv = tuple(command or ())
    if argv and argv[0] == "--":
        argv = argv[1:]
    if shell is not None and argv:
        raise OptionError("exec: give --shell 'COMMAND' or -- CMD [ARGS...], not both")
    if shell is not None:
        if not shell.strip():
            raise OptionError("exec: --shell needs a command")
        if "\0" in shell:
            raise OptionError("exec: the command contains a NUL byte")
        run = (SHELL, "-c", SHELL_WRAPPER, "tcpbench-exec", shell)
    elif argv:
        if not argv[0]:
            raise OptionError("exec: the program name is empty")
        if any("\0" in arg for arg in argv):
            raise OptionError("exec: an argument contains a NUL byte")
        run = argv
    else:
        raise OptionError("exec: say what to run: -- CMD [ARGS...] or --shell 'COMMAND'")
    if not 0 <= grace <= MAX_GRACE:
        raise OptionError(f"exec: --grace must be between 0 and {MAX_GRACE:g} seconds")
    return ExecSpec(run, shell, float(grace))


def child_env(base: Mapping[str, str], peer: tuple[str, int], local: tuple[str, int],
              session: int) -> dict[str, str]:
    """The program's environment: ours plus who is on the other end.

    Like ncat's NCAT_REMOTE_ADDR and friends, so a script can greet or log its peer.
    """
    env = dict(base)
    env.update({
        "TCPBENCH_PEER_HOST": peer[0],
        "TCPBENCH_PEER_PORT": str(peer[1]),
        "TCPBENCH_LOCAL_HOST": local[0],
        "TCPBENCH_LOCAL_PORT": str(local[1]),
        "TCPBENCH_SESSION": str(session),
    })
    return env


def describe_exit(returncode: int | None) -> str:
    """`exited with status 3`, `killed by signal 15 (SIGTERM)`."""
    if returncode is None:
        return "still running"
    if returncode >= 0:
        return f"exited with status {returncode}"
    number = -returncode
    names = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 13: "SIGPIPE", 15: "SIGTERM"}
    name = names.get(number)
    return f"killed by signal {number}" + (f" ({name})" if name else "")


def split_stderr(pending: bytes, data: bytes, max_line: int = 512) -> tuple[list[bytes], bytes]:
    """Cut stderr into lines for the event log; `pending` is the unfinished tail.

    Returns the complete lines (without the newline) and the new tail. A tail
    longer than `max_line` is emitted as a line of its own, so memory stays bounded.
    """
    buf = pending + data
    lines = buf.split(b"\n")
    tail = lines.pop()
    out = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    while len(tail) > max_line:
        out.append(tail[:max_line])
        tail = tail[max_line:]
    return out, tail


__all__ = ["ExecSpec", "REFUSAL", "child_env", "describe_exit", "exec_spec", "split_stderr"]
