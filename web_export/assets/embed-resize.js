// For a host page that can run one script of its own (optional): makes every tinkerflow embed
// frame on the page exactly as tall as its content. Each frame's embed view posts only its
// content's height; a message is taken from a frame of this page alone, and only as a number.
window.addEventListener("message", (event) => {
  const height = event.data && event.data.tinkerflowEmbedHeight;
  if (!Number.isFinite(height) || height < 50 || height > 10000) return;
  for (const frame of document.querySelectorAll("iframe")) {
    if (frame.contentWindow === event.source) frame.height = String(Math.ceil(height));
  }
});
