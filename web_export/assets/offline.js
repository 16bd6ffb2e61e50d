// Every page of the site loads this module: it registers the site's service worker
// (../sw.js beside index.html, whatever path the site is served under) and, once the page
// works, hands it the URLs the page used, so that the page works offline from then on; the
// header then says so ("works offline"), or, with no network, that it runs from the stored copy.
const root = new URL("../", import.meta.url);

function badge(text) {
  let element = document.getElementById("offline-state");
  if (!element) {
    element = document.createElement("span");
    element.id = "offline-state";
    element.className = "offline-state";
    (document.querySelector("header") || document.body).append(element);
  }
  element.hidden = false;
  element.textContent = text;
}

// The worker of the site as it is now: after a rebuild, the new one, once it has taken over.
async function current(registration) {
  await registration.update().catch(() => {});  // offline: the stored worker stays
  const pending = registration.installing || registration.waiting;
  if (pending) {
    await new Promise((resolve) => {
      const settled = () => ["activated", "redundant"].includes(pending.state);
      if (settled()) resolve();
      else pending.addEventListener("statechange", () => settled() && resolve());
    });
  }
  return registration.active || (await navigator.serviceWorker.ready).active;
}

async function keep(registration) {
  const worker = await current(registration);
  const urls = new Set([location.href.split("#")[0], ...performance.getEntriesByType("resource").map((e) => e.name)]);
  const mine = [...urls].filter((u) => u.startsWith(root.href));
  const reply = new Promise((resolve) => {
    navigator.serviceWorker.addEventListener("message", (event) => resolve(event.data), { once: true });
  });
  navigator.serviceWorker.startMessages();
  worker.postMessage({ keep: mine });
  const { kept, of, version, network } = await reply;
  if (kept === of) {
    document.body.dataset.offlineVersion = version;
    document.body.dataset.offline = "ready";
    badge(network ? "✓ works offline" : "offline: running from this device's copy");
  }
}

async function start() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  const registration = await navigator.serviceWorker.register(new URL("sw.js", root).href, { scope: root.href });
  const modelPage = document.getElementById("tinkerflow-config");
  if (modelPage && document.body.dataset.ready !== "true") {
    await new Promise((resolve) => window.addEventListener("tinkerflow-ready", resolve, { once: true }));
  }
  await keep(registration);
}

start().catch((err) => console.warn(`offline copy not made: ${err && err.message ? err.message : err}`));
