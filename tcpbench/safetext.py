"""Bytes from the network made safe to show: printable ASCII, one character per cell.

Terminals act on ESC, OSC and C1 bytes, and Textual/Rich pass them through;
markup parsers act on `[...]`. So every byte a peer controls (payloads, chat
nicknames, HTTP paths, banners, host names) goes through `escape_bytes` or
`escape_text` before it reaches a screen, and is then shown through a path with
no markup parser. Printable ASCII stays itself; `\\n \\r \\t \\e \\0 \\\\` and `\\xNN`
stand for the rest, so nothing is lost and nothing is hidden.
"""

from __future__ import annotations

_NAMED = {0x00: "\\0", 0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x1B: "\\e", 0x5C: "\\\\"}
BYTE_TO_TEXT: tuple[str, ...] = tuple(
    _NAMED.get(b, chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}") for b in range(256)
)
_HEX_ASCII = bytes(b if 0x20 <= b <= 0x7E else 0x2E for b in range(256))
_PLAIN = bytes(b for b in range(256) if BYTE_TO_TEXT[b] == chr(b))
_PLAIN_OR_LINE_BREAKS = _PLAIN + b"\t\n\r\\"


def escape_bytes(data: bytes) -> str:
    """Every byte as printable ASCII (lossless: `unescape_bytes` reverses it)."""
    # Runs per chunk on the serve path, so every branch is C-level work: bytes that need
    # no escape are decoded, text protocols get four replaces, the rest goes through repr.
    if data.isascii():  # stops at the first high byte: binary skips both checks below
        if not data.translate(None, _PLAIN):
            return data.decode("ascii")
        if not data.translate(None, _PLAIN_OR_LINE_BREAKS):
            # Text protocols (an HTTP head, SMTP, chat): only CR, LF, tab and backslash to
            # escape, which four replaces do ~4x faster than a table join for 60 bytes.
            text = data.decode("ascii")
            if "\\" in text:
                text = text.replace("\\", "\\\\")
            return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return _escape_binary(data)


def _escape_binary(data: bytes) -> str:
    """`escape_bytes` for bytes that are not plain text, from `repr`, which is C-fast."""
    # A random 64-byte preview (a line per chunk on the serve path) took 2.45 us through a
    # table join (`BYTE_TO_TEXT`, which still defines the text), 1.91 us through repr with
    # the data split at backslashes, 1.13 us (averaged over random previews) with a regex
    # pass for fix-ups next to a backslash, and 0.92 us this way, half of it repr itself:
    # the checks are on the 64 bytes, not the ~220 characters, and most random previews
    # need no fix-up at all. repr writes printable ASCII as itself, a backslash as `\\`,
    # and \t \n \r \xNN for the rest; it differs from the table only for NUL, ESC and,
    # when both quotes occur, the quote.
    text = repr(data)[2:-1]
    # Membership of a byte value: ~20 ns, where `b"\0" in data` searches for a substring
    # (~150 ns), as `"\\x00" in text` does through 220 characters.
    nul = 0x00 in data
    esc = 0x1B in data
    quotes = 0x27 in data and 0x22 in data
    if nul or esc or quotes:
        backslash = 0x5C in data
        if backslash:
            # An escaped backslash followed by `x00` is not a NUL: set escaped backslashes
            # aside first. Every backslash in repr's text starts an escape, and the only
            # escape whose second character is a backslash is `\\`, so a left-to-right
            # replace takes exactly those; NUL cannot occur in repr's text, so it is a
            # safe stand-in.
            text = text.replace("\\\\", "\0")
        if nul:
            text = text.replace("\\x00", "\\0")
        if esc:
            text = text.replace("\\x1b", "\\e")
        if quotes:
            text = text.replace("\\'", "'")
        if backslash:
            text = text.replace("\0", "\\\\")
    return text


def escape_text(text: str) -> str:
    """A str from a peer (a decoded name, a path) as printable ASCII."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # nothing to escape (the common case, checked in C)
    try:
        return escape_bytes(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        # A lone surrogate outside surrogateescape's U+DC80-DCFF (from a paste, a JSON
        # string) has no UTF-8 form: show its code point, keep the rest exact.
        return "".join(_escape_char(ch) for ch in text)


def escape_note(text: str) -> str:
    """A service's note (`ServiceNoted.text`) as printable ASCII.

    Services build notes from peer text they have escaped already (a chat line's ESC
    arrives as the two characters `\\e`, an HTTP path through `escape_bytes`), so a
    backslash is kept as it is rather than escaped a second time into `\\\\e`. Every
    other character outside printable ASCII (a control, UTF-8 text) is escaped.
    """
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C
    return "".join(ch if ch.isascii() and ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    try:
        return escape_bytes(ch.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return f"\\u{ord(ch):04x}"


def text_lines(data: bytes, *, max_line: int = 4096) -> list[str]:
    """Split on LF (kept visible as a trailing `\\n`), escape, and cut very long lines."""
    out: list[str] = []
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", start, start + max_line)
        if end == -1:
            end = min(size, start + max_line)
        else:
            end += 1
        out.append(escape_bytes(data[start:end]))
        start = end
    return out


def hexdump_row(offset: int, row: bytes, width: int = 16) -> str:
    """`offset  hex bytes  |ascii|` for rows of `width` bytes: `4 * width + 13` characters
    (77 for 16 bytes, 45 for 8, 29 for 4), a short last row padded to the same length."""
    return (f"{offset:08x}  {row.hex(' '):<{3 * width - 1}}  "
            f"|{row.translate(_HEX_ASCII).decode('ascii'):<{width}}|")


def _encode(text: str) -> bytes:
    # surrogateescape: a command-line argument holding a byte that is not UTF-8 (Python
    # decodes argv that way) is sent as that byte.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise EscapeError(f"U+{code:04X} is half of a surrogate pair, not a character: "
                          "retype the text (or write bytes as \\xNN)") from None


_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "e": b"\x1b", "0": b"\x00", "\\": b"\\"}


class EscapeError(ValueError):
    """A bad escape in operator input; `str()` says which."""


def unescape_bytes(text: str) -> bytes:
    """Operator input to bytes: `\\n \\r \\t \\e \\0 \\\\ \\xNN` are escapes, the rest UTF-8."""
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "\\":
            j = text.find("\\", i)
            if j == -1:
                j = n
            out += _encode(text[i:j])
            i = j
            continue
        if i + 1 >= n:
            raise EscapeError("a lone backslash at the end (write \\\\ for a backslash)")
        code = text[i + 1]
        if code in _ESCAPES:
            out += _ESCAPES[code]
            i += 2
        elif code == "x":
            digits = text[i + 2:i + 4]
            try:
                if len(digits) != 2:
                    raise ValueError
                out.append(int(digits, 16))
            except ValueError:
                raise EscapeError(f"bad escape \\x{digits}: write two hex digits, e.g. \\x0d") from None
            i += 4
        else:
            raise EscapeError(f"unknown escape \\{escape_text(code)} (known: \\n \\r \\t \\e \\0 \\\\ \\xNN)")
    return bytes(out)
