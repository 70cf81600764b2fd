// Passkeys in the browser: the WebAuthn ceremonies, with the options and answers as JSON
// (the browser's own parse*FromJSON and toJSON; no CBOR here). The API calls go through
// api.ts like every other request.
import { api, type PasskeyInfo } from "./api";

/** Whether this browser, on this address, can use passkeys at all. */
export function passkeysSupported(): boolean {
  return window.isSecureContext && typeof PublicKeyCredential !== "undefined"
    && typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function";
}

function failure(e: unknown): Error {
  if (e instanceof DOMException && e.name === "NotAllowedError") {
    return new Error("The passkey request was cancelled or timed out.");
  }
  if (e instanceof DOMException && e.name === "InvalidStateError") {
    return new Error("This device already holds a passkey for this appliance.");
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Register a passkey for this appliance on this device (needs a recent sign-in). */
export async function addPasskey(name: string): Promise<PasskeyInfo> {
  const { ceremony, options } = await api.registerOptions();
  let credential: Credential | null;
  try {
    credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
  } catch (e) { throw failure(e); }
  if (!(credential instanceof PublicKeyCredential)) throw new Error("No passkey was made.");
  return (await api.registerPasskey(ceremony, credential.toJSON(), name)).passkey;
}

/** Sign in with a passkey this device holds for this appliance. */
export async function signInWithPasskey(): Promise<void> {
  const { ceremony, options } = await api.loginOptions();
  let credential: Credential | null;
  try {
    credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
  } catch (e) { throw failure(e); }
  if (!(credential instanceof PublicKeyCredential)) throw new Error("No passkey was chosen.");
  await api.loginPasskey(ceremony, credential.toJSON());
}
