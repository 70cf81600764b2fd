// The shell: sign-in gate, header, live-link indicator, theme switch, routes and desktop
// shortcuts. Nothing but the sign-in page shows (or connects) until the API says this
// browser is signed in; a 401 from any call (session expired or revoked) brings it back.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, SIGNED_OUT, type Me } from "../api";
import { live, useLive } from "../live";
import { decodeSegment } from "../format";
import { navigate, onLink, usePath } from "../router";
import { getTheme, nextTheme, setTheme, type Theme } from "../theme";
import * as notify from "../notify";
import { CreateForm } from "./CreateForm";
import { Devices } from "./Devices";
import { DiskNotice } from "./DiskNotice";
import { SessionList } from "./SessionList";
import { SessionPage } from "./SessionPage";
import { Shortcuts, typing } from "./Shortcuts";
import { SignIn } from "./SignIn";

const THEME_LABEL: Record<Theme, string> = { system: "System theme", light: "Light theme",
  dark: "Dark theme" };

function ThemeButton() {
  const [theme, set] = useState<Theme>(getTheme());
  const cycle = () => { const t = nextTheme(theme); setTheme(t); set(t); };
  useEffect(() => {
    const key = (e: KeyboardEvent) => { if (e.key === "t" && !typing(e)) cycle(); };
    addEventListener("keydown", key);
    return () => removeEventListener("keydown", key);
  });
  return <button class="icon-button" onClick={cycle} title={`${THEME_LABEL[theme]} (t)`}
    aria-label={THEME_LABEL[theme]} data-testid="theme">
    {theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}
  </button>;
}

function LinkState() {
  const store = useLive();
  const text = store.link === "live" ? "Live" : store.link === "connecting" ? "Connecting…"
    : "Reconnecting…";
  return <span class={`link-state ${store.link}`} title="Live updates from the appliance"
    data-testid="link-state"><i class="dot" />{text}</span>;
}

function NotifyButton() {
  const [on, setOn] = useState(notify.enabled());
  if (!notify.supported()) return null;
  return <button class="icon-button" data-testid="notify" aria-pressed={on}
    title={on ? "Notifications on: a session waiting for you or failing (click to turn off)"
      : "Notify me when a session waits for me or fails"}
    aria-label="Notifications" onClick={() => void notify.toggle().then(setOn)}>{on ? "🔔" : "🔕"}</button>;
}

export function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null>(null);
  const refresh = useCallback(() => api.me().then(setMe)
    .catch(() => { setMe({ signed_in: false }); }), []);
  useEffect(() => { void refresh(); }, [refresh]);
  useEffect(() => {
    const out = () => { live.stop(); setMe({ signed_in: false }); };
    addEventListener(SIGNED_OUT, out);
    return () => removeEventListener(SIGNED_OUT, out);
  }, []);
  if (me === null) return <div class="shell"><main class="main"><p class="muted">Loading…</p></main></div>;
  if (!me.signed_in || path === "/signin") {
    const done = async () => { await refresh(); if (location.pathname === "/signin") navigate("/", true); };
    return <div class="shell"><main class="main"><SignIn onSignedIn={() => void done()} /></main></div>;
  }
  return <Shell me={me} onSignedOut={() => { live.stop(); setMe({ signed_in: false }); navigate("/signin"); }} />;
}

function Shell({ me, onSignedOut }: { me: Me; onSignedOut: () => void }) {
  const path = usePath();
  const [help, setHelp] = useState(false);
  useEffect(() => { live.start(); }, []);
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
      if (e.key === "?") setHelp(h => !h);
      else if (e.key === "n") { e.preventDefault(); navigate("/new"); }
      else if (e.key === "Escape" && !help && path !== "/") navigate("/");
      else if (e.key === "Escape") setHelp(false);
    };
    addEventListener("keydown", key);
    return () => removeEventListener("keydown", key);
  }, [path, help]);

  const session = path.match(/^\/s\/([^/]+)(?:\/(\w+))?/);
  let page;
  if (path === "/new") page = <CreateForm />;
  else if (path === "/devices") page = <Devices me={me} onSignedOut={onSignedOut} />;
  else if (session) page = <SessionPage name={decodeSegment(session[1] ?? "")}
    tab={session[2] ?? "chat"} />;
  else page = <SessionList />;

  return <div class="shell" onClick={onLink}>
    <header class="topbar">
      <a href="/" class="brand" aria-label="Clauderon: all sessions">
        <img src="/icon.svg" alt="" width="26" height="26" /><span>Clauderon</span>
      </a>
      <LinkState />
      <div class="spacer" />
      <ThemeButton />
      <NotifyButton />
      <a href="/devices" class="icon-button" title="Signed-in devices and passkeys"
        aria-label="Signed-in devices and passkeys" data-testid="devices-link">
        <svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor"
          stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
          <circle cx="7.5" cy="15.5" r="4.5" /><path d="M10.7 12.3 20 3M16 7l3 3M14 9l2 2" />
        </svg></a>
      <button class="icon-button desktop-only" onClick={() => setHelp(true)}
        title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">⌨</button>
      {path !== "/new" && <a href="/new" class="button primary" data-testid="new-session">
        <span aria-hidden="true">+</span> New<span class="wide-only"> session</span></a>}
    </header>
    <main class="main"><DiskNotice />{page}</main>
    {help && <Shortcuts onClose={() => setHelp(false)} />}
  </div>;
}
