"""The site as an installable, offline Progressive Web App.

``write_app_files(site)`` adds to a built site, at its root (so every URL stays relative and
the site works under any path):

- ``icon-192.png``, ``icon-512.png``, ``icon-maskable-512.png``: drawn here, no network;
- ``manifest.webmanifest``: name, colours, icons, ``start_url`` and ``scope`` ``./``;
- ``sw.js``: the service worker (``pwa/sw.js``) with the site's version, a hash of every other
  file of the site, and its shell (the pages and shared assets it stores on install). A
  rebuilt site has another hash, so its worker replaces the stored copy of the old one.

Every page loads ``assets/offline.js``, which registers the worker and, once the page works,
has it store what the page used; see ``pwa/sw.js`` for how requests are answered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tinkerflow.core.runfs import save_image, write_atomic

from .html import THEME_COLOR

WORKER = Path(__file__).parent / "pwa" / "sw.js"
ICONS = (("icon-192.png", 192, "any"), ("icon-512.png", 512, "any"), ("icon-maskable-512.png", 512, "maskable"))
BACKGROUND = "#f7f7f2"


def write_app_files(site: Path, shell: list[str]) -> str:
    """Icons, web app manifest and service worker into ``site``; ``shell`` lists the site-relative
    paths stored on install. Returns the site's version (the content hash)."""
    for name, size, purpose in ICONS:
        save_image(_icon(size, maskable=purpose == "maskable"), site / name, optimize=True)
    manifest = {
        "name": "tinkerflow models", "short_name": "tinkerflow",
        "description": "Models trained with tinkerflow, running on this device.",
        "start_url": "./index.html", "scope": "./", "display": "standalone",
        "background_color": BACKGROUND, "theme_color": THEME_COLOR,
        "icons": [{"src": name, "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
                  for name, size, purpose in ICONS],
    }
    write_atomic(site / "manifest.webmanifest", json.dumps(manifest, indent=2) + "\n")
    version = site_version(site)
    worker = WORKER.read_text().replace("__SITE_VERSION__", version).replace(
        "__SITE_SHELL__", json.dumps(sorted(set(shell) | {"manifest.webmanifest", *(n for n, _, _ in ICONS)})))
    write_atomic(site / "sw.js", worker)
    return version


def site_version(site: Path) -> str:
    """A hash of every file of the site but the worker itself: any change, a new version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in site.rglob("*") if p.is_file() and p.name != "sw.js"):
        digest.update(path.relative_to(site).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _icon(size: int, maskable: bool):
    """The app icon: three layers of a small network, drawn on the theme colour (a maskable
    icon keeps its drawing inside the central safe circle and fills the square)."""
    from PIL import Image, ImageDraw

    scale = 4  # drawn large, then reduced: smooth edges
    canvas = size * scale
    image = Image.new("RGBA", (canvas, canvas), THEME_COLOR if maskable else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if not maskable:
        draw.rounded_rectangle((0, 0, canvas - 1, canvas - 1), radius=canvas // 5, fill=THEME_COLOR)
    inset = canvas * (0.28 if maskable else 0.2)
    span = canvas - 2 * inset
    layers = [2, 3, 1]
    nodes = [[(inset + span * i / (len(layers) - 1), inset + span * (j + 0.5) / n) for j in range(n)]
             for i, n in enumerate(layers)]
    for left, right in zip(nodes, nodes[1:]):
        for a in left:
            for b in right:
                draw.line((a, b), fill="#a8dadc", width=max(1, canvas // 90))
    radius = canvas * 0.055
    for layer, colour in zip(nodes, ("#f1faee", "#e63946", "#f1faee")):
        for x, y in layer:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image.resize((size, size), Image.LANCZOS)
