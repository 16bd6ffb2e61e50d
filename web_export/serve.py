"""``tinkerflow serve``: preview a built site over HTTP (loopback by default)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinkerflow.core.errors import TinkerflowError


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
                      ".wasm": "application/wasm", ".bin": "application/octet-stream"}

    quiet = False

    def log_message(self, format, *args):  # quieter than the default: one short line per request
        if not self.quiet:
            print(f"{self.address_string()} {format % args}")


class _QuietHandler(_Handler):
    quiet = True


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = False) -> http.server.ThreadingHTTPServer:
    """A threading HTTP server for the built site in ``folder``; ``quiet`` logs no requests."""
    folder = Path(folder)
    if not 0 <= port <= 65535:
        raise TinkerflowError(f"--port {port} is out of range; expected a port from 0 to 65535")
    if not (folder / "index.html").is_file():
        raise TinkerflowError(f"'{folder}' has no index.html; expected a site built with 'tinkerflow web'")
    handler = functools.partial(_QuietHandler if quiet else _Handler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise TinkerflowError(f"cannot listen on {host}:{port} ({exc.strerror}); expected a free port (--port)") from exc


@contextmanager
def serving(folder: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> Iterator[str]:
    """The built site in ``folder`` served from a background thread; yields its base URL."""
    httpd = make_server(folder, host, port, quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
