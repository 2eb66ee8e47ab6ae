// The OAuth consent page (/consent?…): a third-party app asks to act for
// the signed-in user within some scopes. The node checked the request at
// /oauth2/authorize and sent the browser here with the same query; this
// page shows the app's name and what it asks for, and sends the user's
// decision (POST /api/v1/oauth2/authorization, with the user's own token).
// The node answers where to go next: the app's redirect URI with a code,
// or with error=access_denied.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api/client';
import { ThemeToggle } from './theme';

interface ConsentView {
  client_id: string;
  client_name: string;
  redirect_uri: string;
  scopes: string[];
}

/** What each scope lets the app do, in the user's words. */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are on this node',
  profile: 'See your username and display name',
  read: 'Read your rooms, messages and notifications',
  send: 'Send messages, react, join and leave rooms as you',
};

function params(): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function ConsentPage() {
  const [view, setView] = useState<ConsentView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<ConsentView>('GET', `/api/v1/oauth2/authorization${location.search}`)
      .then(setView)
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, []);

  const decide = async (approve: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const { redirect_to } = await api<{ redirect_to: string }>(
        'POST',
        '/api/v1/oauth2/authorization',
        { ...params(), approve },
      );
      location.assign(redirect_to);
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <div class="auth-card consent" aria-labelledby="consent-title">
        <div class="auth-top">
          <h1 class="brand">Spaces</h1>
          <ThemeToggle />
        </div>
        {view ? (
          <>
            <h2 id="consent-title">
              <span class="consent-client">{view.client_name}</span> wants to use your account
            </h2>
            <p class="muted">It will be able to:</p>
            <ul class="consent-scopes">
              {view.scopes.map((scope) => (
                <li key={scope} data-scope={scope}>
                  {SCOPE_TEXT[scope] ?? scope}
                </li>
              ))}
            </ul>
            <p class="muted">
              You will be sent back to <code>{new URL(view.redirect_uri).host}</code>. You can end
              its access at any time under Security, Sessions.
            </p>
            {error && (
              <p class="error" role="alert">
                {error}
              </p>
            )}
            <div class="consent-actions">
              <button type="button" disabled={busy} onClick={() => void decide(false)}>
                Deny
              </button>
              <button type="button" class="primary" disabled={busy} onClick={() => void decide(true)}>
                Allow
              </button>
            </div>
          </>
        ) : error ? (
          <p class="error" role="alert" id="consent-title">
            This request cannot be approved: {error}
          </p>
        ) : (
          <p id="consent-title">Loading…</p>
        )}
      </div>
    </main>
  );
}
