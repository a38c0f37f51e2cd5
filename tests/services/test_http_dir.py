"""`--dir`: files, listings and redirects under a root, and no way out of it (both parsers)."""

from __future__ import annotations

import os

import pytest

from tcpbench.services.http import HttpService
from tests.services.test_http import WIRES, feed, opened, responses, sent


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "style.css").write_text("p{}")
    (root / "sub" / "data.json").write_text("{}")
    (root / "sub" / "a b.txt").write_text("spaced")
    (tmp_path / "secret.txt").write_text("SECRET")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(tmp_path, root / "up")
    os.symlink(root / "style.css", root / "alias.css")
    return root


@pytest.fixture(params=WIRES)
def parser(request) -> str:
    return request.param


def get(service: HttpService, target: bytes) -> tuple[int, dict, bytes]:
    opened(service)
    effects = feed(service, [b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"])
    [answer] = responses(sent(effects))
    return answer


@pytest.mark.parametrize("target, status, body, content_type", [
    (b"/", 200, b"<h1>home</h1>", "text/html; charset=utf-8"),
    (b"/index.html?x=1", 200, b"<h1>home</h1>", "text/html; charset=utf-8"),
    (b"/style.css", 200, b"p{}", "text/css; charset=utf-8"),
    (b"/sub/data.json", 200, b"{}", "application/json; charset=utf-8"),
    (b"/sub/a%20b.txt", 200, b"spaced", "text/plain; charset=utf-8"),
    (b"/alias.css", 200, b"p{}", "text/css; charset=utf-8"),
    (b"http://example/style.css", 200, b"p{}", "text/css; charset=utf-8"),
    (b"/missing", 404, None, None),
    (b"/favicon.ico", 404, None, None),
])
def test_directory_serves_files(site, parser, target, status, body, content_type) -> None:
    got_status, headers, got_body = get(HttpService(dir=str(site), parser=parser), target)
    assert got_status == status
    if body is not None:
        assert got_body == body and headers["content-type"] == content_type


def test_directory_without_slash_redirects_and_lists(site, parser) -> None:
    status, headers, _ = get(HttpService(dir=str(site), parser=parser), b"/sub")
    assert status == 301 and headers["location"] == "/sub/"
    status, _, body = get(HttpService(dir=str(site), parser=parser), b"/sub/")
    assert status == 200 and b'href="a%20b.txt"' in body and b"data.json" in body


@pytest.mark.parametrize("target", [
    b"/../secret.txt", b"/sub/../../secret.txt", b"/%2e%2e/secret.txt", b"/%2E%2E%2Fsecret.txt",
    b"/sub/%2e%2e/%2e%2e/secret.txt", b"/..%2fsecret.txt", b"//../secret.txt",
    b"http://x/../secret.txt", b"/leak.txt", b"/up/secret.txt", b"/%00/etc/passwd",
    b"//etc/passwd", b"/etc/passwd", b"/" + os.fsencode(os.path.abspath("/etc/passwd")),
    b"*",
])
def test_no_path_escapes_the_directory(site, parser, target) -> None:
    status, _, body = get(HttpService(dir=str(site), parser=parser), target)
    assert status in (400, 404), (target, status)
    assert b"SECRET" not in body and b"root:" not in body


def test_listing_leaves_out_links_that_lead_outside_the_root(site, parser) -> None:
    (site / "index.html").unlink()
    status, _, body = get(HttpService(dir=str(site), parser=parser), b"/")
    assert status == 200
    assert b'href="style.css"' in body and b'href="sub/"' in body
    assert b'href="alias.css"' in body  # a link that stays inside is listed
    assert b"leak.txt" not in body and b'href="up/"' not in body
