// The service worker: shows a Web Push as a notification, and opens the
// room on a click. The payload is the node's `notification` frame
// (docs/spec/api.md §Web Push), decrypted by the browser.

self.addEventListener('push', (event) => {
  let frame = {};
  try {
    frame = event.data ? event.data.json() : {};
  } catch {
    frame = {};
  }
  const n = frame.notification ?? {};
  const who = typeof n.sender === 'string' ? n.sender.replace(/^@/, '').split(':')[0] : 'Someone';
  const title = n.reason === 'invite' ? `${who} invited you` : `${who} — Spaces`;
  event.waitUntil(
    self.registration.showNotification(title, {
      body: n.excerpt || '',
      tag: n.id ? `n${n.id}` : undefined,
      data: { room: n.room_id ?? null },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const room = event.notification.data?.room;
  const url = room ? `/room/${encodeURIComponent(room)}` : '/';
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      for (const w of windows) {
        if ('focus' in w) {
          return w.navigate(url).then((c) => (c ?? w).focus());
        }
      }
      return self.clients.openWindow(url);
    }),
  );
});
