// Info: where the session runs and with what, the live access-mode switch, its recent proxy
// audit lines, and the lifecycle actions (stop/start, archive, delete with confirmation).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, errorText, offered, type AccessMode, type AuditLine, type Session } from "../api";
import { hasHidden, hiddenIn, when, withoutHidden } from "../format";
import { live } from "../live";
import { navigate } from "../router";
import { Controls } from "./Controls";
import { HealthPanel, PullPanel } from "./Workflow";
import { Revealed } from "./Revealed";

function Confirm({ title, body, action, danger, onConfirm, onClose }: { title: string;
  body: preact.ComponentChildren; action: string; danger?: boolean; onConfirm: () => void;
  onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => { ref.current?.showModal(); }, []);
  return <dialog ref={ref} class="dialog" onClose={onClose} data-testid="confirm">
    <h2>{title}</h2><div>{body}</div>
    <form method="dialog" class="row end">
      <button class="button" value="cancel">Cancel</button>
      <button class={`button ${danger ? "danger" : "primary"}`} value="ok" data-testid="confirm-ok"
        onClick={e => { e.preventDefault(); onConfirm(); ref.current?.close(); }}>{action}</button>
    </form>
  </dialog>;
}

function AccessSwitch({ s }: { s: Session }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const set = async (m: AccessMode) => {
    if (m === s.access_mode) return;
    setBusy(true);
    try { live.upsert(await api.setAccessMode(s.id, m)); setError(""); }
    catch (e) { setError(errorText(e)); }
    finally { setBusy(false); }
  };
  return <div class="access" data-testid="access-mode" data-mode={s.access_mode}>
    <div class="segmented" role="radiogroup" aria-label="Access mode">
      {(["read-write", "read-only"] as const).map(m => <button role="radio" aria-checked={s.access_mode === m}
        class={s.access_mode === m ? "on" : ""} disabled={busy || !offered(s, "access-mode")}
        onClick={() => void set(m)}
        data-testid={`access-${m}`}>{m === "read-write" ? "Read-write" : "Read-only"}</button>)}
    </div>
    <p class="hint">{s.access_mode === "read-only"
      ? "Model APIs work; every write to any other host is blocked by the proxy (403)."
      : "The agent may push and call write APIs through the proxy."} Takes effect on its next request.</p>
    {error && <p class="field-error">{error}</p>}
  </div>;
}

function Audit({ s }: { s: Session }) {
  const [lines, setLines] = useState<AuditLine[] | null>(null);
  const [error, setError] = useState("");
  const load = useCallback(() => api.audit(s.id, 50).then(l => setLines(l.reverse()))
    .catch((e: unknown) => setError(errorText(e))), [s.id]);
  useEffect(() => { void load(); }, [load]);
  return <section class="card">
    <div class="row between"><h2>Recent requests</h2>
      <button class="button small-button" onClick={() => void load()}>Refresh</button></div>
    {error ? <p class="field-error">{error}</p> : !lines ? <p class="muted">Loading…</p>
      : lines.length === 0 ? <p class="muted">No request has gone through the proxy yet.</p>
      : <div class="table-wrap"><table class="audit" data-testid="audit">
        <thead><tr><th>Time</th><th>Request</th><th>Status</th><th>Decision</th></tr></thead>
        <tbody>{lines.map(l => <tr class={`dec-${l.decision}`}>
          <td class="muted small">{new Date(l.ts).toLocaleTimeString()}</td>
          <td class="mono small"><b>{l.method}</b> <Revealed text={`${l.host}${l.path}`} /></td>
          <td data-testid="audit-outcome">{outcome(l)}</td>
          <td><span class="pill">{l.decision}</span>{l.credential && <span class="muted small"> {l.credential}</span>}</td>
        </tr>)}</tbody></table></div>}
  </section>;
}

/** What became of a line's request, as every view says it (the API's `outcome`): an
 * exchange still open is open since it opened (its opening's status is not its outcome),
 * unless a proxy killed since opened it (`cut_off`); its end line ends it; an ordinary
 * request is its status. */
function outcome(l: AuditLine): string {
  if (l.phase === "open" && l.cut_off) return "cut off (the proxy restarted)";
  if (l.phase === "open") return `open since ${new Date(l.ts).toLocaleTimeString()}`;
  if (l.phase === "end") return `ended ${l.status} after ${(l.duration_ms / 1000).toFixed(1)} s`;
  return String(l.status);
}

/** What a field holds that it does not draw (a model made the title), and a way out. */
function HiddenNote({ text, set, testid }: { text: string; set: (t: string) => void; testid: string }) {
  if (!hasHidden(text)) return null;
  return <p class="hint" data-testid={testid}>It holds characters that are not drawn:{" "}
    {hiddenIn(text).join(", ")}.{" "}
    <button class="button small-button" type="button" onClick={() => set(withoutHidden(text))}>
      Take them out</button> (then Save)</p>;
}

