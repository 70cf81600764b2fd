// The daily workflow on a session: its branch on GitHub (push, pull request, CI, review,
// merge), its health with the recovery actions (each says what it loses before it is done),
// and the pull-request badge the list and the header show. What a badge says and its colour
// are the API's (`pull.label`, `pull.summary`, `pull.tone`), the same words every UI shows.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError, errorText, offered, type MergeMethod, type SessionHealth, type Pull, type Session } from "../api";
import { when } from "../format";
import { live } from "../live";
import { Revealed } from "./Revealed";

export function PullBadge({ pull }: { pull: Pull | null | undefined }) {
  if (!pull || !pull.label) return null;
  return <span class={`badge tone-${pull.tone}`} data-testid="pull-badge" data-tone={pull.tone}
    title={pull.summary}><i class="dot" aria-hidden="true" />{pull.label}</span>;
}

function useAct(): [string, boolean, (f: () => Promise<unknown>) => Promise<void>] {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const act = useCallback(async (f: () => Promise<unknown>) => {
    setBusy(true);
    try { await f(); setError(""); }
    catch (e) { setError(errorText(e)); }
    finally { setBusy(false); }
  }, []);
  return [error, busy, act];
}

export function PullPanel({ s }: { s: Session }) {
  const [error, busy, act] = useAct();
  const [method, setMethod] = useState<MergeMethod>("squash");
  const [del, setDel] = useState(true);
  const [asking, setAsking] = useState(false);
  const p = s.pull;
  const canPush = offered(s, "push");
  const canMerge = offered(s, "merge");
  // A push sends the commit this panel shows (the diff's committed part, read when the
  // person asks what a push sends, and again after a refusal), pinned: the agent's commit
  // made since is refused, not sent. Read on asking, not on showing: a read of the changes
  // holds the agent's container still for its length.
  const [shown, setShown] = useState<{ commit: string; subject: string; files: number } | null>(null);
  useEffect(() => setShown(null), [s.id]);
  const look = useCallback(async () => {
    const c = (await api.diff(s.id)).committed;
    const seen = c.commit ? { commit: c.commit, subject: c.subject, files: c.files.length } : null;
    setShown(seen);
    return seen;
  }, [s.id]);
  const push = (pr: boolean) => act(async () => {
    if (!shown) return;
    try {
      live.upsert(await api.push(s.id, pr, shown.commit));
      setShown(null);  // sent: the next push is looked at again
    }
    catch (e) {
      if (!(e instanceof ApiError && e.status === 409 && e.field === "commit")) throw e;
      const now = await look();
      throw new Error(`Nothing was pushed: the agent committed since (${now?.commit.slice(0, 7) ?? "?"}); `
        + `you saw ${shown.commit.slice(0, 7)}. Look at the changes again, then push what the button names.`,
        { cause: e });
    }
  });
  // The buttons speak only the appliance's words: the subject is the agent's text (it can
  // close a quote and say a count of its own), shown beside them as the agent's, through
  // Revealed, every hidden character named.
  const what = shown ? `Push ${shown.commit.slice(0, 7)} (${shown.files} file${shown.files === 1 ? "" : "s"})` : "Push";
  return <section class="card" data-testid="pull-panel">
    <div class="row between"><h2>Branch on GitHub</h2><PullBadge pull={p} /></div>
    {p ? <>
      <p data-testid="pull-summary">{p.url
        ? <a href={p.url} target="_blank" rel="noopener noreferrer">{p.summary}</a> : p.summary}</p>
      {p.title && <p class="muted"><Revealed text={p.title} /></p>}
      {p.runs.length > 0 && <ul class="checks" data-testid="pull-checks">{p.runs.map(r =>
        <li class={`check-${r.conclusion ?? r.status}`}><span class="mono"><Revealed text={r.name} /></span>{" "}
          <span class="pill">{r.conclusion ?? r.status.replace("_", " ")}</span></li>)}</ul>}
      <p class="hint">{p.pushed_sha ? <>Pushed <span class="mono">{p.pushed_sha.slice(0, 12)}</span>
        {p.pushed_at ? ` ${when(p.pushed_at)}` : ""}. </> : null}
        {p.checked_at ? `Read from GitHub ${when(p.checked_at)}.` : ""}</p>
    </> : <p class="muted">Not pushed yet; no pull request seen.</p>}
    {canPush && shown?.subject && <p class="hint" data-testid="push-subject">Its subject, as the agent
      wrote it: <q class="mono"><Revealed text={shown.subject} /></q></p>}
    <div class="row wrap">
      {canPush && !shown && <button class="button" disabled={busy} data-testid="push-look"
        title="Reads the changes and names the commit a push sends"
        onClick={() => void act(look)}>Review what a push sends</button>}
      {canPush && shown && <button class="button" disabled={busy} data-testid="push"
        title="The branch's commit the Changes view shows as committed" onClick={() => void push(false)}>{what}</button>}
      {canPush && shown && !(p && (p.state === "open" || p.state === "draft")) &&
        <button class="button" disabled={busy} data-testid="push-pr"
          onClick={() => void push(true)}>{what} and open a pull request</button>}
      <button class="button" disabled={busy} data-testid="pull-refresh"
        onClick={() => void act(async () => live.upsert(await api.refreshPull(s.id)))}>Refresh</button>
      {canMerge && <>
        <select value={method} aria-label="Merge method" data-testid="merge-method"
          onChange={e => setMethod(e.currentTarget.value as MergeMethod)}>
          <option value="squash">Squash</option><option value="merge">Merge commit</option>
          <option value="rebase">Rebase</option></select>
        <label class="row"><input type="checkbox" checked={del} data-testid="merge-delete"
          onChange={e => setDel(e.currentTarget.checked)} />Delete the remote branch</label>
        {asking
          ? <button class="button primary" disabled={busy} data-testid="merge-confirm"
            onClick={() => void act(async () => {
              setAsking(false);
              live.upsert(await api.merge(s.id, method, del, p?.head_sha ?? null));
            })}>Merge #{p?.number} at {p?.head_sha?.slice(0, 7)}</button>
          : <button class="button primary" disabled={busy} data-testid="merge"
            onClick={() => setAsking(true)}>Merge…</button>}
      </>}
    </div>
    {error && <p class="field-error" data-testid="pull-error">{error}</p>}
  </section>;
}

