"""First visits of every page of built sites: what a new viewer's browser downloads.

    python tests/benchmarks/first_visit.py SITE [SITE ...]

For each site (one built with ``tinkerflow web``), the gallery and each model page are opened
in a new Chromium profile on disk (an empty cache, no service worker, but a disk cache as a
viewer's browser has: an incognito profile's memory cache keeps no 9 MB file) and left until
the page works and its offline copy is made. Per page: the requests the page made and their bytes, raw and as
gzip (level 6) would send them, and the bytes the server sent in all — which also counts
what the service worker fetched for the offline copy. Two or more sites (the same runs built
by two versions, say) print side by side; the last line is all of it as JSON.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tinkerflow.web_export.browser import FLAGS
from tinkerflow.web_export.serve import make_server


def _bytes(site: Path, paths: list[str]) -> tuple[int, int]:
    raw = zipped = 0
    for path in paths:
        file = site / path
        if file.is_file():
            data = file.read_bytes()
            raw += len(data)
            zipped += len(gzip.compress(data, 6))
    return raw, zipped


def _add_path(paths: list[str], request) -> None:
    paths.append(unquote(urlsplit(request.url).path).lstrip("/"))


def visit(playwright, site: Path) -> dict[str, dict]:
    """``{page: {requests, bytes, gzip_bytes, served_bytes}}`` for the gallery and each model page
    (named by its experiment)."""
    pages = {"gallery": "index.html"} | {p["experiment"]: f"models/{p['slug']}/index.html"
                                         for p in json.loads((site / "site.json").read_text())["pages"]}
    served: list[str] = []
    httpd = make_server(site, "127.0.0.1", 0, quiet=True)
    plain = httpd.RequestHandlerClass  # functools.partial(handler class, directory=...)

    class Counting(plain.func):
        def log_request(self, code="-", size="-"):
            if str(code) == "200":
                served.append(unquote(urlsplit(self.path).path).lstrip("/"))

    httpd.RequestHandlerClass = functools.partial(Counting, *plain.args, **plain.keywords)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    results = {}
    try:
        for name, path in pages.items():
            served.clear()
            profile = tempfile.TemporaryDirectory(prefix="tinkerflow-profile-")
            context = playwright.chromium.launch_persistent_context(
                profile.name, executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                args=FLAGS, headless=True)
            page = context.new_page()
            finished: list[str] = []
            page.on("requestfinished", functools.partial(_add_path, finished))
            page.goto(base + path)
            if path != "index.html":
                page.wait_for_function("() => document.body.dataset.ready", timeout=120_000)
            page.wait_for_function("() => document.body.dataset.offline === 'ready'", timeout=120_000)
            context.close()
            profile.cleanup()
            raw, zipped = _bytes(site, finished)
            results[name] = {"requests": len(finished), "bytes": raw, "gzip_bytes": zipped,
                             "served_bytes": _bytes(site, served)[0]}
    finally:
        httpd.shutdown()
        httpd.server_close()
    return results


def _cell(row: dict) -> str:
    return (f"{row['requests']:>3}, {row['bytes'] / 1e6:6.2f} ({row['gzip_bytes'] / 1e6:5.2f}), "
            f"{row['served_bytes'] / 1e6:6.2f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sites", nargs="+", type=Path)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        measured = [visit(playwright, site) for site in args.sites]
    print(f"{'page':<14}" + "".join(f"{f'site {k + 1}: requests, MB (gzip), served MB':>44}"
                                    for k in range(len(measured))))
    for name in measured[0]:
        cells = ["-" if name not in site else _cell(site[name]) for site in measured]
        print(f"{name:<14}" + "".join(f"{c:>44}" for c in cells))
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
