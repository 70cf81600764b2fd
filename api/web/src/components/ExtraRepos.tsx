// Further repositories of a multi-repo session: each a path, a mount name (at
// /workspace/<name>) and a base; added and removed here, checked by the API (its errors
// come back naming repos[i].path, .name or .base and are shown beside that input).
import type { CreateSession } from "../api";

export type ExtraRepo = { path: string; name: string; base: string };
type Errors = Partial<Record<string, string>>;

/** The primary and four more. */
export const MAX_EXTRA = 4;
const FIELD_RE = /^repos(\[\d+\]\.(path|name|base))?$/;

export function isRepoField(field: string): boolean { return FIELD_RE.test(field); }

export function reposBody(rows: ExtraRepo[]): CreateSession["repos"] {
  return rows.map(r => {
    const out: { path: string; name?: string; base?: string } = { path: r.path.trim() };
    if (r.name.trim()) out.name = r.name.trim();
    if (r.base.trim()) out.base = r.base.trim();
    return out;
  });
}

export function ExtraRepos({ rows, onChange, errors }: { rows: ExtraRepo[];
  onChange: (rows: ExtraRepo[]) => void; errors: Errors }) {
  const set = (i: number, key: keyof ExtraRepo, value: string) =>
    onChange(rows.map((r, j) => j === i ? { ...r, [key]: value } : r));
  return <fieldset class="field extra-repos" data-testid="extra-repos">
    <legend>More repositories</legend>
    <p class="hint">Optional: up to {MAX_EXTRA} more, each at <code>/workspace/&lt;name&gt;</code> on
      its own session branch. The files, changes and timeline show every repository.</p>
    {errors.repos && <p class="field-error" role="alert" data-testid="error-repos">{errors.repos}</p>}
    {rows.map((r, i) => {
      const id = (key: string) => `repos[${i}].${key}`;
      return <div class="extra-repo" data-testid={`extra-repo-${i}`}>
        <div class="grid3">
          {(["path", "name", "base"] as const).map(key => {
            const err = errors[id(key)];
            return <div class={`field${err ? " invalid" : ""}`}>
              <label for={id(key)}>{key === "path" ? "Repository" : key === "name"
                ? "Mount name" : "Base"}</label>
              <input id={id(key)} value={r[key]} spellcheck={false} autocomplete="off"
                aria-invalid={err ? "true" : undefined}
                placeholder={key === "path" ? "/home/you/src/lib" : key === "name"
                  ? "its folder's name" : "its current branch"}
                onInput={e => set(i, key, e.currentTarget.value)} />
              {err && <p class="field-error" role="alert" data-testid={`error-${id(key)}`}>{err}</p>}
            </div>;
          })}
        </div>
        <button type="button" class="button" data-testid={`remove-repo-${i}`}
          onClick={() => onChange(rows.filter((_, j) => j !== i))}>Remove</button>
      </div>;
    })}
    <button type="button" class="button" data-testid="add-repo" disabled={rows.length >= MAX_EXTRA}
      onClick={() => onChange([...rows, { path: "", name: "", base: "" }])}>Add repository</button>
  </fieldset>;
}
