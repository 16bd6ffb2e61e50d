"""Small HTML helpers: every dynamic string goes through :func:`esc`."""

from __future__ import annotations

import html
import json
import re
from typing import Any

CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")


#: the browser's toolbar and the installed app's title bar
THEME_COLOR = "#1d3557"


def esc(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def json_for_script(payload: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">`` (no ``</script>`` break-out)."""
    text = json.dumps(payload, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file or folder name that cannot leave its folder: letters, digits, '.', '_' and '-' only."""
    name = _SAFE.sub("-", str(text)).strip(".-") or "item"
    return name[:100]


def page(title: str, body: str, root: str, scripts: list[str] = (), styles: list[str] = ()) -> str:
    """A complete page; ``root`` is the relative path back to the site root (e.g. ``../../``)."""
    links = "".join(f'<link rel="stylesheet" href="{esc(href)}">' for href in [f"{root}assets/site.css", *styles])
    scripts = [(f"{root}assets/offline.js", 'type="module" '), *scripts]
    tags = "".join(f'<script {attrs}src="{esc(src)}"></script>' for src, attrs in scripts)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="theme-color" content="{THEME_COLOR}">'
        f'<link rel="manifest" href="{esc(root)}manifest.webmanifest">'
        f'<link rel="icon" href="{esc(root)}icon-192.png"><link rel="apple-touch-icon" href="{esc(root)}icon-192.png">'
        f"<title>{esc(title)}</title>{links}{tags}</head>\n"
        f"<body>{body}</body></html>\n"
    )
