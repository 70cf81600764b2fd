// One session: its header (live badges, quick actions) and the Chat / Terminal / Files /
// Info / Timeline tabs, each its own URL (/s/<name>/<tab>) so a reload or a shared link lands there.
import { useEffect, useState } from "preact/hooks";
import { api, offered, type Session } from "../api";
import { useLive } from "../live";
import { navigate } from "../router";
import { AgentBadge, PhaseBadge } from "./Badge";
import { ChatTab } from "./ChatTab";
import { FilesTab } from "./FilesTab";
import { InfoTab } from "./InfoTab";
import { Revealed } from "./Revealed";
import { typing } from "./Shortcuts";
import { PullBadge } from "./Workflow";
import { TimelineTab } from "./TimelineTab";

type TerminalModule = typeof import("./TerminalTab");

// xterm.js is the biggest piece of the app: it loads only when the Terminal tab opens.
function LazyTerminal({ s }: { s: Session }) {
  const [mod, setMod] = useState<TerminalModule | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => { import("./TerminalTab").then(setMod).catch(() => setFailed(true)); }, []);
  if (failed) return <p class="field-error pad">The terminal could not be loaded; reload the page.</p>;
  return mod ? <mod.TerminalTab s={s} /> : <p class="muted pad">Loading the terminal…</p>;
}

const TABS = [
  { id: "chat", label: "Chat" }, { id: "terminal", label: "Terminal" },
  { id: "files", label: "Files" }, { id: "info", label: "Info" },
  { id: "timeline", label: "Timeline" },
];

export function SessionPage({ name, tab }: { name: string; tab: string }) {
  const store = useLive();
  const s = store.byRef(name);
  const [missing, setMissing] = useState(false);

  const known = s !== undefined;
  useEffect(() => {  // not in the store yet (deep link before the list loads): ask directly
    if (known || !store.loaded) return;
    if (store.deleted(name)) { setMissing(true); return; }  // seen going: nothing to ask
    api.getSession(name).then(x => store.upsert(x)).catch(() => setMissing(true));
  }, [name, store, store.loaded, known]);
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
      const t = TABS[Number(e.key) - 1];
      if (t) navigate(`/s/${encodeURIComponent(name)}/${t.id}`);
    };
    addEventListener("keydown", key);
    return () => removeEventListener("keydown", key);
  }, [name]);
  useEffect(() => { document.title = `${name} · Clauderon`; return () => { document.title = "Clauderon"; }; }, [name]);

  if (!s) {
    return <section class="empty">{missing
      ? <><h1>No session “{name}”</h1><p>It may have been deleted.</p><a class="button" href="/">All sessions</a></>
      : <p class="muted">Loading…</p>}</section>;
  }
  const base = `/s/${encodeURIComponent(s.name)}`;
  return <section class="session-page" data-testid="session-page" data-name={s.name}>
    <div class="session-head">
      <a href="/" class="back" aria-label="All sessions">‹</a>
      <div class="title">
        <h1>{s.name}</h1>
        <p class="meta"><span class="mono">{s.branch}</span><span>{s.agent}{s.model ? ` · ${s.model}` : ""}</span>
          {s.access_mode === "read-only" && <span class="pill">read-only</span>}</p>
      </div>
      <span class="badges"><PullBadge pull={s.pull} /><AgentBadge state={s.agent_state} why={s.model_error} /><PhaseBadge phase={s.phase} />
        {offered(s, "interrupt") && s.agent_status === "working" && <button class="button small-button"
          data-testid="interrupt" title="Press Ctrl-C in the agent's terminal: the turn under way stops"
          onClick={() => void api.interrupt(s.id).then(x => store.upsert(x))}>Interrupt</button>}</span>
    </div>
    {s.agent_state === "model_failing" && <p class="banner danger" data-testid="model-error-banner">
      {s.model_error}</p>}
    {s.phase === "failed" && <p class="banner danger">{s.status_reason ? <Revealed text={s.status_reason} /> : "Failed."}
      {offered(s, "retry") && <button class="button small-button" onClick={() => void api.retry(s.id)}>Retry</button>}</p>}
    <nav class="tabs" role="tablist">
      {TABS.map((t, i) => <a role="tab" href={`${base}/${t.id}`} aria-selected={tab === t.id}
        class={tab === t.id ? "on" : ""} title={`${t.label} (${i + 1})`} data-testid={`tab-${t.id}`}>{t.label}</a>)}
    </nav>
    <div class="tab-body">
      {/* Being deleted: nothing of it is read any more (each tab's reads would find it gone). */}
      {s.phase === "deleting"
        ? <p class="muted pad" data-testid="deleting">{s.name} is being deleted; its branch{" "}
          <code>{s.branch}</code> stays in the repository.</p>
        : <>
          {tab === "chat" && <ChatTab s={s} />}
          {tab === "terminal" && <LazyTerminal s={s} />}
          {tab === "files" && <FilesTab s={s} />}
          {tab === "info" && <InfoTab s={s} />}
          {tab === "timeline" && <TimelineTab s={s} />}
        </>}
    </div>
  </section>;
}
