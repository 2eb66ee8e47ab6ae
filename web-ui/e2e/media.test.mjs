// End-to-end: files in chat. maya attaches an image and a text file; noah,
// in another browser context, sees the thumbnail load through his own
// session, opens the full image in the lightbox, and gets a download chip
// for the file.

import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, pageApi, shot, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const WIDTH = 300;
const HEIGHT = 200;

/** CRC-32 (PNG chunks); node 20 has no zlib.crc32. */
function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An RGB PNG of a gradient, with a tEXt chunk the node must strip. */
function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const at = y * (1 + width * 3);
    for (let x = 0; x < width; x++) rows.set([x % 256, y % 256, 160], at + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('tEXt', Buffer.from('Comment\0taken at home')),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

function log(page) {
  return page.getByRole('log', { name: 'Messages in Photos' });
}

let browser;
let maya;
let noah;
let roomId;

describe('files in the web client', { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    maya = await openPage(browser, { colorScheme: 'light' });
    noah = await openPage(browser, { colorScheme: 'dark' });
  });

  after(async () => {
    await browser?.close();
  });

  test('an image and a file reach the other user', async () => {
    const m = maya.page;
    const n = noah.page;
    try {
      await signUp(m, 'maya');
      await signUp(n, 'noah');
      const room = await pageApi(m, 'POST', '/api/v1/rooms', { name: 'Photos', visibility: 'public' });
      roomId = room.room_id;
      await pageApi(n, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/join`, {});
      await m.goto(`/room/${encodeURIComponent(roomId)}`);
      await n.goto(`/room/${encodeURIComponent(roomId)}`);
      await log(m).waitFor();
      await log(n).waitFor();

      await m.locator('.composer input[type=file]').setInputFiles([
        { name: 'sunset.png', mimeType: 'image/png', buffer: png(WIDTH, HEIGHT) },
        { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('bring the tripod\n') },
      ]);
      const files = m.getByRole('list', { name: 'Files to send' });
      await until(
        async () =>
          (await files.getByRole('progressbar').evaluateAll((bars) => bars.map((b) => b.getAttribute('aria-valuetext')))).every(
            (v) => v === 'uploaded',
          ),
        'both uploads finished',
      );
      const box = m.getByRole('textbox', { name: 'Message #Photos' });
      await box.fill('Sunset from the roof');
      await box.press('Enter');

      // noah's thumbnail: fetched with his token, decoded by the browser.
      const thumb = log(n).locator('.attachment-image img[alt="sunset.png"]');
      await thumb.waitFor();
      await until(() => thumb.evaluate((img) => img.complete && img.naturalWidth > 0), 'thumbnail loaded');
      assert.equal(await thumb.evaluate((img) => img.naturalWidth), WIDTH, 'a 300 px image is its own 512 px thumbnail');
      await shot(n, 'media-thumbnail');

      await log(n).getByRole('button', { name: 'Open image sunset.png' }).click();
      const box2 = n.getByRole('dialog', { name: 'Image sunset.png' });
      const full = box2.locator('img[alt="sunset.png"]');
      await full.waitFor();
      await until(() => full.evaluate((img) => img.complete && img.naturalWidth === 300), 'full image loaded');
      await shot(n, 'media-lightbox');
      await n.keyboard.press('Escape');
      await box2.waitFor({ state: 'detached' });

      await log(n).getByRole('button', { name: 'Download notes.txt' }).waitFor();
      // The stored image lost its text chunk; the node serves it with nosniff.
      const checked = await n.evaluate(async () => {
        const session = JSON.parse(localStorage.getItem('spaces.session.v1'));
        const img = document.querySelector('.attachment-image img');
        const events = await (
          await fetch(`/api/v1/rooms/${encodeURIComponent(location.pathname.split('/').pop())}/messages`, {
            headers: { authorization: `Bearer ${session.access_token}` },
          })
        ).json();
        const hash = events.events.flatMap((e) => e.content.attachments ?? []).find((a) => a.name === 'sunset.png').hash;
        const response = await fetch(`/api/v1/media/${hash}`, { headers: { authorization: `Bearer ${session.access_token}` } });
        const text = new TextDecoder('latin1').decode(await response.arrayBuffer());
        return { nosniff: response.headers.get('x-content-type-options'), stripped: !text.includes('tEXt'), shown: !!img };
      });
      assert.deepEqual(checked, { nosniff: 'nosniff', stripped: true, shown: true });
      assert.deepEqual(m.errors, []);
      assert.deepEqual(n.errors, []);
    } catch (error) {
      await shot(m, 'media-failure-maya').catch(() => {});
      await shot(n, 'media-failure-noah').catch(() => {});
      throw error;
    }
  });
});
