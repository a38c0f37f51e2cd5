"""`UsageError`: bad input from a person, the one error the command line and the UI share.

It lives here, beside `ui_spec`, and not in `tcpbench.cli`, so that the arrows
run one way: the CLI imports the app, the app and its screens parse what the
person typed (`tcpbench.ui_spec`), and nothing in the UI imports the CLI. The
CLI prints it as one line and exits with status 2; a dialog shows it under
the field. Standard library only, and nothing imported: the CLI must start fast.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: one line, exit status 2."""
