"""``tinkerflow serve``: preview a built site over HTTP (loopback by default).

It serves the site's regular files and nothing else: no folder listings (a folder answers
with its ``index.html`` or 404), no dotfiles or dot-folders, nothing a symbolic link points
to outside the site, and a path that cannot be decoded (``%00``, bad UTF-8) gets 400. An
address with nothing there gets the nearest ``404.html`` above it, as on GitHub Pages.

It sends the cross-origin isolation headers (:data:`ISOLATION_HEADERS`) that LiteRT.js
needs for more than one thread; ``isolated=False`` (``tinkerflow serve --no-isolation``)
leaves them out, as most static hosts do, and pages then run one thread.
"""

from __future__ import annotations

import functools
import http.server
import io
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.records import read_site_record


ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
                      ".wasm": "application/wasm", ".bin": "application/octet-stream",
                      ".tflite": "application/octet-stream"}

    quiet = False
    isolated = True
    timeout = 10  # seconds a client may take to send its request: a half-sent one is dropped

    def end_headers(self):
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def send_head(self):
        try:
            self._file = site_file(Path(self.directory), self.path)
        except ValueError:
            self.send_error(400, "Bad request path")
            return None
        if self._file is None:
            return self._not_found()
        return super().send_head()

    def _not_found(self):
        """The nearest ``404.html`` above the address, as GitHub Pages and Netlify answer one."""
        page = not_found_page(Path(self.directory), self.path)
        if page is None:
            self.send_error(404, "Not found")
            return None
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def translate_path(self, path):
        return str(self._file)

    def list_directory(self, path):
        self.send_error(404, "Not found")
        return None

    def log_message(self, format, *args):  # quieter than the default: one short line per request
        if not self.quiet:
            print(f"{self.address_string()} {format % args}")


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # a page opens many connections at once; 5 (the default) makes clients retry


def _handler(quiet: bool, isolated: bool, timeout: float) -> type:
    return type("SiteHandler", (_Handler,), {"quiet": quiet, "isolated": isolated, "timeout": timeout})


def site_file(root: Path, url_path: str) -> Path | None:
    """The file (or folder with an ``index.html``) of ``root`` that ``url_path`` names, or
    None when it names nothing the server may show; ValueError for an undecodable path."""
    text = unquote(urlsplit(url_path).path, errors="strict")
    if "\x00" in text or "\\" in text:
        raise ValueError(url_path)
    parts = [part for part in text.split("/") if part]
    if any(part.startswith(".") for part in parts):
        return None
    root = root.resolve()
    candidate = root.joinpath(*parts)
    try:
        shown = candidate / "index.html" if candidate.is_dir() else candidate
        if not shown.resolve().is_relative_to(root) or not stat.S_ISREG(shown.stat().st_mode):
            return None
    except OSError:
        return None
    return candidate


def not_found_page(root: Path, url_path: str) -> Path | None:
    """The ``404.html`` of the folder nearest ``url_path`` (itself, then each folder above it)."""
    try:
        parts = [part for part in unquote(urlsplit(url_path).path, errors="strict").split("/") if part][:-1]
    except ValueError:
        return None
    for depth in range(len(parts), -1, -1):
        try:
            found = site_file(root, "/".join(["", *parts[:depth], "404.html"]))
        except ValueError:
            return None
        if found is not None and found.is_file():
            return found
    return None


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False,
                isolated: bool = True, timeout: float = 10) -> http.server.ThreadingHTTPServer:
    """A threading HTTP server for the built site in ``folder``; ``quiet`` logs no requests,
    ``isolated`` sends the cross-origin isolation headers, ``timeout`` is how long a client
    may take to send a request before its connection is closed."""
    folder = Path(folder)
    if not 0 <= port <= 65535:
        raise TinkerflowError(f"--port {port} is out of range; expected a port from 0 to 65535")
    if not (folder / "index.html").is_file():
        raise TinkerflowError(f"'{folder}' has no index.html; expected a site built with 'tinkerflow web'")
    if (folder / "site.json").exists():
        read_site_record(folder / "site.json")
    handler = functools.partial(_handler(quiet, isolated, timeout), directory=str(folder))
    try:
        return _Server((host, port), handler)
    except OSError as exc:
        raise TinkerflowError(
            f"cannot listen on {host}:{port} ({exc.strerror}); expected a free port (--port)"
        ) from exc


@contextmanager
def serving(
    folder: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = True, isolated: bool = True, timeout: float = 10
) -> Iterator[str]:
    """The built site in ``folder`` served from a background thread; yields its base URL."""
    httpd = make_server(folder, host, port, quiet, isolated, timeout)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