export function HealthPanel({ s }: { s: Session }) {
  const [report, setReport] = useState<SessionHealth | null>(null);
  const [error, busy, act] = useAct();
  const [asking, setAsking] = useState<string | null>(null);
  const load = useCallback(() => act(async () => setReport(await api.sessionHealth(s.id))), [act, s.id]);
  // The checkup runs a probe in the container: only when the person asks for it, and again
  // (once asked) when the session's container changes.
  const asked = report !== null;
  useEffect(() => { if (asked) void load(); }, [load, asked, s.phase, s.backend_id]);
  const chosen = report?.actions.find(a => a.verb === asking);
  return <section class="card" data-testid="health-panel" data-ok={report ? String(report.ok) : ""}>
    <div class="row between"><h2>Health</h2>
      <button class="button small-button" disabled={busy} data-testid="health-check"
        onClick={() => void load()}>{report ? "Check again" : "Check"}</button></div>
    {!report ? <p class="muted">{busy ? "Checking…" : "Container, workspace, agent, proxy, hooks and the last model request, checked from inside the container."}</p> : <>
      <dl class="facts">{report.checks.map(c => <><dt>{c.name}</dt>
        <dd class={`verdict-${c.verdict}`} data-testid={`check-${c.name}`} data-verdict={c.verdict}>
          <span class="pill">{c.verdict}</span> <Revealed text={c.detail} /></dd></>)}</dl>
      <div class="row wrap" data-testid="recovery">{report.actions.filter(a => a.offered).map(a =>
        <button class={`button${a.verb === report.suggested ? " primary" : ""}`} disabled={busy}
          data-testid={`recover-${a.verb}`} onClick={() => setAsking(a.verb)}>{a.verb.replace("-", " ")}</button>)}
      </div>
    </>}
    {chosen && <div class="banner warn" data-testid="recover-warning">
      <p>{chosen.warning}</p>
      <div class="row end">
        <button class="button" onClick={() => setAsking(null)}>Cancel</button>
        <button class="button danger" data-testid="recover-confirm" onClick={() => void act(async () => {
          setAsking(null);
          live.upsert(await api.recover(s.id, chosen.verb));
          setReport(await api.sessionHealth(s.id));
        })}>{chosen.verb.replace("-", " ")}</button>
      </div></div>}
    {error && <p class="field-error">{error}</p>}
  </section>;
}
