// End-to-end: the email settings (add an address, confirm it by the mailed
// link, digests off and on) and "forgot password" on the login screen
// (a code by mail, a new password, signed in with it). The test's own node
// sends through a small SMTP receiver on 127.0.0.1 started here (the
// integration tests, tests/integration/email.rs, use aiosmtpd).

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, ownNode, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new passphrase';

/** An SMTP receiver: every message it takes, as text, in `mails`. */
async function smtpSink() {
  const mails = [];
  const server = net.createServer((socket) => {
    let buffer = '';
    let data = null;
    socket.write('220 sink.test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      for (;;) {
        if (data !== null) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          data += buffer.slice(0, end);
          buffer = buffer.slice(end + 5);
          mails.push(data.replace(/\r\n\.\./g, '\r\n.'));
          data = null;
          socket.write('250 OK\r\n');
          continue;
        }
        const line = buffer.indexOf('\r\n');
        if (line < 0) return;
        const command = buffer.slice(0, line).toUpperCase();
        buffer = buffer.slice(line + 2);
        if (command.startsWith('EHLO') || command.startsWith('HELO')) socket.write('250-sink.test\r\n250 8BITMIME\r\n');
        else if (command.startsWith('DATA')) {
          data = '';
          socket.write('354 go on\r\n');
        } else if (command.startsWith('QUIT')) socket.end('221 bye\r\n');
        else socket.write('250 OK\r\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, mails, close: () => new Promise((r) => server.close(r)) };
}

/** The first mail whose subject has `subject`, once it arrived: its
 * headers and its body, quoted-printable undone (lettre encodes a body so
 * when a line is longer than 76 characters, as a link is). */
async function mail(sink, subject) {
  const raw = await until(() => sink.mails.find((m) => m.includes(`Subject: ${subject}`)), `a mail "${subject}"`);
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  let body = raw.slice(split + 4);
  if (/Content-Transfer-Encoding: quoted-printable/i.test(head)) {
    body = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }
  return `${head}\r\n\r\n${body}`;
}

let browser;
let node;
let sink;
let user;

describe('email settings and forgot password', { timeout: 120_000 }, () => {
  before(async () => {
    sink = await smtpSink();
    node = await ownNode({
      SPACES__EMAIL__SMTP_HOST: '127.0.0.1',
      SPACES__EMAIL__SMTP_PORT: String(sink.port),
      SPACES__EMAIL__SECURITY: 'none',
      SPACES__EMAIL__FROM: 'Spaces <spaces@node.test>',
    });
    if (!node) return;
    browser = await launch();
    user = await openPage(browser, { colorScheme: 'light', baseURL: node.url });
  });

  after(async () => {
    await browser?.close();
    await node?.close();
    await sink?.close();
  });

  test('an address is added, confirmed by the mailed link, and digests turned off and on', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const page = user.page;
    await page.goto('/');
    await page.getByRole('tab', { name: 'Sign up' }).click();
    await page.getByLabel('Username').fill('emma');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    const nav = page.getByRole('navigation', { name: 'Rooms and direct messages' });
    await nav.waitFor();

    await page.getByRole('button', { name: 'Sign-in and security' }).click();
    const dialog = page.getByRole('dialog', { name: 'Sign-in and security' });
    const form = dialog.getByRole('form', { name: 'Email address' });
    await form.getByRole('textbox').fill('emma@example.org');
    await form.getByRole('button', { name: 'Add' }).click();
    await dialog.getByText('We sent a link to emma@example.org').waitFor();
    await dialog.getByTestId('email-status').filter({ hasText: 'waiting for confirmation' }).waitFor();
    await shotViews(page, 'email-unconfirmed');

    const confirm = await mail(sink, 'Confirm your email address for Spaces');
    assert.match(confirm, /To: emma@example\.org/);
    const link = confirm.match(/http\S+\/api\/v1\/account\/email\/verify\?token=\S+/)[0];
    // The link as a person opens it: in a tab of its own.
    const tab = await user.context.newPage();
    await tab.goto(new URL(link).pathname + new URL(link).search);
    await tab.getByRole('heading', { name: 'Address confirmed' }).waitFor();
    await tab.close();

    // The settings show it confirmed once opened again.
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('button', { name: 'Sign-in and security' }).click();
    await dialog.getByTestId('email-status').filter({ hasText: 'confirmed' }).waitFor();
    const digests = dialog.getByRole('checkbox', { name: /digest of mentions/ });
    assert.equal(await digests.isChecked(), true);
    // The box shows what the node answered (it is not flipped before).
    await digests.click();
    await until(async () => (await pageApi(page, 'GET', '/api/v1/account/email')).digests === false, 'digests off');
    await until(async () => !(await digests.isChecked()), 'the box unchecked');
    await digests.click();
    await until(async () => (await pageApi(page, 'GET', '/api/v1/account/email')).digests === true, 'digests on');
    await until(() => digests.isChecked(), 'the box checked');
    await shotViews(page, 'email-confirmed');
    await dialog.getByRole('button', { name: 'Close' }).click();
    assert.deepEqual(page.errors, []);
  });

  test('forgot password: a code by mail sets a new password', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const page = user.page;
    const nav = page.getByRole('navigation', { name: 'Rooms and direct messages' });
    await nav.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('dialog', { name: 'Log out' }).getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Forgot password?' }).click();
    const ask = page.getByRole('form', { name: 'Forgot password' });
    await ask.getByLabel('Username or email address').fill('emma@example.org');
    await shotViews(page, 'email-forgot-password');
    await ask.getByRole('button', { name: 'Mail me a reset code' }).click();
    const set = page.getByRole('form', { name: 'Set a new password' });
    await set.getByRole('status').waitFor();

    const reset = await mail(sink, 'Reset your Spaces password');
    const code = reset.match(/enter this code: (\S+)/)[1];
    await set.getByLabel('Code from the mail').fill(code);
    await set.getByLabel('New password').fill(NEW_PASSWORD);
    await set.getByRole('button', { name: 'Set the new password' }).click();
    await page.getByText('Your password is changed').waitFor();

    await page.getByLabel('Username').fill('emma');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong username or password.').waitFor();
    await page.getByLabel('Password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await nav.waitFor();
    assert.deepEqual(page.errors, []);
  });
});
