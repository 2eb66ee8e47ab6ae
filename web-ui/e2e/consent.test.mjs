// End-to-end: the OAuth consent page. A third-party app (registered with
// `spaces admin oauth-client add` before the node starts) sends the
// browser to /oauth2/authorize; the node checks the request and shows the
// web client's consent page at /consent; the user logs in there, sees the
// app's name and what it asks for, and allows or denies. Allowing sends
// the browser to the app's redirect URI with a code and the state, which
// the test redeems (with the PKCE verifier) for tokens and an ID token;
// denying sends it back with error=access_denied.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, ownNode, shotViews } from './harness.mjs';

const PASSWORD = 'correct horse battery';

let browser;
let node;
let client;
let user;

/** The app's own authorization request, with PKCE. */
function authorization(scope) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.id,
    redirect_uri: client.redirect,
    scope,
    state,
    nonce: 'nonce-1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return { url: `${node.url}/oauth2/authorize?${query}`, verifier, state };
}

describe('Spaces web client: OAuth consent', { timeout: 120_000 }, () => {
  before(async () => {
    node = await ownNode(async (dataDir, url, bin) => {
      const redirect = `${url}/app/callback`;
      const out = execFileSync(
        bin,
        ['admin', '--data-dir', dataDir, 'oauth-client', 'add', '--name', 'Photo Printer',
          '--redirect-uri', redirect, '--scopes', 'openid profile read send'],
        { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } },
      );
      const field = (name) => out.match(new RegExp(`^${name} (\\S+)$`, 'm'))[1];
      client = { id: field('client_id'), secret: field('client_secret'), redirect };
    });
    if (!node) return;
    browser = await launch();
    user = await openPage(browser, { colorScheme: 'light', baseURL: node.url });
  });

  after(async () => {
    await browser?.close();
    await node?.close();
  });

  test('an app asks, the user logs in and allows, the app gets tokens', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const page = user.page;
    const request = authorization('openid profile read');
    await page.goto(request.url);
    // Not signed in: the login screen says why, then the consent page.
    await page.getByText('Log in to let an app use your account.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/consent');
    await page.getByRole('tab', { name: 'Sign up' }).click();
    const form = page.getByRole('form', { name: 'Sign up' });
    await form.getByLabel('Username').fill('paula');
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Create account' }).click();

    const heading = page.getByRole('heading', { name: 'Photo Printer wants to use your account' });
    await heading.waitFor();
    const scopes = await page.locator('.consent-scopes li').evaluateAll((items) =>
      items.map((item) => item.dataset.scope),
    );
    assert.deepEqual(scopes, ['openid', 'profile', 'read']);
    await page.getByText('Read your rooms, messages and notifications').waitFor();
    await shotViews(page, 'consent');

    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.pathname === '/app/callback');
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('state'), request.state);
    const code = back.searchParams.get('code');
    assert.ok(code, 'a code came back');

    // The app redeems it.
    const response = await fetch(`${node.url}/oauth2/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: client.redirect,
        code_verifier: request.verifier,
      }),
    });
    assert.equal(response.status, 200);
    const tokens = await response.json();
    assert.equal(tokens.scope, 'openid profile read');
    const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString());
    assert.equal(claims.preferred_username, 'paula');
    assert.equal(claims.nonce, 'nonce-1');
    const me = await fetch(`${node.url}/oauth2/userinfo`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal((await me.json()).preferred_username, 'paula');
    assert.deepEqual(user.page.errors, []);
  });

  test('denying sends the app access_denied', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const page = user.page;
    const request = authorization('openid read send');
    await page.goto(request.url);
    await page.getByRole('heading', { name: 'Photo Printer wants to use your account' }).waitFor();
    await page.getByText('Send messages, react, join and leave rooms as you').waitFor();
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForURL((url) => url.pathname === '/app/callback');
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), request.state);
    assert.equal(back.searchParams.get('code'), null);
  });
});
