"""The static site builder: a gallery of exported models and a page per model.

Pages load nothing from the network: the tfjs runtime is copied in from the pinned npm
package, every URL is relative (any static host, any subpath), a Content-Security-Policy
forbids remote loads, and every piece of text is escaped.

Widgets are plugin assets: an experiment's package may hold ``web/widget.js`` (an ES
module exporting ``mount(root, ctx)``), ``web/widget.html`` (markup placed in the widget
area) and ``web/widget.css``. Without them the page shows a generic input/output form.
"""

from .builder import build_site

__all__ = ["build_site"]
