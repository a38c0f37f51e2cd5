"""Map an HTTP request target to a file under a root directory, and read it.

This is the only part of the http service that touches the file system (reading
files is not network I/O, so it stays in the pure layer, but kept apart here).

No target may reach outside the root: the target is percent-decoded *before* it
is split into segments (so `%2e%2e` and `%2f` are caught), `..` segments are
refused, empty segments (`//etc`) are dropped so an absolute path stays under
the root, NUL bytes are refused, and the final path is resolved with symlinks
and checked to lie under the resolved root (a symlink leading out is a 404).
"""

from __future__ import annotations

import html
import mimetypes
import os
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

MAX_FILE = 64 * 1024 * 1024
"""Files are read whole (a Send effect carries bytes); larger ones get 413."""


@dataclass(frozen=True, slots=True)
class FileAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    location: str | None = None


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
        if candidate != self.root and not candidate.startswith(self.root + os.sep):
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

    def answer(self, target: bytes) -> FileAnswer:
        """200 with the file's bytes, or the error answer."""
        path, answer = self.resolve(target)
        if answer is not None:
            return answer
        assert path is not None
        try:
            if os.path.getsize(path) > MAX_FILE:
                return _plain(413, "file too large for tcpbench (64 MiB limit)\n")
            with open(path, "rb") as handle:
                body = handle.read(MAX_FILE + 1)
        except OSError:
            return _plain(403, "cannot read this file\n")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",
                                                                 "application/json"):
            content_type += "; charset=utf-8"
        return FileAnswer(200, body, content_type)

    def _listing(self, directory: str, url_path: str) -> FileAnswer:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return _plain(403, "cannot list this directory\n")
        title = html.escape(url_path)
        rows = []
        for name in names:
            slash = "/" if os.path.isdir(os.path.join(directory, name)) else ""
            rows.append(f'<li><a href="{quote(name)}{slash}">{html.escape(name)}{slash}</a></li>')
        page = (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
                f"<h1>{title}</h1><ul>{''.join(rows)}</ul>\n")
        return FileAnswer(200, page.encode("utf-8", "surrogateescape"), "text/html; charset=utf-8")
