// The create form: repo picker validated as you type, agent settings, prompt with images,
// the API's errors beside their field, then the creation's progress steps live.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, type AccessMode, type Agent, type BackendHealth, type BackendKind,
  type CreateSession, type RecentRepo, type RepoCheck, type Session } from "../api";
import { ago } from "../format";
import { live, useLive } from "../live";
import { navigate } from "../router";
import { Attachments } from "./Attachments";
import { ExtraRepos, isRepoField, reposBody, type ExtraRepo } from "./ExtraRepos";
import { Revealed } from "./Revealed";

type Errors = Partial<Record<string, string>>;

const NAME_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** The steps a create shows, each labelled as its id, capitalised. */
const STEPS: Record<BackendKind, string[]> = {
  docker: ["accepted", "worktree", "container", "start", "running"],
  kubernetes: ["accepted", "volume", "pod", "clone", "running"],
};
const BACKENDS: Record<BackendKind, string> = { docker: "Docker", kubernetes: "Kubernetes" };
const MODELS: Record<Agent, string> = { claude: "e.g. opus, sonnet", codex: "e.g. gpt-5-codex",
  gemini: "e.g. gemini-2.5-pro", custom: "passed as {model}" };

function Field({ label, id, error, hint, children }: { label: string; id: string;
  error?: string | undefined; hint?: string | preact.ComponentChildren;
  children: preact.ComponentChildren }) {
  return <div class={`field${error ? " invalid" : ""}`}>
    <label for={id}>{label}</label>
    {children}
    {error ? <p class="field-error" id={`${id}-error`} role="alert" data-testid={`error-${id}`}>{error}</p>
      : hint ? <p class="hint">{hint}</p> : null}
  </div>;
}

function RepoField({ value, onChange, error, check }: { value: string; onChange: (v: string) => void;
  error?: string | undefined; check: RepoCheck | null }) {
  const [recent, setRecent] = useState<RecentRepo[]>([]);
  useEffect(() => { api.recentRepos().then(setRecent).catch(() => setRecent([])); }, []);
  const full = (r: RecentRepo) => r.subdirectory ? `${r.repo_path}/${r.subdirectory}` : r.repo_path;
  const status = error ? undefined : check === null ? undefined : check.ok
    ? <span class="ok" data-testid="repo-ok">✓ git repository on <b>{check.branch}</b>
      {check.subdirectory ? <> · working in <code>{check.subdirectory}</code></> : null}</span>
    : undefined;
  const problem = error ?? (check && !check.ok ? check.error : undefined);
  return <Field label="Repository" id="repo_path" error={problem}
    hint={status ?? "An absolute path to a git checkout on the appliance's machine."}>
    <input id="repo_path" name="repo_path" list="recent-repos" required autocomplete="off"
      spellcheck={false} placeholder="/home/you/src/project" value={value}
      aria-invalid={problem ? "true" : undefined} onInput={e => onChange(e.currentTarget.value)} />
    <datalist id="recent-repos">{recent.map(r => <option value={full(r)} />)}</datalist>
    {recent.length > 0 && <div class="chips" aria-label="Recent repositories">
      {recent.slice(0, 5).map(r => <button type="button" class="chip" title={`used ${ago(r.last_used)}`}
        onClick={() => onChange(full(r))}>{full(r).split("/").slice(-2).join("/")}</button>)}
    </div>}
  </Field>;
}

/** Where the session runs: shown only when the appliance has more than one backend (the
 * signed-in health report lists them). A backend that does not answer says so beside it. */
function BackendField({ value, onChange, backends, error }: { value: BackendKind;
  onChange: (v: BackendKind) => void; backends: Partial<Record<BackendKind, BackendHealth>>;
  error?: string | undefined }) {
  const kinds = (Object.keys(BACKENDS) as BackendKind[]).filter(k => k in backends);
  const state = backends[value];
  const down = state && !state.reachable
    ? `${BACKENDS[value]} is not reachable${state.error ? `: ${state.error}` : ""}` : undefined;
  return <Field label="Backend" id="backend" error={error ?? down}
    hint={value === "kubernetes" ? "A pod in the cluster; it clones the repository's remote."
      : "A container on this machine's engine."}>
    <select id="backend" value={value} aria-invalid={error ?? down ? "true" : undefined}
      onChange={e => onChange(e.currentTarget.value as BackendKind)}>
      {kinds.map(k => <option value={k}>{BACKENDS[k]}</option>)}
    </select>
  </Field>;
}

/** The creation's steps. ``autoOpen``: go to the session once it runs (false while its
 * images upload, and after one was refused, so the person reads why). */