/** The title and description: data a person may edit, or make again from the prompt. */
function TitleEditor({ s }: { s: Session }) {
  const [title, setTitle] = useState(s.title);
  const [description, setDescription] = useState(s.description);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => { setTitle(s.title); setDescription(s.description); }, [s.title, s.description]);
  const run = async (f: () => Promise<Session>) => {
    setBusy(true);
    try { live.upsert(await f()); setError(""); }
    catch (e) { setError(errorText(e)); }
    finally { setBusy(false); }
  };
  const changed = title !== s.title || description !== s.description;
  return <section class="card" data-testid="title-editor"><h2>Title</h2>
    <form onSubmit={e => { e.preventDefault(); void run(() => api.editSession(s.id, { title, description })); }}>
      <div class="field"><label for="edit-title">Title</label>
        <input id="edit-title" value={title} maxLength={120} onInput={e => setTitle(e.currentTarget.value)} />
        <HiddenNote text={title} set={setTitle} testid="title-hidden" /></div>
      <div class="field"><label for="edit-description">Description</label>
        <textarea id="edit-description" rows={2} maxLength={1000} value={description}
          onInput={e => setDescription(e.currentTarget.value)} />
        <HiddenNote text={description} set={setDescription} testid="description-hidden" /></div>
      <div class="row wrap">
        <button class="button primary" type="submit" disabled={busy || !changed || !offered(s, "edit")}
          data-testid="save-title">Save</button>
        {s.initial_prompt && <button class="button" type="button" disabled={busy || !offered(s, "retitle")}
          data-testid="retitle" onClick={() => void run(() => api.retitle(s.id))}>Make again from the prompt</button>}
      </div>
      {error && <p class="field-error" role="alert">{error}</p>}
    </form>
  </section>;
}

export function InfoTab({ s }: { s: Session }) {
  const [ask, setAsk] = useState<"delete" | "archive" | null>(null);
  const [error, setError] = useState("");
  const act = async (f: () => Promise<unknown>) => {
    try { await f(); setError(""); } catch (e) { setError(errorText(e)); }
  };
  const rows: [string, preact.ComponentChildren][] = [
    ["Container", <span class="mono">{s.container_name}{s.backend_id ? ` (${s.backend_id.slice(0, 12)})` : ""}</span>],
    ["Backend", s.backend], ["Image", <span class="mono">{s.image}</span>],
    ["Agent", `${s.custom_agent ?? s.agent}${s.plan_mode ? " · plan first" : ""}${s.print_mode ? " · answers once" : ""}${s.model ? ` · ${s.model}` : ""}${s.skip_permissions ? " · bypassing permission prompts" : ""}`],
    ["Branch", <span class="mono">{s.branch} <span class="muted">from {s.base_ref}</span></span>],
    ["Repository", <span class="mono">{s.repo_path}{s.subdirectory ? ` → ${s.subdirectory}` : ""}</span>],
    ["Worktree", <span class="mono">{s.worktree_path}</span>],
    ...s.extra_repos.map((e): [string, preact.ComponentChildren] => [`Repository ${e.mount}`,
      <span class="mono" data-testid={`info-repo-${e.mount}`}>{e.repo_path} <span class="muted">at
        /workspace/{e.mount}, {s.branch} from {e.base_ref}</span></span>]),
    ["Resources", `${s.cpu ? `${s.cpu} CPU` : "no CPU limit"} · ${s.memory ? s.memory : "no memory limit"}`],
    ["Created", when(s.created_at)], ["Updated", when(s.updated_at)],
  ];
  if (s.archived_at) rows.push(["Archived", when(s.archived_at)]);
  if (s.status_reason) rows.push(["Reason", <Revealed text={s.status_reason} />]);
  if (s.model_error) rows.push(["Model", s.model_error]);
  return <div class="info">
    <section class="card"><h2>Session</h2>
      <dl class="facts">{rows.map(([k, v]) => <><dt>{k}</dt><dd>{v}</dd></>)}</dl></section>
    <TitleEditor s={s} />
    <PullPanel s={s} />
    <HealthPanel s={s} />
    <section class="card"><h2>Access</h2><AccessSwitch s={s} /></section>
    <Controls s={s} />
    <Audit s={s} />
    <section class="card"><h2>Lifecycle</h2>
      <div class="row wrap" data-testid="lifecycle">
        {offered(s, "stop") && <button class="button" data-testid="stop" onClick={() => void act(() => api.stop(s.id))}>Stop</button>}
        {offered(s, "start") && <button class="button" data-testid="start" onClick={() => void act(() => api.start(s.id))}>Start</button>}
        {offered(s, "retry") && <button class="button" data-testid="retry" onClick={() => void act(() => api.retry(s.id))}>Retry</button>}
        {offered(s, "unarchive") && <button class="button" data-testid="unarchive" onClick={() => void act(() => api.unarchive(s.id))}>Unarchive</button>}
        {offered(s, "archive") && <button class="button" data-testid="archive" onClick={() => setAsk("archive")}>Archive</button>}
        {offered(s, "delete") && <button class="button danger" data-testid="delete" onClick={() => setAsk("delete")}>Delete</button>}
      </div>
      <p class="hint">Archive stops the container and keeps the worktree and branch. Delete removes the
        container and worktree; the branch <code>{s.branch}</code> stays in the repository.</p>
      {error && <p class="field-error">{error}</p>}
    </section>
    {ask === "archive" && <Confirm title={`Archive ${s.name}?`} action="Archive" onClose={() => setAsk(null)}
      body={<p>Its container stops; the worktree and branch stay. Unarchive to run it again.</p>}
      onConfirm={() => void act(() => api.archive(s.id))} />}
    {ask === "delete" && <Confirm title={`Delete ${s.name}?`} action="Delete" danger onClose={() => setAsk(null)}
      body={<p>The container and the worktree are removed. Uncommitted changes in the worktree are lost;
        commits stay on <code>{s.branch}</code>.</p>}
      onConfirm={() => void act(async () => {
        live.upsert((await api.deleteSession(s.id)).session);  // its tabs stop reading it at once
        navigate("/");
      })} />}
  </div>;
}
