// The sign-in page: a one-time link from `clauderon web` (its token in the URL's fragment,
// removed from the address bar before anything else happens), or a passkey. After a link,
// it offers to add a passkey so the next sign-in needs no terminal.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText } from "../api";
import { decodeSegment } from "../format";
import { addPasskey, passkeysSupported, signInWithPasskey } from "../passkey";

/** The token of a one-time link, taken out of the address bar and history at once. */
function takeLinkToken(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match?.[1]) return null;
  history.replaceState(null, "", "/signin");
  return decodeSegment(match[1]);
}

export function OfferPasskey({ onDone }: { onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [added, setAdded] = useState(false);
  const possible = passkeysSupported() && !/^[\d.]+$|^\[/.test(location.hostname);
  const add = async () => {
    setBusy(true);
    try { await addPasskey(""); setAdded(true); setError(""); }
    catch (e) { setError(errorText(e)); }
    finally { setBusy(false); }
  };
  if (added) {
    return <div data-testid="passkey-added"><p>Passkey added. Next time, sign in with it.</p>
      <button class="button primary" onClick={onDone} data-testid="continue">Open Clauderon</button></div>;
  }
  return <div data-testid="offer-passkey">
    <p>Add a passkey so this device can sign in again without a link from the terminal.</p>
    {!possible && <p class="hint" data-testid="passkey-unavailable">Passkeys need a secure
      address with a name: open <code>http://localhost:{location.port}</code> here, or the
      appliance's HTTPS name from a phone.</p>}
    <div class="row wrap">
      <button class="button primary" disabled={busy || !possible} onClick={() => void add()}
        data-testid="add-passkey">Add a passkey</button>
      <button class="button" onClick={onDone} data-testid="not-now">Not now</button>
    </div>
    {error && <p class="field-error" data-testid="passkey-error">{error}</p>}
  </div>;
}

export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState(takeLinkToken);
  const [state, setState] = useState<"idle" | "redeeming" | "offer">(token ? "redeeming" : "idle");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {  // another link pasted into this tab changes only the fragment
    const again = () => { const t = takeLinkToken(); if (t) setToken(t); };
    addEventListener("hashchange", again);
    return () => removeEventListener("hashchange", again);
  }, []);

  useEffect(() => {
    if (!token) return;
    setState("redeeming");
    api.redeemLink(token).then(() => setState("offer"))
      .catch((e: unknown) => {
        setError(e instanceof ApiError && e.status === 401 ? e.message : errorText(e));
        setState("idle");
      });
  }, [token]);

  const passkey = async () => {
    setBusy(true);
    try { await signInWithPasskey(); setError(""); onSignedIn(); }
    catch (e) { setError(errorText(e)); }
    finally { setBusy(false); }
  };

  return <div class="narrow signin"><section class="card pad" data-testid="signin">
    <h1>Sign in to Clauderon</h1>
    {state === "redeeming" && <p class="muted">Signing in…</p>}
    {state === "offer" && <><p data-testid="signed-in">You are signed in.</p>
      <OfferPasskey onDone={onSignedIn} /></>}
    {state === "idle" && <>
      {error && <p class="form-error" data-testid="signin-error">{error}</p>}
      <p>On the appliance's machine, run <code>clauderon web</code>: it prints a one-time link
        (valid 5 minutes) that signs this browser in.</p>
      {passkeysSupported() && <p><button class="button primary" disabled={busy}
        onClick={() => void passkey()} data-testid="passkey-signin">Sign in with a passkey</button></p>}
    </>}
  </section></div>;
}
