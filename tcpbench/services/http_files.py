"""Map an HTTP request target to a file under a root directory, and read it.

This is the only part of the http service that touches the file system (reading
files is not network I/O, so it stays in the pure layer, but kept apart here).

No target may reach outside the root: the target is percent-decoded *before* it
is split into segments (so `%2e%2e` and `%2f` are caught), `..` segments are
refused, empty segments (`//etc`) are dropped so an absolute path stays under
the root, NUL bytes are refused, and the final path is resolved with symlinks
and checked to lie under the resolved root (a symlink leading out is a 404).

Files of any size are served. Up to `INLINE_LIMIT` bytes are read into the
answer; a larger body is named (path, offset, length) for the engine to stream
with flow control (`SendFile`), so the process never holds a big file.

Ranges (RFC 9110 section 14), for resumable downloads (`curl -C -`, browsers,
download managers): one range, `bytes=a-b`, `bytes=a-` or `bytes=-n`, gets 206
with Content-Range; a range past the end gets 416 with `Content-Range: bytes
*/SIZE`. What we may ignore we ignore and send the whole file (200): a Range
that does not parse, several ranges (no multipart/byteranges here), or any
If-Range (we cannot tell whether the client's copy is current).
"""

from __future__ import annotations

import html
import mimetypes
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

INLINE_LIMIT = 256 * 1024
"""Bodies up to this are read into the answer; larger ones are streamed by the engine."""

_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(?:(\d{1,20})-(\d{0,20})|-(\d{1,20}))[ \t]*")
UNSATISFIABLE = "unsatisfiable"


@dataclass(frozen=True, slots=True)
class FileAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    location: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """More headers for the answer (Accept-Ranges, Content-Range)."""
    stream: tuple[str, int, int] | None = None
    """(path, offset, length) of a body too big for `body` (which is then empty)."""

    @property
    def length(self) -> int:
        """The body's length as Content-Length announces it."""
        return self.stream[2] if self.stream is not None else len(self.body)


def parse_range(value: bytes | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte positions (inclusive) of a single `Range` for a `size`-byte file,
    `UNSATISFIABLE`, or None when the header is absent or is to be ignored."""
    if value is None:
        return None
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    match = _RANGE.fullmatch(text)
    if match is None:
        return None  # not one range we understand (several, other units, garbage): ignored
    first, last, suffix = match.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # RFC 9110 14.1.1: an invalid range-spec; the whole header is ignored
    if start >= size:
        return UNSATISFIABLE
    return start, min(int(last), size - 1) if last else size - 1


def _plain(status: int, text: str) -> FileAnswer:
    return FileAnswer(status, text.encode())


class DirectoryRoot:
    """Serves files from `root` (which must exist and be a directory).

    Errors: the constructor raises `ValueError` with one line if `root` is not a directory.
    """

    def __init__(self, root: str) -> None:
        if not os.path.isdir(root):
            raise ValueError(f"--dir {root!r} is not a directory")
        self.root = os.path.realpath(root)

    def resolve(self, target: bytes) -> tuple[str | None, FileAnswer | None]:
        """The file system path for `target`, or an answer (400/404/301) instead."""
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            return None, _plain(400, "bad request target\n")
        if text == "*" or not (text.startswith("/") or text.startswith(("http://", "https://"))):
            return None, _plain(400, "bad request target\n")
        raw_path = urlsplit(text).path or "/"
        decoded = unquote_to_bytes(raw_path)
        if b"\x00" in decoded:
            return None, _plain(400, "bad request target\n")
        parts: list[str] = []
        for segment in decoded.split(b"/"):
            if segment in (b"", b"."):
                continue
            if segment == b"..":
                return None, _plain(400, "'..' is not allowed in paths\n")
            parts.append(os.fsdecode(segment))
        candidate = os.path.realpath(os.path.join(self.root, *parts))
        if not self._inside(candidate):
            return None, _plain(404, "not found\n")
        if os.path.isdir(candidate):
            if not raw_path.endswith("/"):
                return None, FileAnswer(301, b"moved\n", location=raw_path + "/")
            index = os.path.join(candidate, "index.html")
            if os.path.isfile(index) and os.path.realpath(index).startswith(self.root + os.sep):
                return index, None
            return None, self._listing(candidate, raw_path)
        if not os.path.isfile(candidate):
            return None, _plain(404, "not found\n")
        return candidate, None

    def _inside(self, real_path: str) -> bool:
        return real_path == self.root or real_path.startswith(self.root + os.sep)

    def answer(self, target: bytes, range_header: bytes | None = None) -> FileAnswer:
        """200 with the file (206 for a satisfiable `range_header`, 416 for another), or
        the error answer. Large bodies are named in `stream`, not read."""
        path, answer = self.resolve(target)
        if answer is not None:
            return answer
        assert path is not None
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                wanted = parse_range(range_header, size)
                if wanted == UNSATISFIABLE:
                    return FileAnswer(416, b"range not satisfiable\n", headers=((b"Accept-Ranges", b"bytes"),
                                                         (b"Content-Range", b"bytes */%d" % size)))
                status, headers = 200, ((b"Accept-Ranges", b"bytes"),)
                first, length = 0, size
                if isinstance(wanted, tuple):
                    first, length = wanted[0], wanted[1] - wanted[0] + 1
                    status = 206
                    headers += ((b"Content-Range", b"bytes %d-%d/%d" % (first, wanted[1], size)),)
                stream = None
                body = b""
                if length <= INLINE_LIMIT:
                    handle.seek(first)
                    body = handle.read(length)
                    if len(body) != length:  # it shrank as we read it
                        return _plain(503, "the file changed while it was read; try again\n")
                else:
                    stream = (path, first, length)
        except OSError:
            return _plain(403, "cannot read this file\n")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",
                                                                 "application/json"):
            content_type += "; charset=utf-8"
        return FileAnswer(status, body, content_type, headers=headers, stream=stream)

    def _listing(self, directory: str, url_path: str) -> FileAnswer:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return _plain(403, "cannot list this directory\n")
        title = html.escape(url_path)
        rows = []
        for name in names:
            path = os.path.join(directory, name)
            if not self._inside(os.path.realpath(path)):
                continue  # a symlink out of the root: its link would only give 404
            slash = "/" if os.path.isdir(path) else ""
            rows.append(f'<li><a href="{quote(name)}{slash}">{html.escape(name)}{slash}</a></li>')
        page = (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
                f"<h1>{title}</h1><ul>{''.join(rows)}</ul>\n")
        return FileAnswer(200, page.encode("utf-8", "surrogateescape"), "text/html; charset=utf-8")
