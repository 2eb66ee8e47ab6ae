// The HTTP side of the node's API, and the session that authorizes it.
//
// The session (refresh token + current access token) lives in localStorage
// so it survives a reload and is shared by the tabs of one browser. The node
// rotates the refresh token on every use and ends the session if an old one
// is presented again, so two tabs must never refresh with the same token:
// refreshes take a Web Lock (where the browser offers one) and re-read the
// stored session inside it; a tab that finds a fresher token adopts it.

import type { Tokens } from './types';
import { type Ceremony, createPasskey, usePasskey } from './webauthn';

const KEY = 'spaces.session.v1';
/** Device tokens by lowercased username. Kept across logouts: they are what
 *  lets this browser sign in while someone guesses the password elsewhere. */
const DEVICES_KEY = 'spaces.devices.v1';
/** Refresh this long before the access token expires (capped at a quarter
 *  of its lifetime, so very short tokens still get most of their use). */
const REFRESH_LEAD_MS = 60_000;
/** A token closer than this to expiry is not worth sending. */
const MIN_VALID_MS = 5_000;

export interface Session {
  user_id: string;
  session_id: string;
  is_admin: boolean;
  refresh_token: string;
  access_token: string;
  /** Epoch ms. */
  access_expires_at: number;
  /** Lifetime of the access token, ms. */
  access_lifetime: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Why a session ended, for the login screen. */
export type EndReason = 'logout' | 'expired' | 'elsewhere';

type Listener = (session: Session | null, reason?: EndReason) => void;

let session: Session | null = load();
const listeners = new Set<Listener>();
let refreshing: Promise<boolean> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Session;
    return typeof value.refresh_token === 'string' && typeof value.user_id === 'string'
      ? value
      : null;
  } catch {
    return null;
  }
}

function save(value: Session | null): void {
  try {
    if (value) localStorage.setItem(KEY, JSON.stringify(value));
    else localStorage.removeItem(KEY);
  } catch {
    // Private mode or full storage: the session lasts as long as the page.
  }
}

function fromTokens(tokens: Tokens): Session {
  const lifetime = Math.max(1, tokens.expires_in) * 1000;
  return {
    user_id: tokens.user_id,
    session_id: tokens.session_id,
    is_admin: tokens.is_admin,
    refresh_token: tokens.refresh_token,
    access_token: tokens.access_token,
    access_expires_at: Date.now() + lifetime,
    access_lifetime: lifetime,
  };
}

function set(value: Session | null, reason?: EndReason): void {
  const changedUser = (session?.user_id ?? null) !== (value?.user_id ?? null);
  session = value;
  save(value);
  schedule();
  if (changedUser || !value) for (const listener of listeners) listener(value, reason);
}

function schedule(): void {
  clearTimeout(timer);
  if (!session) return;
  const lead = Math.min(REFRESH_LEAD_MS, session.access_lifetime / 4);
  const wait = Math.max(1_000, session.access_expires_at - lead - Date.now());
  timer = setTimeout(() => void refresh(), wait);
}

export function currentSession(): Session | null {
  return session;
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// Another tab logged in, out, or refreshed.
addEventListener('storage', (e) => {
  if (e.key !== KEY) return;
  const stored = load();
  if (!stored) {
    if (session) set(null, 'elsewhere');
  } else if (session && stored.user_id === session.user_id) {
    session = stored;
    schedule();
  } else {
    set(stored);
  }
});

schedule();

/** Raw fetch to the API: JSON in and out, errors as ApiError. */
async function call<T>(
  method: string,
  path: string,
  body: unknown,
  token: string | null,
  keepalive = false,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      keepalive,
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the node. Check your connection.');
  }
  if (response.status === 204) return undefined as T;
  let json: unknown = null;
  try {
    json = await response.json();
  } catch {
    // Non-JSON body: only plausible from a proxy in front of the node.
  }
  if (!response.ok) {
    const error = (json ?? {}) as { code?: string; message?: string };
    throw new ApiError(
      response.status,
      error.code ?? 'http_' + response.status,
      error.message ?? response.statusText ?? 'request failed',
    );
  }
  return json as T;
}

/**
 * Renews the access token. Resolves true when the session goes on (also
 * when another tab already renewed it), false when it has ended. Network
 * failures keep the session: the next request or timer tries again.
 */
export function refresh(): Promise<boolean> {
  refreshing ??= withLock(refreshLocked).finally(() => (refreshing = null));
  return refreshing;
}

async function withLock(run: () => Promise<boolean>): Promise<boolean> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? locks.request('spaces-refresh', run) : run();
}

async function refreshLocked(): Promise<boolean> {
  const mine = session;
  if (!mine) return false;
  const stored = load();
  if (!stored || stored.user_id !== mine.user_id) {
    set(stored, 'elsewhere');
    return stored !== null;
  }
  // Another tab renewed it while we waited for the lock.
  if (
    stored.refresh_token !== mine.refresh_token &&
    stored.access_expires_at - Date.now() > MIN_VALID_MS * 2
  ) {
    session = stored;
    schedule();
    return true;
  }
  try {
    const tokens = await call<Tokens>(
      'POST',
      '/api/v1/auth/refresh',
      { refresh_token: stored.refresh_token },
      null,
    );
    set(fromTokens(tokens));
    return true;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      set(null, 'expired');
      return false;
    }
    // Offline or node restarting: keep what we have and retry soon.
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), 5_000);
    return true;
  }
}

