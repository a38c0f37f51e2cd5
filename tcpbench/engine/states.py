"""The states a `Session` goes through, as the engine names them (and the UI shows them)."""

CONNECTING = "connecting"
OPEN = "open"
PEER_FIN = "half-closed by peer"
OUR_FIN = "half-closed by us"
CLOSING = "closing"
CLOSED = "closed"
RESET = "reset"
ABORTED = "aborted"
FAILED = "failed"

FINAL_STATES = (CLOSED, RESET, ABORTED, FAILED)