function Progress({ session, onRetry, autoOpen }: { session: Session; onRetry: () => void;
  autoOpen: boolean }) {
  const store = useLive();
  const s = store.sessions.get(session.id) ?? session;
  const steps = STEPS[s.backend];
  const seen = new Set((store.progress.get(s.id) ?? []).map(p => p.step));
  seen.add("accepted");
  if (s.phase === "running" || s.phase === "stopped") steps.forEach(x => seen.add(x));
  const last = [...(store.progress.get(s.id) ?? [])].pop();
  useEffect(() => {
    if (s.phase === "running" && autoOpen) {
      const t = setTimeout(() => navigate(`/s/${encodeURIComponent(s.name)}`, true), 700);
      return () => clearTimeout(t);
    }
    return undefined;
  }, [s.phase, s.name, autoOpen]);
  const failed = s.phase === "failed";
  // A later step implies the earlier ones (a pod the scheduler placed at once skips "pod").
  const reached = Math.max(...steps.map((x, i) => seen.has(x) ? i : -1));
  steps.forEach((x, i) => { if (i < reached) seen.add(x); });
  const current = steps.findIndex(x => !seen.has(x));
  return <section class="progress-card card" data-testid="create-progress" aria-live="polite">
    <h2>{failed ? "Creation failed" : s.phase === "running" ? "Running" : "Creating"} <code>{s.name}</code></h2>
    <ol class="stepper">{steps.map((x, i) => <li class={seen.has(x) ? "done"
      : i === current && !failed ? "active" : failed && i === current ? "failed" : ""}
      data-step={x}><span class="bullet" />{x.charAt(0).toUpperCase() + x.slice(1)}</li>)}</ol>
    {!failed && last && s.phase === "creating" && <p class="muted">{last.message}…</p>}
    {failed && <><p class="reason">{s.status_reason ? <Revealed text={s.status_reason} /> : "The reconciler gave up."}</p>
      <div class="row"><button class="button" onClick={onRetry}>Back to the form</button>
        <button class="button" onClick={() => void api.retry(s.id)}>Retry</button></div></>}
    {s.phase === "running" && <a class="button primary" href={`/s/${encodeURIComponent(s.name)}`}
      data-testid="open-session">Open session</a>}
  </section>;
}

