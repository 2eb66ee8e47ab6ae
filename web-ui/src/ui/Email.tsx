// Email: the account's address (set, verify by the mailed link, digests on
// or off, remove) in the security dialog, and "forgot password" on the
// login screen: ask for a code by mail, then set a new password with it
// (also reached from the mailed link, /reset-password?token=…).

import { useEffect, useState } from 'preact/hooks';
import { anonymous, api, ApiError } from '../api/client';
import { FieldError, value } from './common';

interface EmailState {
  address: string | null;
  verified: boolean;
  digests: boolean;
}

function message(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === 'email_off') return 'This node does not send email.';
    if (error.code === 'too_many_mails') return 'Too many mails to this account in the last hour. Try again later.';
  }
  return error instanceof Error ? error.message : String(error);
}

/** The account's email address, in the security dialog. */
export function EmailSection() {
  const [state, setState] = useState<EmailState | null>(null);
  const [off, setOff] = useState(false);
  const [address, setAddress] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = async () => {
    try {
      const found = await api<EmailState>('GET', '/api/v1/account/email');
      setState(found);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'email_off') setOff(true);
      else setError(message(e));
    }
  };
  useEffect(() => void load(), []);

  const run = async (work: () => Promise<EmailState | void>, done?: string) => {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const next = await work();
      if (next) setState(next);
      else await load();
      if (done) setStatus(done);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };

  if (off) {
    return (
      <section class="security" aria-labelledby="email-title">
        <h3 id="email-title">Email</h3>
        <p class="muted">This node does not send email.</p>
      </section>
    );
  }

  const save = (e: Event) => {
    e.preventDefault();
    const wanted = address.trim();
    void run(async () => {
      const next = await api<EmailState>('PUT', '/api/v1/account/email', { address: wanted });
      setAddress('');
      return next;
    }, `We sent a link to ${wanted}: open it to confirm the address.`);
  };

  return (
    <section class="security" aria-labelledby="email-title">
      <h3 id="email-title">Email</h3>
      {state === null ? (
        <p class="muted">Loading…</p>
      ) : state.address === null ? (
        <p class="muted">No email address. With one, you can reset a forgotten password and get a digest of mentions and direct messages while you are away.</p>
      ) : (
        <p data-testid="email-address">
          {state.address}{' '}
          <span class={state.verified ? 'badge' : 'muted'} data-testid="email-status">
            {state.verified ? 'confirmed' : 'waiting for confirmation: open the link we mailed'}
          </span>
        </p>
      )}
      <form class="row" onSubmit={save} aria-label="Email address">
        <input
          name="email"
          type="email"
          autocomplete="email"
          placeholder={state?.address ? 'A new address' : 'you@example.org'}
          maxLength={254}
          required
          value={address}
          onInput={(e) => setAddress(value(e))}
        />
        <button type="submit" class="primary" disabled={busy}>
          {state?.address ? 'Change' : 'Add'}
        </button>
      </form>
      {state?.address && (
        <>
          <label class="choice">
            <input
              type="checkbox"
              name="digests"
              checked={state.digests}
              disabled={busy}
              onChange={(e) => {
                const on = (e.target as HTMLInputElement).checked;
                void run(() => api<EmailState>('PATCH', '/api/v1/account/email', { digests: on }));
              }}
            />
            Email me a digest of mentions and direct messages while I am away
          </label>
          <button
            type="button"
            disabled={busy}
            onClick={() => void run(() => api<void>('DELETE', '/api/v1/account/email'))}
          >
            Remove the address
          </button>
        </>
      )}
      {status && (
        <p class="notice" role="status">
          {status}
        </p>
      )}
      <FieldError error={error} />
    </section>
  );
}

/** The reset code of a `/reset-password?token=…` link, if opened at one. */
export function resetToken(): string | null {
  if (location.pathname !== '/reset-password') return null;
  return new URLSearchParams(location.search).get('token');
}

/** "Forgot password": ask for a code by mail, then set a new password. */
export function ForgotPassword({ onDone }: { onDone: (notice: string) => void }) {
  const [step, setStep] = useState<'ask' | 'set'>(resetToken() ? 'set' : 'ask');
  const [login, setLogin] = useState('');
  const [token, setToken] = useState(resetToken() ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const ask = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const name = login.trim();
      await anonymous('POST', '/api/v1/account/password/reset', name.includes('@') ? { email: name } : { username: name });
      setStatus('If the account has a confirmed email address, a code is on its way. Enter it below.');
      setStep('set');
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };

  const set = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await anonymous('POST', '/api/v1/account/password/reset/confirm', {
        token: token.trim(),
        new_password: password,
      });
      if (location.pathname === '/reset-password') history.replaceState(null, '', '/');
      onDone('Your password is changed and every session was signed out. Log in with the new password.');
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === 'bad_token'
          ? 'This code is unknown, used or expired. Ask for a new one.'
          : message(err),
      );
    } finally {
      setBusy(false);
    }
  };

  // Keyed: without keys preact reuses the first form's input for the code,
  // and removing its maxLength leaves maxlength="0" (nothing can be typed).
  return step === 'ask' ? (
    <form key="ask" onSubmit={ask} aria-label="Forgot password">
      <label>
        Username or email address
        <input
          name="login"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
          maxLength={254}
          value={login}
          onInput={(e) => setLogin(value(e))}
        />
      </label>
      <FieldError error={error} />
      <button class="primary" type="submit" disabled={busy}>
        Mail me a reset code
      </button>
    </form>
  ) : (
    <form key="set" onSubmit={set} aria-label="Set a new password">
      {status && (
        <p class="notice" role="status">
          {status}
        </p>
      )}
      <label>
        Code from the mail
        <input name="token" required spellcheck={false} value={token} onInput={(e) => setToken(value(e))} />
      </label>
      <label>
        New password
        <input
          name="new-password"
          type="password"
          autocomplete="new-password"
          required
          minLength={8}
          value={password}
          onInput={(e) => setPassword(value(e))}
        />
      </label>
      <FieldError error={error} />
      <button class="primary" type="submit" disabled={busy}>
        Set the new password
      </button>
    </form>
  );
}
