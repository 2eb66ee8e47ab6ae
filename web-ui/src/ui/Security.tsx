// Sign-in and security: the account's passkeys (add, rename, remove), the
// passkey-after-password policy, and every session with how it began and a
// way to end it.

import { useEffect, useState } from 'preact/hooks';
import { addPasskey, api, ApiError, logout, seg } from '../api/client';
import { passkeyError, passkeysSupported } from '../api/webauthn';
import { Dialog, FieldError, formatFull, value } from './common';
import { EmailSection } from './Email';

interface Passkey {
  id: string;
  name: string;
  created_at_ms: number;
  last_used_ms: number | null;
  backup_eligible: boolean;
  backup_state: boolean;
}

interface SessionInfo {
  session_id: string;
  device: string;
  method: 'unknown' | 'password' | 'passkey' | 'password_and_passkey' | 'oauth_client';
  user_agent: string;
  created_at_ms: number;
  last_used_ms: number;
  current: boolean;
}

const METHODS: Record<SessionInfo['method'], string> = {
  unknown: 'signed in',
  password: 'password',
  passkey: 'passkey',
  password_and_passkey: 'password and passkey',
  // `device` is then the app's name: revoking the session cuts the app off.
  oauth_client: 'app you allowed',
};

function message(error: unknown): string {
  if (error instanceof DOMException) return passkeyError(error);
  return error instanceof Error ? error.message : String(error);
}

export function SecurityDialog({ onClose }: { onClose: () => void }) {
  const [passkeys, setPasskeys] = useState<Passkey[] | null>(null);
  const [secondFactor, setSecondFactor] = useState(false);
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = async () => {
    try {
      const [list, all] = await Promise.all([
        api<{ passkeys: Passkey[]; passkey_second_factor: boolean }>('GET', '/api/v1/passkeys'),
        api<SessionInfo[]>('GET', '/api/v1/sessions'),
      ]);
      setPasskeys(list.passkeys);
      setSecondFactor(list.passkey_second_factor);
      setSessions(all.sort((a, b) => b.last_used_ms - a.last_used_ms));
    } catch (e) {
      setError(message(e));
    }
  };
  useEffect(() => void load(), []);

  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      await load();
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };

  const add = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await addPasskey(name.trim() || 'passkey');
      setName('');
    });
  };

  return (
    <Dialog title="Sign-in and security" onClose={onClose} wide>
      <EmailSection />
      <section class="security" aria-labelledby="passkeys-title">
        <h3 id="passkeys-title">Passkeys</h3>
        {passkeys === null ? (
          <p class="muted">Loading…</p>
        ) : passkeys.length === 0 ? (
          <p class="muted">No passkeys yet. A passkey signs you in with this device’s lock, no password typed.</p>
        ) : (
          <ul class="security-list" aria-label="Your passkeys">
            {passkeys.map((p) => (
              <PasskeyRow key={p.id} passkey={p} busy={busy} run={run} />
            ))}
          </ul>
        )}
        {passkeysSupported() ? (
          <form class="row" onSubmit={add} aria-label="Add a passkey">
            <input
              name="passkey-name"
              placeholder="Name, e.g. Laptop"
              maxLength={64}
              value={name}
              onInput={(e) => setName(value(e))}
            />
            <button type="submit" class="primary" disabled={busy}>
              Add a passkey
            </button>
          </form>
        ) : (
          <p class="muted">This browser cannot use passkeys.</p>
        )}
        <label class="choice">
          <input
            type="checkbox"
            name="second-factor"
            checked={secondFactor}
            disabled={busy || !passkeys?.length}
            onChange={(e) => {
              const on = (e.target as HTMLInputElement).checked;
              void run(() => api('PUT', '/api/v1/sign-in-policy', { passkey_second_factor: on }));
            }}
          />
          Ask for a passkey after my password
        </label>
      </section>
      <section class="security" aria-labelledby="sessions-title">
        <h3 id="sessions-title">Sessions</h3>
        <ul class="security-list" aria-label="Your sessions">
          {(sessions ?? []).map((s) => (
            <li key={s.session_id} data-session={s.session_id}>
              <div class="security-info">
                <strong>
                  {s.device}
                  {s.current && <span class="muted"> · this session</span>}
                </strong>
                <span class="muted">
                  {METHODS[s.method]} · last used {formatFull(s.last_used_ms)}
                </span>
                {s.user_agent && <span class="muted small">{s.user_agent}</span>}
              </div>
              <button
                type="button"
                disabled={busy}
                onClick={() =>
                  s.current
                    ? void logout()
                    : void run(() => api('DELETE', `/api/v1/sessions/${seg(s.session_id)}`))
                }
              >
                {s.current ? 'Log out' : 'Revoke'}
              </button>
            </li>
          ))}
        </ul>
      </section>
      <FieldError error={error} />
    </Dialog>
  );
}

function PasskeyRow(props: {
  passkey: Passkey;
  busy: boolean;
  run: (work: () => Promise<unknown>) => Promise<void>;
}) {
  const p = props.passkey;
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(p.name);
  const path = `/api/v1/passkeys/${seg(p.id)}`;
  return (
    <li data-passkey={p.id}>
      {editing ? (
        <form
          class="row"
          aria-label="Rename passkey"
          onSubmit={(e) => {
            e.preventDefault();
            void props.run(() => api('PATCH', path, { name: name.trim() })).then(() => setEditing(false));
          }}
        >
          <input name="rename" maxLength={64} value={name} onInput={(e) => setName(value(e))} />
          <button type="submit" class="primary" disabled={props.busy}>
            Save
          </button>
        </form>
      ) : (
        <div class="security-info">
          <strong class="passkey-name">{p.name}</strong>
          <span class="muted">
            added {formatFull(p.created_at_ms)}
            {p.last_used_ms ? ` · last used ${formatFull(p.last_used_ms)}` : ' · never used'}
            {p.backup_state ? ' · synced' : ''}
          </span>
        </div>
      )}
      {!editing && (
        <div class="row">
          <button type="button" disabled={props.busy} onClick={() => setEditing(true)}>
            Rename
          </button>
          <button
            type="button"
            disabled={props.busy}
            onClick={() =>
              void props.run(async () => {
                try {
                  await api('DELETE', path);
                } catch (e) {
                  if (e instanceof ApiError && e.code === 'last_passkey')
                    throw new Error('Turn off “Ask for a passkey after my password” first.');
                  throw e;
                }
              })
            }
          >
            Remove
          </button>
        </div>
      )}
    </li>
  );
}
