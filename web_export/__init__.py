"""The static site builder: a gallery of exported models and a page per model.

Each page runs its model with every runtime an exporter offers for pages
(:attr:`Exporter.page_runtime`): LiteRT.js on the fixed-shape ``.tflite`` files, and
TensorFlow.js on the tfjs graph models. The viewer picks the runtime, the variant and the
runtime's option (threads, backend) and the URL keeps them (``?runtime=tfjs&variant=float16``);
the default runtime is the one ``tinkerflow bench RUN --browser`` measured faster for the run,
else LiteRT.js. A variant a runtime cannot run is left out of its list, and a page whose
LiteRT.js has nothing to run falls back to tfjs with a visible note.

Pages load nothing from the network: the runtimes are copied in from the pinned npm
packages (LiteRT.js bundled with esbuild), every URL is relative (any static host, any
subpath), a Content-Security-Policy forbids remote loads, and every piece of text is escaped.
LiteRT.js runs more than one thread only on a cross-origin isolated page: ``tinkerflow
serve`` sends the COOP/COEP headers and the site carries a ``_headers`` file for hosts that
read one; elsewhere pages run one thread.

The site installs as an app and works offline (:mod:`.offline`): a web app manifest, generated
icons and a network-first service worker whose cache is per site path and content hash. An
image classifier's page also runs its files in MediaPipe Tasks, as phone apps do.

Widgets are plugin assets: an experiment's package may hold ``web/widget.js`` (an ES
module exporting ``mount(root, ctx)``), ``web/widget.html`` (markup placed in the widget
area) and ``web/widget.css``. Without them the page shows a generic input/output form.
"""

from .builder import build_site

__all__ = ["build_site"]
