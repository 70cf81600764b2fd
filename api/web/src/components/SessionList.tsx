// The session list: live badges, filters, search, sort, keyboard selection, empty state.
// Which sessions a filter shows is the API's to say (each session's `filters`, the same field
// the TUI reads): the list only counts and shows them.
import { useEffect, useRef, useState } from "preact/hooks";
import type { ListFilter, Session } from "../api";
import { ago, basename } from "../format";
import { useLive } from "../live";
import { navigate } from "../router";
import { AgentBadge, ModelError, PhaseBadge } from "./Badge";
import { typing } from "./Shortcuts";
import { UsageDays } from "./Controls";
import { PullBadge } from "./Workflow";
import { Revealed } from "./Revealed";

type Sort = "updated" | "created" | "name";

const FILTERS: { id: ListFilter; label: string }[] = [
  { id: "active", label: "Active" }, { id: "waiting", label: "Waiting for me" },
  { id: "failed", label: "Failed" }, { id: "completed", label: "Completed" },
  { id: "archived", label: "Archived" },
];

function isFilter(x: string | null): x is ListFilter {
  return FILTERS.some(f => f.id === x);
}

function matches(s: Session, q: string): boolean {
  if (!q) return true;
  const hay = [s.name, s.title, s.description, s.repo_path, s.branch, s.initial_prompt, s.agent, s.model ?? "", s.backend]
    .join(" ").toLowerCase();
  return q.toLowerCase().split(/\s+/).every(w => hay.includes(w));
}

function sorter(sort: Sort): (a: Session, b: Session) => number {
  if (sort === "name") return (a, b) => a.name.localeCompare(b.name);
  if (sort === "created") return (a, b) => b.created_at.localeCompare(a.created_at);
  return (a, b) => b.updated_at.localeCompare(a.updated_at);
}

function Card({ s, selected }: { s: Session; selected: boolean }) {
  return <li>
    <a href={`/s/${encodeURIComponent(s.name)}`} class={`card session-card${selected ? " selected" : ""}`}
      data-testid="session-card" data-name={s.name} aria-current={selected ? "true" : undefined}>
      <div class="card-top">
        <strong class="session-name">{s.name}</strong>
        <span class="badges">{s.alert && <span class="pill alert" data-testid="alert-badge"
          title={s.alert}>alert</span>}{s.budget_exceeded && <span class="pill"
          title={s.budget_exceeded}>budget</span>}<PullBadge pull={s.pull} /><AgentBadge state={s.agent_state} why={s.model_error} /><PhaseBadge phase={s.phase} /></span>
      </div>
      {s.title && <p class="session-title" data-testid="session-title"><Revealed text={s.title} /></p>}
      {s.initial_prompt && <p class="prompt-excerpt"><Revealed text={s.initial_prompt} /></p>}
      {s.phase === "failed" && s.status_reason && <p class="reason"><Revealed text={s.status_reason} /></p>}
      <ModelError s={s} />
      <div class="meta">
        <span title={s.repo_path}>{basename(s.repo_path)}{s.subdirectory ? `/${s.subdirectory}` : ""}</span>
        <span class="mono">{s.branch}</span>
        <span>{s.agent}{s.model ? ` · ${s.model}` : ""}</span>
        <span title="backend" data-testid="session-backend">{s.backend}</span>
        {s.access_mode === "read-only" && <span class="pill">read-only</span>}
        <span class="muted">{ago(s.updated_at)}</span>
      </div>
    </a>
  </li>;
}

/** Workspaces a delete kept aside while this page was open: where, and why. */
function KeptNotices() {
  const store = useLive();
  return <>{store.kept.map(k => <div class="banner warn" data-testid="kept-notice" key={k.id}>
    <span>The workspace of <b>{k.name}</b> was kept at <code>{k.path}</code> ({k.reason}):
      take what you need from it, then remove it.</span>
    <button class="button" onClick={() => store.dismissKept(k.id)}>Dismiss</button>
  </div>)}</>;
}

