// The one typed client of the Clauderon API. Every request the app makes goes through here,
// and every path comes from routes.json, which scripts/check-api.mjs checks against the
// served /api/openapi.json. Views never call fetch themselves.
import routes from "./routes.json";

export type RouteName = keyof typeof routes;

export type Phase = "creating" | "running" | "stopped" | "archived" | "deleting" | "failed";
export type AgentStatus = "unknown" | "working" | "waiting_approval" | "waiting_input" | "idle";
export type AccessMode = "read-write" | "read-only";
export type Agent = "claude" | "codex";
export type EgressMode = "open" | "learn" | "ask" | "locked";

export interface Usage {
  session_id: string | null; session_name: string | null; day?: string | null;
  model: string | null; requests: number; unmetered: number; input_tokens: number;
  output_tokens: number; cache_read_tokens: number; cache_write_tokens: number;
  tokens: number; cost: number | null; cost_complete: boolean;
}
export interface Budget {
  tokens: number | null; cost: number | null; tokens_per_day: number | null;
  cost_per_day: number | null;
}
export interface BudgetState {
  scope: string; budget: Budget; source: "config" | "set"; exceeded: string | null;
  spent: { tokens: number; cost: number; tokens_today: number; cost_today: number };
}
export interface EgressAsk {
  id: number; session_id: string; host: string; created_at: string; expires_at: string;
  decision: string | null;
}
export interface EgressView {
  mode: EgressMode; own_mode: EgressMode | null; pending: EgressAsk[];
  entries: { host: string; verdict: string; source: string }[];
}

export interface Session {
  id: string;
  name: string;
  repo_path: string;
  subdirectory: string;
  worktree_path: string;
  branch: string;
  base_ref: string;
  agent: Agent;
  model: string | null;
  backend: string;
  image: string;
  cpu: number | null;
  memory: string | null;
  access_mode: AccessMode;
  initial_prompt: string;
  skip_permissions: boolean;
  phase: Phase;
  egress_mode: EgressMode | null;
  alert: string | null;
  budget_exceeded: string | null;
  desired: string;
  agent_status: AgentStatus;
  status_reason: string | null;
  backend_id: string | null;
  container_name: string;
  attempts: number;
  retry_at: string | null;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}

export interface CreateSession {
  repo_path: string;
  name?: string;
  prompt?: string;
  agent?: Agent;
  model?: string;
  image?: string;
  cpu?: number | string;
  memory?: string;
  access_mode?: AccessMode;
  skip_permissions?: boolean;
}

export interface ServerEvent {
  id: number;
  ts: string;
  session_id: string | null;
  kind: string;
  payload: { session?: Session; id?: string; name?: string; step?: string; message?: string;
    reason?: string; hook?: string; [k: string]: unknown };
}

export interface Entry { name: string; path: string; type: "dir" | "file" | "symlink" | "other";
  size: number | null }
export interface Listing { path: string; entries: Entry[]; truncated: boolean }
export interface FileBody { path: string; size: number; binary: boolean; truncated: boolean;
  text: string }
export interface Diff { base_ref: string; merge_base: string | null;
  files: { status: string; path: string }[]; diff: string; truncated: boolean }
export interface Upload { name: string; path: string; container_path: string; size: number;
  mime: string }
export interface AuditLine { ts: string; id: string; method: string; host: string; path: string;
  status: number; decision: string; credential: string | null; duration_ms: number;
  bytes_in: number; bytes_out: number; error: string | null }
export interface RecentRepo { repo_path: string; subdirectory: string; last_used: string }
export interface RepoCheck { ok: boolean; root?: string; subdirectory?: string; branch?: string;
  error?: string }

export interface BrowserSessionInfo { id: string; kind: "session"; method: "link" | "passkey";
  passkey_id: string | null; name: string; created_at: string; last_used_at: string;
  expires_at: string }
export interface PasskeyInfo { id: string; kind: "passkey"; name: string; rp_id: string;
  backed_up: boolean; created_at: string; last_used_at: string | null }
export interface TokenInfo { id: string; kind: "token"; scope: "read-only" | "read-write";
  name: string; created_at: string; last_used_at: string | null }
export interface Me { signed_in: boolean; via?: "browser" | "token" | "local";
  session?: BrowserSessionInfo; can_add_passkey?: boolean; passkeys_here?: number;
  passkeys_possible?: boolean }
export interface Devices { sessions: BrowserSessionInfo[]; passkeys: PasskeyInfo[];
  tokens: TokenInfo[]; current: string | null }
export interface Ceremony<T> { ceremony: string; options: T }

/** Fired on window when the API answers 401: the browser's session ended (expired, revoked
 * or signed out elsewhere); the app shows the sign-in page. */
export const SIGNED_OUT = "clauderon:signed-out";

/** An error answered by the API: its message, code and (when there is one) the field. */
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly code: string,
              readonly field: string | null) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined>;

export function url(name: RouteName, params: { ref?: string } = {}, query: Query = {}): string {
  const [, template] = routes[name] as [string, string];
  let path = template.replace("{ref}", encodeURIComponent(params.ref ?? ""));
  const q = Object.entries(query).filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  if (q.length) path += `?${q.join("&")}`;
  return path;
}

