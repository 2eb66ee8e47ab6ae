// End-to-end: passkeys in Chromium through its virtual authenticator (CDP
// `WebAuthn.addVirtualAuthenticator`: a platform authenticator with
// discoverable credentials and user verification, answering by itself).
// Sign up and make a passkey, sign in with the passkey alone (no username),
// manage it in settings, the passkey after a password, and the session list
// with revoke.
//
// WebAuthn needs a secure origin: the page is opened at
// http://localhost:<port>, which is also the node's default passkey origin.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BASE, launch, openPage, pageApi, shot, until } from './harness.mjs';

/** Logs out through the app's own question ("Log out" twice). */
async function logOut(page) {
  await nav(page).getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('dialog', { name: 'Log out' }).getByRole('button', { name: 'Log out' }).click();
}

const PASSWORD = 'correct horse battery';
const LOCAL = BASE.replace('127.0.0.1', 'localhost');

let browser;
let erin;
let cdp;
let authenticatorId;

function nav(page) {
  return page.getByRole('navigation', { name: 'Rooms and direct messages' });
}

async function openSecurity(page) {
  await page.getByRole('button', { name: 'Sign-in and security' }).click();
  return page.getByRole('dialog', { name: 'Sign-in and security' });
}

async function sessions(page) {
  return pageApi(page, 'GET', '/api/v1/sessions');
}

describe('Spaces web client: passkeys', { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    erin = await openPage(browser, { colorScheme: 'light', baseURL: LOCAL });
    cdp = await erin.context.newCDPSession(erin.page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    }));
  });

  after(async () => {
    await browser?.close();
  });

  test('sign up with a passkey, then sign in with it alone', async () => {
    const page = erin.page;
    await page.goto('/');
    await page.getByRole('tab', { name: 'Sign up' }).click();
    await page.getByLabel('Username').fill('erin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Also make a passkey on this device').check();
    await page.getByRole('button', { name: 'Create account' }).click();
    await nav(page).waitFor();

    // The authenticator holds one discoverable credential for this site.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true);
    assert.equal(credentials[0].rpId, 'localhost');
    const listed = await pageApi(page, 'GET', '/api/v1/passkeys');
    assert.equal(listed.passkeys.length, 1);
    assert.equal(listed.passkeys[0].name, 'This device');

    // Log out, then in with the passkey: no username typed.
    await logOut(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await nav(page).waitFor();
    const me = await pageApi(page, 'GET', '/api/v1/me');
    assert.equal(me.username, 'erin');
    const current = (await sessions(page)).find((s) => s.current);
    assert.equal(current.method, 'passkey');
    assert.match(current.user_agent, /Chrom/);
    // The counter went up with the use, and the node stored it.
    const after = await pageApi(page, 'GET', '/api/v1/passkeys');
    assert.ok(after.passkeys[0].last_used_ms > 0);
  });

  test('passkeys and sessions in settings', async () => {
    const page = erin.page;
    // A second session elsewhere (a password login from a script).
    const other = await page.evaluate(async (password) => {
      const response = await fetch('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'erin', password, device: 'Old phone' }),
      });
      return (await response.json()).session_id;
    }, PASSWORD);

    const dialog = await openSecurity(page);
    const passkeys = dialog.getByRole('list', { name: 'Your passkeys' });
    await passkeys.getByText('This device').waitFor();
    await passkeys.getByRole('button', { name: 'Rename' }).click();
    await dialog.locator('input[name="rename"]').fill('Work laptop');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await passkeys.getByText('Work laptop').waitFor();

    const list = dialog.getByRole('list', { name: 'Your sessions' });
    const row = list.locator(`[data-session="${other}"]`);
    await row.getByText('Old phone').waitFor();
    await row.getByText(/password/).waitFor();
    await list.getByText('· this session').waitFor();
    await shot(page, 'security-dialog');
    await row.getByRole('button', { name: 'Revoke' }).click();
    await until(async () => (await list.locator(`[data-session="${other}"]`).count()) === 0, 'the session is gone');
    assert.ok(!(await sessions(page)).some((s) => s.session_id === other));

    // A second passkey can be added from settings (the virtual authenticator
    // refuses a second credential for the same account: excluded), so the
    // add button reports that instead of making a duplicate.
    await dialog.locator('input[name="passkey-name"]').fill('Again');
    await dialog.getByRole('button', { name: 'Add a passkey' }).click();
    await dialog.getByRole('alert').waitFor();
    assert.equal((await pageApi(page, 'GET', '/api/v1/passkeys')).passkeys.length, 1);

    // Ask for the passkey after the password.
    // A controlled checkbox: it shows the node's answer, so click and wait.
    await dialog.getByLabel('Ask for a passkey after my password').click();
    await until(
      async () => (await pageApi(page, 'GET', '/api/v1/sign-in-policy')).passkey_second_factor,
      'the policy is on',
    );
    await until(
      () => dialog.getByLabel('Ask for a passkey after my password').isChecked(),
      'the checkbox shows it',
    );
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  test('password, then the passkey', async () => {
    const page = erin.page;
    await logOut(page);
    await page.getByLabel('Username').fill('erin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await nav(page).waitFor();
    const current = (await sessions(page)).find((s) => s.current);
    assert.equal(current.method, 'password_and_passkey');
    assert.deepEqual(page.errors, []);
  });
});
