// Signed-in devices and passkeys: every browser session, passkey and API token, each
// revocable; add a passkey (within minutes of a sign-in), or sign out.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, errorText, type Devices as DeviceList, type Me } from "../api";
import { when } from "../format";
import { OfferPasskey } from "./SignIn";

export function Devices({ me, onSignedOut }: { me: Me; onSignedOut: () => void }) {
  const [list, setList] = useState<DeviceList | null>(null);
  const [error, setError] = useState("");
  const [adding, setAdding] = useState(false);
  const load = useCallback(() => api.devices().then(setList)
    .catch((e: unknown) => setError(errorText(e))), []);
  useEffect(() => { void load(); }, [load]);
  const revoke = async (id: string) => {
    try {
      await api.revokeDevice(id);
      if (id === list?.current || id === me.session?.passkey_id) { onSignedOut(); return; }
      await load();
    } catch (e) { setError(errorText(e)); }
  };
  const signOut = async () => {
    try { await api.logout(); } finally { onSignedOut(); }
  };
  const row = (id: string, name: string, detail: string, used: string | null,
               current = false) => <li class="device" data-testid="device" data-id={id}>
    <div><b>{name}</b>{current && <span class="pill" data-testid="this-device"> this browser</span>}
      <div class="muted small">{detail}{used ? ` · last used ${when(used)}` : ""}</div></div>
    <button class="button danger small-button" onClick={() => void revoke(id)}
      data-testid={`revoke-${id}`}>{current ? "Sign out" : "Revoke"}</button>
  </li>;
  return <div class="narrow devices" data-testid="devices">
    <div class="row between"><h1>Signed-in devices and passkeys</h1>
      <button class="button" onClick={() => void signOut()} data-testid="sign-out">Sign out</button></div>
    {error && <p class="form-error">{error}</p>}
    {!list ? <p class="muted">Loading…</p> : <>
      <section class="card pad"><h2>Browsers</h2><ul class="device-list">
        {list.sessions.map(s => row(s.id, s.name, `signed in with ${s.method === "passkey"
          ? "a passkey" : "a one-time link"} ${when(s.created_at)}`, s.last_used_at,
          s.id === list.current))}</ul></section>
      <section class="card pad"><h2>Passkeys</h2>
        {list.passkeys.length === 0 && <p class="muted">No passkey yet.</p>}
        <ul class="device-list" data-testid="passkeys">{list.passkeys.map(k => row(k.id, k.name,
          `for ${k.rp_id}, added ${when(k.created_at)}${k.backed_up ? ", synced" : ""}`,
          k.last_used_at))}</ul>
        {me.can_add_passkey ? (adding ? <OfferPasskey onDone={() => { setAdding(false); void load(); }} />
          : <button class="button" onClick={() => setAdding(true)} data-testid="new-passkey">Add a passkey</button>)
          : <p class="hint">To add a passkey, sign in again (or run <code>clauderon web</code>)
            and add it within 10 minutes.</p>}
      </section>
      <section class="card pad"><h2>API tokens</h2>
        {list.tokens.length === 0 && <p class="muted">None. Scripts get one with
          <code> clauderon auth token create --read-only</code>.</p>}
        <ul class="device-list">{list.tokens.map(t => row(t.id, t.name, `${t.scope}, made ${when(t.created_at)}`,
          t.last_used_at))}</ul></section>
    </>}
  </div>;
}
