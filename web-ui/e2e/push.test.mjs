// End-to-end: the service worker (public/sw.js) registers, and its push
// handler shows a notification for a pushed payload (delivered through the
// browser's DevTools protocol: no push service is reachable from a test).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BASE, launch, openPage, until } from './harness.mjs';

let browser;

describe('Spaces web client: Web Push service worker', { timeout: 60_000 }, () => {
  before(async () => {
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
  });

  test('a pushed notification frame is shown as a notification', async () => {
    const { context, page } = await openPage(browser);
    await context.grantPermissions(['notifications'], { origin: new URL(BASE).origin });
    await page.goto('/');
    const cdp = await context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    const origin = new URL(BASE).origin;
    const registered = new Promise((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => {
        for (const r of event.registrations) {
          if (r.scopeURL.startsWith(origin) && !r.isDeleted) resolve(r.registrationId);
        }
      });
    });
    const scope = await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      return registration.scope;
    });
    assert.equal(scope, `${origin}/`);
    const registrationId = await registered;
    const frame = {
      type: 'notification',
      notification: {
        id: 7,
        room_id: '!room',
        event_id: '$event',
        sender: '@omar:~node',
        reason: 'mention',
        origin_ts: Date.now(),
        excerpt: 'the tomatoes are ripe',
        unread: true,
      },
    };
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin,
      registrationId,
      data: JSON.stringify(frame),
    });
    await until(async () => {
      const shown = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.getRegistration('/');
        const list = await registration.getNotifications();
        return list.map((n) => [n.title, n.body, n.data?.room]);
      });
      return shown.some(([title, body, room]) => title === 'omar — Spaces' && body === 'the tomatoes are ripe' && room === '!room');
    }, 'the service worker shows the notification');
    assert.deepEqual(page.errors, []);
  });
});
