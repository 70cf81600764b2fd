// Files: the worktree as a tree (folders open on demand), a viewer with syntax highlighting,
// and the diff against where the branch forked from its base (the branch's commit a push sends,
// then the work tree's uncommitted changes). A multi-repo session picks the
// repository its tree shows, and its diff has a section per repository, each under its name.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, errorText, PRIMARY_REPO, type Diff, type DiffSection, type Entry, type FileBody,
  type WorkTreeMark, type Session } from "../api";
import { bytes, escapeHtml, revealHtml } from "../format";
import { Revealed } from "./Revealed";

type Hl = typeof import("../highlight");

function Tree({ s, repo, path, open, onOpen, depth }: { s: Session; repo: string; path: string;
  open: string | null; onOpen: (p: string) => void; depth: number }) {
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [error, setError] = useState("");
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  useEffect(() => {
    api.files(s.id, path, repo).then(l => setEntries(l.entries))
      .catch((e: unknown) => setError(errorText(e)));
  }, [s.id, path, repo]);
  if (error) return <p class="field-error">{error}</p>;
  if (!entries) return <p class="muted small">Loading…</p>;
  if (!entries.length && depth === 0) return <p class="muted">The worktree is empty.</p>;
  const toggle = (p: string) => setExpanded(old => {
    const next = new Set(old);
    if (next.has(p)) next.delete(p); else next.add(p);
    return next;
  });
  return <ul class="tree" role={depth ? "group" : "tree"}>{entries.map(e => <li role="treeitem"
    aria-expanded={e.type === "dir" ? expanded.has(e.path) : undefined}>
    <button class={`tree-row${open === e.path ? " on" : ""}`} style={{ paddingLeft: `${0.5 + depth * 0.9}rem` }}
      data-path={e.path} onClick={() => e.type === "dir" ? toggle(e.path) : onOpen(e.path)}>
      <span class="tree-icon" aria-hidden="true">{e.type === "dir" ? (expanded.has(e.path) ? "▾" : "▸") : e.type === "symlink" ? "↪" : "·"}</span>
      <span class="tree-name"><Revealed text={e.name} path /></span>
      {e.size !== null && <span class="muted small">{bytes(e.size)}</span>}
    </button>
    {e.type === "dir" && expanded.has(e.path) &&
      <Tree s={s} repo={repo} path={e.path} open={open} onOpen={onOpen} depth={depth + 1} />}
  </li>)}</ul>;
}

function Viewer({ s, repo, path, hl }: { s: Session; repo: string; path: string;
  hl: Hl | null }) {
  const [file, setFile] = useState<FileBody | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setFile(null); setError("");
    api.file(s.id, path, repo).then(setFile).catch((e: unknown) => setError(errorText(e)));
  }, [s.id, path, repo]);
  if (error) return <p class="field-error pad">{error}</p>;
  if (!file) return <p class="muted pad">Loading…</p>;
  return <article class="viewer" data-testid="file-viewer">
    <header class="viewer-head"><span class="mono"><Revealed text={file.path} path /></span><span class="muted small">{bytes(file.size)}</span></header>
    {file.binary ? <p class="muted pad">A binary file; not shown.</p>
      : <pre class="code numbered"><code class="hljs" dangerouslySetInnerHTML={{
        __html: hl ? hl.highlight(file.text, hl.languageFor(file.path)) : revealHtml(escapeHtml(file.text)) }} /></pre>}
    {file.truncated && <p class="muted pad small">Only the first 1 MB is shown.</p>}
  </article>;
}

type Part = { files: { status: string; path: string; work_tree?: WorkTreeMark }[]; diff: string;
  truncated: boolean };

const MARKS: Record<NonNullable<WorkTreeMark>, string> = {
  undone: "committed; the work tree undoes it",
  differs: "committed; the work tree holds it otherwise",
};

function PartBody({ p, empty }: { p: Part; empty: string }) {
  if (p.files.length === 0) return <p class="muted pad">{empty}</p>;
  return <>
    <ul class="changed">{p.files.map(f => <li><span class={`st st-${f.status[0]}`}>{f.status === "?" ? "new" : f.status}</span>
      <span class="mono"><Revealed text={f.path} path /></span>
      {f.work_tree && <strong class="undone" data-testid="diff-undone">{MARKS[f.work_tree]}</strong>}</li>)}</ul>
    <pre class="code diff-body">{p.diff.split("\n").map(line => <span class={
      line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") ? "d-file"
      : line.startsWith("+") ? "d-add" : line.startsWith("-") ? "d-del" : line.startsWith("@@") ? "d-hunk" : ""}><Revealed text={line} />{"\n"}</span>)}</pre>
    {p.truncated && <p class="muted pad small">The diff is long; only its start is shown.</p>}
  </>;
}

