// The site's service worker: the site keeps working offline once a page has been visited.
//
// Network first: while the host answers, every request goes to it (a rebuilt site is never
// answered from an older copy) and the answer is stored; when it does not, the stored copy is
// served. The store is one cache per site and version: its name holds this worker's scope
// (two sites on one host, at two paths, never share or delete each other's files) and the
// site's content hash, which `tinkerflow web` writes below; a new version deletes the caches
// of older versions of the same site when it takes over.
const VERSION = "__SITE_VERSION__";
const SHELL = __SITE_SHELL__;
const SCOPE = self.registration.scope;
const PREFIX = `tinkerflow ${SCOPE} `;
const CACHE = PREFIX + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL.map((path) => new URL(path, SCOPE).href))));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function ours(request) {
  return request.method === "GET" && request.url.startsWith(SCOPE);
}

async function fromNetwork(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.status === 200 && response.type === "basic") await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const stored = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
    if (stored) return stored;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  if (ours(event.request)) event.respondWith(fromNetwork(event.request));
});

// A page sends the URLs it used ({keep: [...]}) once it works; any not stored yet (those it
// loaded before this worker controlled it) are fetched and stored, then the page is told how
// many are kept and whether the host answers.
self.addEventListener("message", (event) => {
  const urls = (event.data && Array.isArray(event.data.keep) ? event.data.keep : []).filter((u) => String(u).startsWith(SCOPE));
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    let kept = 0;
    for (const url of urls) {
      if (!(await cache.match(url))) {
        const response = await fetch(url).catch(() => null);
        if (!response || response.status !== 200) continue;
        await cache.put(url, response);
      }
      kept += 1;
    }
    // whether the host answers now (navigator.onLine only knows whether there is a network)
    const network = await fetch(new URL("site.json", SCOPE), { cache: "no-store" }).then(() => true, () => false);
    event.source.postMessage({ kept, of: urls.length, version: VERSION, network });
  })());
});
