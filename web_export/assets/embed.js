// The embed view (embed.html, shown in an <iframe> on another site): the frame's height is the
// host page's (the snippet's height attribute), so the view fits its content into it — scaled
// down when the content is taller, never scrolled or cut off — and tells the host page how
// tall its content is, for a host that runs embed-resize.js and makes the frame that tall.
const root = document.getElementById("embed");
let posted = 0;

function natural() {
  root.style.zoom = "1";
  return Math.ceil(root.getBoundingClientRect().height);
}

function fit() {
  const height = natural();
  const room = document.documentElement.clientHeight;
  // zoom lays the content out wider, so its text may wrap less: the second pass settles it
  let zoom = height > room ? room / height : 1;
  for (let pass = 0; pass < 2 && zoom < 1; pass++) {
    root.style.zoom = String(zoom);
    const scaled = root.getBoundingClientRect().height;
    if (scaled <= room) break;
    zoom *= room / scaled;
  }
  root.style.zoom = zoom < 1 ? String(Math.max(zoom, 0.25)) : "1";
  document.body.dataset.embedZoom = zoom < 1 ? zoom.toFixed(3) : "1";
  document.body.dataset.embedHeight = String(height);
  if (window.parent !== window && height !== posted) {
    posted = height;
    window.parent.postMessage({ tinkerflowEmbedHeight: height }, "*");  // a number only: nothing of the widget
  }
}

let queued = false;
function refit() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => { queued = false; fit(); });
}

new ResizeObserver(refit).observe(root);
window.addEventListener("resize", refit);
new MutationObserver(refit).observe(root, { subtree: true, childList: true, characterData: true, attributes: true,
  attributeFilter: ["hidden", "open", "class"] });
window.addEventListener("tinkerflow-ready", refit);
fit();