export function CreateForm() {
  const [repo, setRepo] = useState("");
  const [check, setCheck] = useState<RepoCheck | null>(null);
  const [name, setName] = useState("");
  const [agent, setAgent] = useState<Agent>("claude");
  // What to set when the agent's model credential is missing (the API's credentials doctor).
  const [missing, setMissing] = useState<Partial<Record<Agent, string>>>({});
  useEffect(() => {
    api.credentials().then(r => setMissing(Object.fromEntries(
      r.agents.filter(a => !a.ready).map(a => [a.agent, a.hint ?? "no model credential"]))))
      .catch(() => setMissing({}));
  }, []);
  const [model, setModel] = useState("");
  const [image, setImage] = useState("");
  const [cpu, setCpu] = useState("");
  const [memory, setMemory] = useState("");
  const [access, setAccess] = useState<AccessMode>("read-write");
  const [backend, setBackend] = useState<BackendKind>("docker");
  const [backends, setBackends] = useState<Partial<Record<BackendKind, BackendHealth>>>({});
  const [bypass, setBypass] = useState(false);
  const [prompt, setPrompt] = useState("");
  const [customAgent, setCustomAgent] = useState("");
  /** "" : the appliance's default ([agents] plan_mode in config.toml). */
  const [plan, setPlan] = useState<"" | "plan" | "act">("");
  const [printMode, setPrintMode] = useState(false);
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [extras, setExtras] = useState<ExtraRepo[]>([]);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<Session | null>(null);
  const [notes, setNotes] = useState<string[]>([]);
  /** Attachments: "uploading", then "done", or "refused" when one did not go up. */
  const [uploads, setUploads] = useState<"uploading" | "done" | "refused">("done");
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => { document.getElementById("repo_path")?.focus(); }, []);
  useEffect(() => {  // which backends this appliance has (the field shows when there is a choice)
    api.backends().then(setBackends).catch(() => setBackends({}));
  }, []);
  const choosing = Object.keys(backends).length > 1;
  useEffect(() => {  // validate the repo path as it is typed (debounced, latest wins)
    setErrors(e => ({ ...e, repo_path: undefined }));
    if (!repo.trim()) { setCheck(null); return undefined; }
    const ctl = new AbortController();
    const t = setTimeout(() => {
      api.checkRepo(repo.trim(), ctl.signal).then(setCheck).catch(() => undefined);
    }, 250);
    return () => { clearTimeout(t); ctl.abort(); };
  }, [repo]);

  const nameError = name && !NAME_RE.test(name)
    ? "Lowercase letters, digits and inner hyphens only (like fix-login)." : undefined;

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    const body: CreateSession = { repo_path: repo.trim(), agent, access_mode: access,
      skip_permissions: bypass };
    if (name) body.name = name;
    if (choosing) body.backend = backend;
    if (agent === "custom") body.custom_agent = customAgent.trim();
    if (plan) body.plan_mode = plan === "plan";
    if (printMode) body.print_mode = true;
    if (title.trim()) body.title = title.trim();
    if (description.trim()) body.description = description.trim();
    if (model.trim()) body.model = model.trim();
    if (image.trim()) body.image = image.trim();
    if (cpu.trim()) body.cpu = cpu.trim();
    if (memory.trim()) body.memory = memory.trim();
    if (extras.length) body.repos = reposBody(extras);
    const text = prompt.trim();
    if (text || files.length) {
      body.prompt = files.length
        // Uploads need the session's id, so they go up after the create; the prompt names the
        // folder rather than a count that a refused file would make wrong.
        ? `${text}\n\n(The images for this request are in /workspace-uploads/.)`
        : text;
    }
    setBusy(true);
    setErrors({});
    try {
      const s = await api.createSession(body);
      live.upsert(s);
      setUploads(files.length ? "uploading" : "done");
      setCreated(s);
      const out: string[] = [];
      let refused = false;
      for (const f of files) {
        try { out.push(`${f.name} → ${(await api.upload(s.id, f)).container_path}`); }
        catch (err) {
          refused = true;
          out.push(`${f.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      setNotes(out);
      setUploads(refused ? "refused" : "done");
    } catch (err) {
      if (err instanceof ApiError) {
        const known = ["repo_path", "name", "agent", "model", "image", "cpu", "memory",
          "access_mode", "prompt", "skip_permissions", "custom_agent", "plan_mode", "print_mode",
          "title", "description", ...(choosing ? ["backend"] : [])];
        const field = err.field && (known.includes(err.field) || isRepoField(err.field))
          ? err.field : "form";
        setErrors({ [field]: err.message });
        if (field !== "form") document.getElementById(field)?.focus();
      } else setErrors({ form: String(err) });
    } finally {
      setBusy(false);
    }
  }

  if (created) {
    return <div class="narrow">
      <Progress session={created} onRetry={() => setCreated(null)} autoOpen={uploads === "done"} />
      {uploads === "uploading" && <p class="muted" aria-live="polite">Uploading the images…</p>}
      {notes.length > 0 && <ul class="notes" data-testid="upload-notes">{notes.map(n => <li>{n}</li>)}</ul>}
    </div>;
  }

  return <form ref={form} class="create narrow card" onSubmit={e => void submit(e)} noValidate data-testid="create-form"
    onKeyDown={e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void submit(e); }}>
    <h1>New session</h1>
    {errors.form && <p class="form-error" role="alert" data-testid="error-form">{errors.form}</p>}
    <RepoField value={repo} onChange={setRepo} error={errors.repo_path} check={check} />
    <ExtraRepos rows={extras} onChange={setExtras} errors={errors} />
    <Field label="What should the agent do?" id="prompt" error={errors.prompt}
      hint="Markdown welcome. Paste or drop screenshots to attach them.">
      <textarea id="prompt" rows={6} value={prompt} placeholder="Fix the flaky login test and explain the cause."
        onInput={e => setPrompt(e.currentTarget.value)}
        onPaste={e => { const imgs = [...(e.clipboardData?.files ?? [])].filter(f => f.type.startsWith("image/"));
          if (imgs.length) { e.preventDefault(); setFiles(f => [...f, ...imgs]); } }} />
    </Field>
    <Attachments files={files} onChange={setFiles} />
    <div class="grid2">
      <Field label="Name" id="name" error={errors.name ?? nameError} hint="Optional; becomes the branch clauderon/<name>.">
        <input id="name" value={name} maxLength={40} spellcheck={false} autocomplete="off" placeholder="made from the prompt"
          onInput={e => setName(e.currentTarget.value)} />
      </Field>
      <Field label="Agent" id="agent" error={errors.agent} hint={missing[agent]
        ? <span class="warn-text" data-testid="agent-warning">Warning: {missing[agent]}. The
          session can be created, but its agent cannot reach its model until then.</span>
        : undefined}>
        <select id="agent" value={agent} onChange={e => setAgent(e.currentTarget.value as Agent)}>
          <option value="claude">Claude Code</option><option value="codex">Codex</option>
          <option value="gemini">Gemini CLI</option><option value="custom">Custom (config.toml)</option>
        </select>
      </Field>
    </div>
    {choosing && <BackendField value={backend} backends={backends} error={errors.backend}
      onChange={v => { setBackend(v); setErrors(e => ({ ...e, backend: undefined })); }} />}
    {agent === "custom" && <Field label="Custom agent" id="custom_agent" error={errors.custom_agent}
      hint="The name of an [agents.custom.<name>] table in the appliance's config.toml.">
      <input id="custom_agent" value={customAgent} spellcheck={false} autocomplete="off"
        onInput={e => setCustomAgent(e.currentTarget.value)} />
    </Field>}
    <div class="grid2">
      <Field label="Plan first" id="plan_mode" error={errors.plan_mode}
        hint="Plan mode: the agent writes a plan and waits before it edits.">
        <select id="plan_mode" value={plan} onChange={e => setPlan(e.currentTarget.value as "" | "plan" | "act")}>
          <option value="">The appliance's default</option><option value="plan">Plan first</option>
          <option value="act">Act directly</option>
        </select>
      </Field>
      <label class="check">
        <input id="print_mode" type="checkbox" checked={printMode} onChange={e => setPrintMode(e.currentTarget.checked)} />
        <span><b>Answer once</b><br /><span class="hint">Print mode: the agent answers the prompt once; the session then ends as completed.</span></span>
      </label>
    </div>
    {errors.print_mode && <p class="field-error" role="alert" data-testid="error-print_mode">{errors.print_mode}</p>}
    <div class="grid2">
      <Field label="Title" id="title" error={errors.title} hint="Optional; made from the prompt.">
        <input id="title" value={title} maxLength={120} autocomplete="off" placeholder="made from the prompt"
          onInput={e => setTitle(e.currentTarget.value)} />
      </Field>
      <Field label="Description" id="description" error={errors.description} hint="Optional; made from the prompt.">
        <input id="description" value={description} maxLength={1000} autocomplete="off"
          onInput={e => setDescription(e.currentTarget.value)} />
      </Field>
    </div>
    <fieldset class="field">
      <legend>Access</legend>
      <div class="segmented" role="radiogroup">
        {(["read-write", "read-only"] as const).map(m => <label class={access === m ? "on" : ""}>
          <input type="radio" name="access_mode" value={m} checked={access === m}
            onChange={() => setAccess(m)} />{m === "read-write" ? "Read-write" : "Read-only"}</label>)}
      </div>
      <p class="hint">{access === "read-only" ? "Model APIs work; writes to other hosts (pushes, PR comments) are blocked."
        : "The agent may push and call write APIs through the proxy."}</p>
      {errors.access_mode && <p class="field-error" role="alert">{errors.access_mode}</p>}
    </fieldset>
    <label class="check">
      <input id="skip_permissions" type="checkbox" checked={bypass} onChange={e => setBypass(e.currentTarget.checked)} />
      <span><b>Bypass permission prompts</b><br /><span class="hint">The agent runs tools without asking. It is contained, but it can still change its branch freely.</span></span>
    </label>
    <details class="advanced">
      <summary>Model, image and resources</summary>
      <div class="grid2">
        <Field label="Model" id="model" error={errors.model} hint="Empty: the agent's default.">
          <input id="model" value={model} placeholder={MODELS[agent]} onInput={e => setModel(e.currentTarget.value)} />
        </Field>
        <Field label="Image" id="image" error={errors.image} hint="Empty: the appliance's default image.">
          <input id="image" value={image} spellcheck={false} placeholder="default" onInput={e => setImage(e.currentTarget.value)} />
        </Field>
        <Field label="CPUs" id="cpu" error={errors.cpu} hint="e.g. 2 or 0.5; empty: no limit.">
          <input id="cpu" inputMode="decimal" value={cpu} placeholder="no limit" onInput={e => setCpu(e.currentTarget.value)} />
        </Field>
        <Field label="Memory" id="memory" error={errors.memory} hint="e.g. 4g or 512m; empty: no limit.">
          <input id="memory" value={memory} placeholder="no limit" onInput={e => setMemory(e.currentTarget.value)} />
        </Field>
      </div>
    </details>
    <div class="row end">
      <a class="button" href="/">Cancel</a>
      <button class="button primary" type="submit" disabled={busy || !repo.trim()} data-testid="create-submit">
        {busy ? "Creating…" : "Create session"}</button>
    </div>
  </form>;
}