function Empty() {
  return <section class="empty" data-testid="empty">
    <img src="/icon.svg" alt="" width="56" height="56" />
    <h1>Run your first agent</h1>
    <p>A session is an AI coding agent (Claude Code or Codex) working in its own container,
      on its own git branch of one of your repositories. It never sees your real
      credentials: the appliance's proxy adds them on the way out.</p>
    <ol class="steps-intro">
      <li>Pick a repository on this machine and say what to do.</li>
      <li>Watch it work in Chat or the Terminal; approve what it asks.</li>
      <li>Read the diff in Files, then merge the branch <code>clauderon/&lt;name&gt;</code>.</li>
    </ol>
    <a href="/new" class="button primary">Create a session</a>
    <p class="muted small">Or from a terminal: <code>clauderon create --repo ~/src/app --prompt "…"</code></p>
  </section>;
}

export function SessionList() {
  const store = useLive();
  const [filter, setFilter] = useState<ListFilter>(() => {
    const kept = sessionStorage.getItem("clauderon.filter");
    return isFilter(kept) ? kept : "active";
  });
  const [q, setQ] = useState("");
  const [sort, setSort] = useState<Sort>("updated");
  const [sel, setSel] = useState(-1);
  const search = useRef<HTMLInputElement>(null);
  const all = [...store.sessions.values()];
  const counts = Object.fromEntries(FILTERS.map(f => [f.id,
    all.filter(s => s.filters.includes(f.id)).length]));
  const shown = all.filter(s => s.filters.includes(filter) && matches(s, q)).sort(sorter(sort));

  useEffect(() => { sessionStorage.setItem("clauderon.filter", filter); }, [filter]);
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (e.key === "/" && !typing(e)) { e.preventDefault(); search.current?.focus(); return; }
      if (e.key === "Escape" && e.target === search.current) { search.current?.blur(); return; }
      if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
      if (e.key === "j" || e.key === "ArrowDown") setSel(i => Math.min(i + 1, shown.length - 1));
      else if (e.key === "k" || e.key === "ArrowUp") setSel(i => Math.max(i - 1, 0));
      else if (e.key === "Enter" && shown[sel]) navigate(`/s/${encodeURIComponent(shown[sel].name)}`);
      else return;
      e.preventDefault();
    };
    addEventListener("keydown", key);
    return () => removeEventListener("keydown", key);
  }, [shown, sel]);
  useEffect(() => {
    document.querySelector(".session-card.selected")?.scrollIntoView({ block: "nearest" });
  }, [sel]);

  if (!store.loaded) {
    return <section class="empty">{store.error
      ? <><h1>Cannot reach the appliance</h1><p>{store.error}</p>
        <button class="button" onClick={() => void store.load()}>Try again</button></>
      : <p class="muted">Loading sessions…</p>}</section>;
  }
  if (all.length === 0) return <><KeptNotices /><Empty /></>;

  return <section class="list-page">
    <KeptNotices />
    <div class="toolbar">
      <div class="segmented filters" role="tablist" aria-label="Filter sessions">
        {FILTERS.map(f => <button role="tab" aria-selected={filter === f.id}
          class={filter === f.id ? "on" : ""} onClick={() => { setFilter(f.id); setSel(-1); }}
          data-testid={`filter-${f.id}`}>
          {f.label}<span class="count">{counts[f.id]}</span></button>)}
      </div>
      <div class="search-sort">
        <input ref={search} type="search" placeholder="Search  /" value={q} aria-label="Search sessions"
          onInput={e => { setQ(e.currentTarget.value); setSel(-1); }} data-testid="search" />
        <select value={sort} aria-label="Sort" onChange={e => setSort(e.currentTarget.value as Sort)}>
          <option value="updated">Recently active</option>
          <option value="created">Newest</option>
          <option value="name">Name</option>
        </select>
      </div>
    </div>
    {shown.length === 0
      ? <p class="nothing">No {FILTERS.find(f => f.id === filter)?.label.toLowerCase()} sessions
        {q ? <> match “{q}”</> : null}.</p>
      : <ul class="cards">{shown.map((s, i) => <Card key={s.id} s={s} selected={i === sel} />)}</ul>}
    <UsageDays />
  </section>;
}