// What a push (a pull request, a merge) sends is the branch's commit, not the work tree: it is
// shown first, each file the work tree holds otherwise marked, and the uncommitted work apart.
function DiffBody({ d }: { d: DiffSection }) {
  if (d.error) return <p class="field-error pad">{d.error}</p>;
  const c = d.committed;
  // The workspace's HEAD cannot be read: the work tree was read against the branch's commit.
  const note = d.note && <p class="field-error pad small" data-testid="diff-note">{d.note}</p>;
  if (c.files.length === 0 && !d.uncommitted?.files.length) return <>{note}<p class="muted pad">No changes yet.</p></>;
  return <>
    {note}
    <section data-testid="diff-committed">
      <h4 class="pad small">Committed{c.commit && <span class="muted mono"> @ {c.commit.slice(0, 8)}</span>}
        <span class="muted"> — what a push sends</span></h4>
      <PartBody p={c} empty="Nothing committed yet." />
    </section>
    {d.uncommitted && <section data-testid="diff-uncommitted">
      <h4 class="pad small">Not committed <span class="muted">— the work tree; no push sends it</span></h4>
      <PartBody p={d.uncommitted} empty="Nothing besides the commit." />
    </section>}
  </>;
}

function Against({ d }: { d: DiffSection }) {
  return <span>Against <span class="mono">{d.base_ref}</span>{d.merge_base && <span class="muted mono"> @ {d.merge_base.slice(0, 8)}</span>}</span>;
}

function DiffView({ s }: { s: Session }) {
  const [diff, setDiff] = useState<Diff | null>(null);
  const [error, setError] = useState("");
  const load = useCallback(() => api.diff(s.id).then(d => { setDiff(d); setError(""); })
    .catch((e: unknown) => setError(errorText(e))), [s.id]);
  // Read again as the phase moves on: a session being made is not read until it runs.
  useEffect(() => { void load(); }, [load, s.phase]);
  if (error) return <p class="field-error pad">{error}</p>;
  if (!diff) return <p class="muted pad">Loading…</p>;
  const sections = diff.repos;
  const refresh = <button class="button small-button" onClick={() => void load()}>Refresh</button>;
  const only = sections.length === 1 ? sections[0] : undefined;
  if (only) {
    return <article class="diff" data-testid="diff">
      <header class="viewer-head"><Against d={only} />{refresh}</header>
      <DiffBody d={only} />
    </article>;
  }
  return <article class="diff" data-testid="diff">
    <header class="viewer-head"><span>{sections.length} repositories</span>{refresh}</header>
    {sections.map(d => <section class="diff-repo" data-testid={`diff-repo-${d.repo}`}>
      <header class="viewer-head">
        <span><strong data-testid="diff-repo-name">{d.name}</strong>{" "}
          <span class="muted mono small">{d.path}{d.primary ? " (primary)" : ""}</span></span>
        <Against d={d} />
      </header>
      <DiffBody d={d} />
    </section>)}
  </article>;
}

function RepoPicker({ s, repo, onPick }: { s: Session; repo: string; onPick: (r: string) => void }) {
  const primary = s.repo_path.split("/").filter(Boolean).pop() ?? s.repo_path;
  return <label class="repo-picker pad small">Repository{" "}
    <select data-testid="files-repo" value={repo}
      onChange={e => onPick((e.target as HTMLSelectElement).value)}>
      <option value={PRIMARY_REPO}>{primary} (primary, /workspace)</option>
      {s.extra_repos.map(e => <option value={e.mount}>{e.mount} (/workspace/{e.mount})</option>)}
    </select></label>;
}

export function FilesTab({ s }: { s: Session }) {
  const [mode, setMode] = useState<"tree" | "diff">("tree");
  const [open, setOpen] = useState<string | null>(null);
  const [repo, setRepo] = useState<string>(PRIMARY_REPO);
  const [hl, setHl] = useState<Hl | null>(null);
  useEffect(() => { void import("../highlight").then(setHl); }, []);
  if (["creating", "failed", "deleting"].includes(s.phase) && !s.backend_id) {
    return <p class="muted pad">The worktree appears once the session is created.</p>;
  }
  return <section class="files">
    <div class="segmented" role="tablist">
      <button role="tab" aria-selected={mode === "tree"} class={mode === "tree" ? "on" : ""} onClick={() => setMode("tree")} data-testid="files-tree">Files</button>
      <button role="tab" aria-selected={mode === "diff"} class={mode === "diff" ? "on" : ""} onClick={() => setMode("diff")} data-testid="files-diff">Changes</button>
    </div>
    {mode === "tree" && s.extra_repos.length > 0 &&
      <RepoPicker s={s} repo={repo} onPick={r => { setRepo(r); setOpen(null); }} />}
    {mode === "diff" ? <DiffView s={s} /> : <div class={`files-split${open ? " has-file" : ""}`}>
      <nav class="tree-pane" aria-label="Worktree"><Tree key={repo} s={s} repo={repo} path="" open={open} onOpen={setOpen} depth={0} /></nav>
      <div class="view-pane">{open ? <>
        <button class="button small-button phone-only" onClick={() => setOpen(null)}>‹ Files</button>
        <Viewer s={s} repo={repo} path={open} hl={hl} /></> : <p class="muted pad">Pick a file to read it.</p>}</div>
    </div>}
  </section>;
}
