// The browser side of passkeys: the node's WebAuthn options (binary fields
// as base64url strings) turned into what navigator.credentials takes, and
// the authenticator's answer turned back into JSON the node reads.
// Written by hand rather than with PublicKeyCredential.parse…FromJSON and
// toJSON(): those are too new for every browser we serve.

/** The options a ceremony's `begin` returns. */
export interface Ceremony {
  ceremony_id: string;
  options: { publicKey: Record<string, unknown> };
}

/** Whether this browser can use passkeys at all. */
export function passkeysSupported(): boolean {
  return typeof window !== 'undefined' && 'PublicKeyCredential' in window && !!navigator.credentials;
}

function bytes(text: string): ArrayBuffer {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out.buffer;
}

function text(buffer: ArrayBuffer): string {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

type Descriptor = { id: string; type: string; transports?: string[] };

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] {
  return ((list as Descriptor[] | undefined) ?? []).map((c) => ({
    type: 'public-key',
    id: bytes(c.id),
    transports: c.transports as AuthenticatorTransport[] | undefined,
  }));
}

/** Asks the authenticator for a new passkey; the answer as JSON. */
export async function createPasskey(ceremony: Ceremony): Promise<unknown> {
  const options = ceremony.options.publicKey as Record<string, unknown> & {
    challenge: string;
    user: { id: string; name: string; displayName: string };
  };
  const publicKey = {
    ...options,
    challenge: bytes(options.challenge),
    user: { ...options.user, id: bytes(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  } as unknown as PublicKeyCredentialCreationOptions;
  const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error('No passkey was made.');
  const response = credential.response as AuthenticatorAttestationResponse;
  return {
    id: credential.id,
    rawId: text(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: text(response.attestationObject),
      clientDataJSON: text(response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  };
}

/** Asks the authenticator to sign a ceremony's challenge; the answer as JSON. */
export async function usePasskey(ceremony: Ceremony): Promise<unknown> {
  const options = ceremony.options.publicKey as Record<string, unknown> & { challenge: string };
  const publicKey = {
    ...options,
    challenge: bytes(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  } as unknown as PublicKeyCredentialRequestOptions;
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error('No passkey answered.');
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id,
    rawId: text(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: text(response.authenticatorData),
      clientDataJSON: text(response.clientDataJSON),
      signature: text(response.signature),
      userHandle: response.userHandle ? text(response.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
}

/** A browser's refusal, in words for the person at the keyboard. */
export function passkeyError(error: unknown): string {
  if (error instanceof DOMException) {
    if (error.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
    if (error.name === 'InvalidStateError') return 'This device already holds a passkey for this account.';
    if (error.name === 'SecurityError')
      return 'Passkeys need this page to be opened at the node’s public address (https, or localhost).';
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