export function wsUrl(name: RouteName, params: { ref?: string } = {}, query: Query = {}): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${url(name, params, query)}`;
}

async function call<T>(name: RouteName, opts: { ref?: string; query?: Query; body?: unknown;
  form?: FormData; signal?: AbortSignal } = {}): Promise<T> {
  const [method] = routes[name] as [string, string];
  const headers: Record<string, string> = { Accept: "application/json" };
  const init: RequestInit = { method, headers };
  if (opts.signal) init.signal = opts.signal;
  if (opts.form) {
    init.body = opts.form;
  } else if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(url(name, { ref: opts.ref ?? "" }, opts.query), init);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError("The appliance cannot be reached. Is it running?", 0, "offline", null);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const b = (body ?? {}) as { error?: string; code?: string; field?: string };
    if (res.status === 401 && !name.startsWith("redeem") && !name.startsWith("login")) {
      dispatchEvent(new Event(SIGNED_OUT));
    }
    throw new ApiError(b.error ?? `${method} ${name} answered ${res.status}`, res.status,
      b.code ?? `http_${res.status}`, b.field ?? null);
  }
  return body as T;
}

export const api = {
  listSessions: () =>
    call<{ sessions: Session[] }>("listSessions", { query: { all: "true" } }).then(r => r.sessions),
  getSession: (ref: string) =>
    call<{ session: Session }>("getSession", { ref }).then(r => r.session),
  createSession: (body: CreateSession) =>
    call<{ session: Session }>("createSession", { body }).then(r => r.session),
  deleteSession: (ref: string) => call<{ session: Session }>("deleteSession", { ref }),
  archive: (ref: string) => call<{ session: Session }>("archive", { ref }),
  unarchive: (ref: string) => call<{ session: Session }>("unarchive", { ref }),
  start: (ref: string) => call<{ session: Session }>("start", { ref }),
  stop: (ref: string) => call<{ session: Session }>("stop", { ref }),
  retry: (ref: string) => call<{ session: Session }>("retry", { ref }),
  setAccessMode: (ref: string, access_mode: AccessMode) =>
    call<{ session: Session }>("accessMode", { ref, body: { access_mode } }).then(r => r.session),
  sessionEvents: (ref: string) =>
    call<{ events: ServerEvent[] }>("sessionEvents", { ref }).then(r => r.events),
  files: (ref: string, path: string) => call<Listing>("files", { ref, query: { path } }),
  file: (ref: string, path: string) => call<FileBody>("file", { ref, query: { path } }),
  diff: (ref: string) => call<Diff>("diff", { ref }),
  upload: (ref: string, file: File) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return call<Upload>("upload", { ref, form });
  },
  audit: (ref: string, limit = 50) =>
    call<{ lines: AuditLine[] }>("audit", { ref, query: { limit } }).then(r => r.lines),
  recentRepos: () => call<{ repos: RecentRepo[] }>("recentRepos").then(r => r.repos),
  checkRepo: (path: string, signal?: AbortSignal) =>
    call<RepoCheck>("checkRepo", signal ? { query: { path }, signal } : { query: { path } }),
  transcript: (ref: string, after: string | undefined) =>
    call<unknown>("transcript", { ref, query: { after } }),
  message: (ref: string, text: string) => call<unknown>("message", { ref, body: { text } }),
  // The proxy's controls: usage, budgets, egress, alerts.
  usage: (days = 14) => call<{ days: { day: string; total: Usage; sessions: Usage[] }[];
    total: Usage }>("usage", { query: { days } }),
  sessionUsage: (ref: string) =>
    call<{ total: Usage; rows: Usage[]; budget: BudgetState }>("sessionUsage", { ref }),
  setSessionBudget: (ref: string, budget: Budget) =>
    call<BudgetState>("setSessionBudget", { ref, body: budget }),
  sessionEgress: (ref: string) => call<EgressView>("sessionEgress", { ref }),
  setEgressMode: (ref: string, mode: EgressMode | null) =>
    call<{ session: Session }>("egressMode", { ref, body: { mode } }).then(r => r.session),
  decideAsk: (id: number, decision: "allow" | "deny") =>
    call<EgressAsk>("decideAsk", { ref: String(id), body: { decision } }),
  clearAlert: (ref: string) =>
    call<{ session: Session }>("clearAlert", { ref }).then(r => r.session),
  // Sign-in: one-time links, passkeys, devices.
  me: () => call<Me>("authMe"),
  redeemLink: (token: string) =>
    call<{ session: BrowserSessionInfo }>("redeemLink", { body: { token } }),
  logout: () => call<undefined>("logout", { body: {} }),
  registerOptions: () =>
    call<Ceremony<PublicKeyCredentialCreationOptionsJSON>>("registerOptions", { body: {} }),
  registerPasskey: (ceremony: string, credential: unknown, name: string) =>
    call<{ passkey: PasskeyInfo }>("registerPasskey", { body: { ceremony, credential, name } }),
  loginOptions: () =>
    call<Ceremony<PublicKeyCredentialRequestOptionsJSON>>("loginOptions", { body: {} }),
  loginPasskey: (ceremony: string, credential: unknown) =>
    call<{ session: BrowserSessionInfo }>("loginPasskey", { body: { ceremony, credential } }),
  devices: () => call<Devices>("devices"),
  revokeDevice: (id: string) => call<{ revoked: string; kind: string }>("revokeDevice", { ref: id }),
};

let capabilities: Promise<Set<string>> | null = null;

/** Whether this appliance serves a route (read once from /api/openapi.json): features that
 * arrive in a later release show a clear "not available" state instead of failing. */
export async function hasRoute(name: RouteName): Promise<boolean> {
  capabilities ??= call<{ paths: Record<string, Record<string, unknown>> }>("openapi")
    .then(doc => new Set(Object.entries(doc.paths).flatMap(
      ([path, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${path}`))))
    .catch(() => { capabilities = null; return new Set<string>(); });
  const [method, path] = routes[name] as [string, string];
  return (await capabilities).has(`${method} ${path}`);
}
