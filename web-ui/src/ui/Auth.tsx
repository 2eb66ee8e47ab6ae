// Log in and sign up.

import { useState } from 'preact/hooks';
import {
  addPasskey,
  ApiError,
  finishSignUp,
  login,
  passkeyLogin,
  register,
  type EndReason,
} from '../api/client';
import { passkeyError, passkeysSupported } from '../api/webauthn';
import { FieldError, value } from './common';
import { ForgotPassword, resetToken } from './Email';
import { ThemeToggle } from './theme';

const REASONS: Record<EndReason, string | null> = {
  logout: null,
  expired: 'Your session ended. Log in again.',
  elsewhere: 'You were logged out in another tab.',
};

export function AuthScreen({ reason }: { reason?: EndReason }) {
  // Opened at a mailed reset link: straight to setting the new password.
  const [mode, setMode] = useState<'login' | 'register' | 'forgot'>(resetToken() ? 'forgot' : 'login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [invite, setInvite] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [withPasskey, setWithPasskey] = useState(false);
  // Opened at an invite link: after logging in, the app is still at it.
  const notice =
    (reason && REASONS[reason]) ||
    (location.pathname.startsWith('/join/')
      ? 'Log in or sign up to accept the invitation.'
      : location.pathname === '/consent'
        ? 'Log in to let an app use your account.'
        : null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      if (mode === 'login')
        await login(username.trim(), password, () => setStatus('Now confirm with your passkey.'));
      else {
        // The account first (a passkey belongs to one), then this device's
        // passkey; if that is cancelled the account stands, signed in.
        const adding = withPasskey;
        await register(username.trim().toLowerCase(), password, invite.trim() || undefined, !adding);
        if (adding) {
          setStatus('Account created. Now make a passkey on this device.');
          try {
            await addPasskey('This device');
          } finally {
            finishSignUp();
          }
        }
      }
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === 'bad_credentials'
          ? 'Wrong username or password.'
          : err instanceof DOMException
            ? passkeyError(err)
            : err instanceof Error
              ? err.message
              : String(err),
      );
      setStatus(null);
      setBusy(false);
    }
  };

  const signInWithPasskey = async () => {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      await passkeyLogin();
    } catch (err) {
      setError(
        err instanceof ApiError && err.code === 'unknown_passkey'
          ? 'This passkey is not registered on this node.'
          : passkeyError(err),
      );
      setBusy(false);
    }
  };

  const registering = mode === 'register';
  return (
    <main class="auth">
      <div class="auth-card">
        <div class="auth-top">
          <h1 class="brand">Spaces</h1>
          <ThemeToggle />
        </div>
        <div class="tabs" role="tablist" aria-label="Account">
          <button
            type="button"
            role="tab"
            id="tab-login"
            aria-selected={!registering}
            aria-controls="auth-form"
            onClick={() => setMode('login')}
          >
            Log in
          </button>
          <button
            type="button"
            role="tab"
            id="tab-register"
            aria-selected={registering}
            aria-controls="auth-form"
            onClick={() => setMode('register')}
          >
            Sign up
          </button>
        </div>
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        <div id="auth-form" role="tabpanel" aria-labelledby={registering ? 'tab-register' : 'tab-login'}>
        {mode === 'forgot' ? (
          <>
            <ForgotPassword
              onDone={(done) => {
                setMode('login');
                setStatus(done);
              }}
            />
            <button type="button" class="link-button" onClick={() => setMode('login')}>
              Back to log in
            </button>
          </>
        ) : (
          <>
        <form onSubmit={submit} aria-label={registering ? 'Sign up' : 'Log in'}>
          <label>
            Username
            <input
              name="username"
              autocomplete="username"
              autocapitalize="none"
              spellcheck={false}
              required
              maxLength={32}
              pattern={registering ? '[a-z0-9._\\-]+' : undefined}
              title={registering ? 'Lowercase letters, digits, dot, dash and underscore' : undefined}
              value={username}
              onInput={(e) => setUsername(value(e))}
            />
          </label>
          <label>
            Password
            <input
              name="password"
              type="password"
              autocomplete={registering ? 'new-password' : 'current-password'}
              required
              minLength={registering ? 8 : undefined}
              value={password}
              onInput={(e) => setPassword(value(e))}
            />
          </label>
          {registering && (
            <label>
              Invite token <span class="muted">(if this node asks for one)</span>
              <input name="invite" value={invite} onInput={(e) => setInvite(value(e))} />
            </label>
          )}
          {registering && passkeysSupported() && (
            <label class="choice">
              <input
                type="checkbox"
                name="with-passkey"
                checked={withPasskey}
                onChange={(e) => setWithPasskey((e.target as HTMLInputElement).checked)}
              />
              Also make a passkey on this device
            </label>
          )}
          {status && (
            <p class="notice" role="status">
              {status}
            </p>
          )}
          <FieldError error={error} />
          <button class="primary" type="submit" disabled={busy}>
            {registering ? 'Create account' : 'Log in'}
          </button>
        </form>
        {!registering && passkeysSupported() && (
          <button type="button" class="passkey-button" disabled={busy} onClick={() => void signInWithPasskey()}>
            Sign in with a passkey
          </button>
        )}
        {!registering && (
          <button type="button" class="link-button" onClick={() => setMode('forgot')}>
            Forgot password?
          </button>
        )}
          </>
        )}
        </div>
      </div>
    </main>
  );
}