/** A usable access token, renewed first if it is about to expire. */
export async function accessToken(): Promise<string | null> {
  if (!session) return null;
  if (session.access_expires_at - Date.now() < MIN_VALID_MS) await refresh();
  return session?.access_token ?? null;
}

/** An authorized API call; renews the token once if the node says it expired.
 *  `keepalive`: the request outlives the page (sent as it unloads). */
/** A request that needs no session (password reset). */
export function anonymous<T>(method: string, path: string, body?: unknown): Promise<T> {
  return call<T>(method, path, body, null);
}

export async function api<T>(method: string, path: string, body?: unknown, keepalive = false): Promise<T> {
  const token = await accessToken();
  if (!token) throw new ApiError(401, 'no_session', 'Log in first.');
  try {
    return await call<T>(method, path, body, token, keepalive);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    if (error.code === 'token_expired' || error.code === 'bad_token') {
      if (await refresh()) {
        const again = session?.access_token;
        if (again && again !== token) return call<T>(method, path, body, again);
      }
    }
    if (error.code === 'session_revoked' || error.code === 'bad_token') set(null, 'expired');
    throw error;
  }
}

function device(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua)
    ? 'Firefox'
    : /Edg\//.test(ua)
      ? 'Edge'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chromium'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'browser';
  return `Web (${browser})`;
}

function deviceTokens(): Record<string, string> {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(DEVICES_KEY) ?? '{}');
    return value && typeof value === 'object' ? (value as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function keepDeviceToken(username: string, tokens: Tokens): void {
  if (!tokens.device_token) return;
  try {
    const all = deviceTokens();
    all[username.toLowerCase()] = tokens.device_token;
    localStorage.setItem(DEVICES_KEY, JSON.stringify(all));
  } catch {
    // Without storage this browser is simply never a known device.
  }
}

/** Login's answer when the account needs a passkey after the password. */
interface PasskeyRequired extends Ceremony {
  passkey_required: true;
}

/** Logs in; `onPasskey` is called when the account's passkey is asked for
 *  too (the browser then shows its passkey dialog). */
export async function login(
  username: string,
  password: string,
  onPasskey?: () => void,
): Promise<void> {
  const body: Record<string, string> = { username, password, device: device() };
  const known = deviceTokens()[username.toLowerCase()];
  if (typeof known === 'string') body.device_token = known;
  let tokens = await call<Tokens | PasskeyRequired>('POST', '/api/v1/auth/login', body, null);
  if ('passkey_required' in tokens) {
    onPasskey?.();
    tokens = await finishPasskey(tokens);
  }
  keepDeviceToken(username, tokens);
  set(fromTokens(tokens));
}

async function finishPasskey(ceremony: Ceremony): Promise<Tokens> {
  const credential = await usePasskey(ceremony);
  return call<Tokens>(
    'POST',
    '/api/v1/auth/passkey/finish',
    { ceremony_id: ceremony.ceremony_id, credential, device: device() },
    null,
  );
}

/** Signs in with a passkey alone: the browser offers this site's passkeys. */
export async function passkeyLogin(): Promise<void> {
  const ceremony = await call<Ceremony>('POST', '/api/v1/auth/passkey/begin', {}, null);
  const tokens = await finishPasskey(ceremony);
  const username = tokens.user_id.slice(1).split(':')[0] ?? '';
  keepDeviceToken(username, tokens);
  set(fromTokens(tokens));
}

/** Adds a passkey of this device to the signed-in account. */
export async function addPasskey(name: string): Promise<void> {
  const ceremony = await api<Ceremony>('POST', '/api/v1/passkeys/register/begin', {});
  const credential = await createPasskey(ceremony);
  await api('POST', '/api/v1/passkeys/register/finish', {
    ceremony_id: ceremony.ceremony_id,
    credential,
    name,
  });
}

/** Signs up. With `announce` false the new session is kept but the app is
 *  not told yet (a passkey is made first); `finishSignUp` tells it. */
export async function register(
  username: string,
  password: string,
  invite_token?: string,
  announce = true,
): Promise<void> {
  const body: Record<string, string> = { username, password, device: device() };
  if (invite_token) body.invite_token = invite_token;
  const tokens = await call<Tokens>('POST', '/api/v1/auth/register', body, null);
  keepDeviceToken(username, tokens);
  if (announce) set(fromTokens(tokens));
  else {
    session = fromTokens(tokens);
    save(session);
    schedule();
  }
}

/** Tells the app about a session `register(…, false)` began. */
export function finishSignUp(): void {
  if (session) for (const listener of listeners) listener(session);
}

export async function logout(): Promise<void> {
  try {
    await api('POST', '/api/v1/auth/logout');
  } catch {
    // Ending it locally is what matters; the node expires it eventually.
  }
  set(null, 'logout');
}

/** Encodes one path segment (ids contain `$`, `!`, `:`). */
export const seg = encodeURIComponent;
