// Service worker: makes the app installable and opens it offline-first for its own files.
// Hashed assets are cached forever; the page is fetched fresh (falling back to the cached
// copy when offline); the API and WebSockets are never cached.
const CACHE = "clauderon-v1";
const SHELL = ["/", "/manifest.webmanifest", "/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/ws/")) return;
  if (url.pathname.startsWith("/assets/")) {
    event.respondWith(caches.open(CACHE).then(async (c) => {
      const hit = await c.match(event.request);
      if (hit) return hit;
      const res = await fetch(event.request);
      if (res.ok) c.put(event.request, res.clone());
      return res;
    }));
    return;
  }
  if (event.request.mode === "navigate") {
    event.respondWith(fetch(event.request).then((res) => {
      // Only the app's own page is kept as the offline copy: a navigation the server reads
      // as an API route (/%61pi/..., /metrics) or an error is never stored, nor anything
      // the server says not to store.
      const type = res.headers.get("content-type") || "";
      const cache = res.headers.get("cache-control") || "";
      if (res.ok && type.startsWith("text/html") && !cache.includes("no-store")) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put("/", copy));
      }
      return res;
    }).catch(() => caches.match("/")));
  }
});

// A notification (src/notify.ts) opens its session: in an open window of the app if there is
// one, else in a new one. Only this origin's paths are opened.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  // Only a page of this app: "//host/x" or "/\\host" would resolve to another site.
  const asked = new URL(String(event.notification.data?.url ?? "/"), location.origin);
  const target = asked.origin === location.origin ? asked.href : new URL("/", location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((all) => {
    const open = all.find((c) => new URL(c.url).origin === location.origin);
    if (open) return open.focus().then((c) => c.navigate(target));
    return self.clients.openWindow(target);
  }));
});
