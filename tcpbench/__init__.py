"""tcpbench: a terminal workbench for TCP.

Kept import-free on purpose: the headless CLI must start fast, and importing
Textual costs about a quarter of a second.
"""

__version__ = "0.1.0"
