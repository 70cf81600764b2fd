// The one typed client of the Clauderon API. Every request the app makes goes through here,
// and every path comes from routes.json, which scripts/check-api.mjs checks against the
// OpenAPI document (at every build against the committed openapi.json, and against a running
// appliance in the browser tests). The shapes the API serves (Session, Event, Message,
// Error, CreateSession) are generated from that document into generated/openapi.ts (`npm run
// types`), never written by hand. Views never call fetch themselves.
import type { components, operations } from "./generated/openapi";
import routes from "./routes.json";

export type RouteName = keyof typeof routes;

type Schemas = components["schemas"];
export type Session = Schemas["Session"];
export type CreateSession = Schemas["CreateSession"];
/** One transcript message, as the API types it (the kind "plan" is the core's to decide). */
export type Message = Schemas["Message"];
export type Phase = Session["phase"];
/** The agent's status as every UI shows it: its hooks' word (exited: its start script's,
 * once the agent's process ended), or model_failing while the proxy sees its model
 * requests fail (`model_error` says why). */
export type AgentState = Session["agent_state"];
export type AccessMode = Session["access_mode"];
/** Where a session runs (the create request's enum; `Session.backend` is its value). */
export type BackendKind = NonNullable<CreateSession["backend"]>;
/** The agents a session can run (the create request's enum; `Session.agent` is its value). */
export type Agent = NonNullable<CreateSession["agent"]>;
/** A list filter that shows a session (the API's `filters`). */
export type ListFilter = Session["filters"][number];
/** What can be done to a session now (the API's `actions`). */
export type Verb = Session["actions"][number];

// `actions` lists every verb the API would accept now, asking again for what is already
// asked included (start a running session): a button for that would do nothing.
const ASKS: Partial<Record<Verb, Session["desired"]>> = {
  start: "running", stop: "stopped", archive: "archived",
};

/** Whether the UI offers `verb` for `s`: the session's `actions` allow it, and it changes
 * something. Views show a verb's button only when this says so. */
export function offered(s: Session, verb: Verb): boolean {
  return s.actions.includes(verb) && ASKS[verb] !== s.desired;
}

/** One item of a session's timeline, and a page of them (oldest first). */
export type TimelineItem = Schemas["TimelineItem"];
export type TimelinePage = Schemas["TimelinePage"];
export type Pull = Schemas["Pull"];
/** A session's health: each part checked, and the recovery actions. */
export type SessionHealth = Schemas["Health"];
export type MergeMethod = "squash" | "merge" | "rebase";
const RECOVERY_ROUTE: Record<string, RouteName> = {
  "restart-agent": "restartAgent", recreate: "recreate", "recreate-fresh": "recreateFresh",
  "update-image": "updateImage",
};

export type EgressMode = NonNullable<Session["egress_mode"]>;
export type Usage = Schemas["Usage"];
export type Budget = Schemas["Budget"];
export type BudgetState = Schemas["BudgetState"];
export type EgressAsk = Schemas["EgressAsk"];
export interface EgressView {
  mode: EgressMode; own_mode: EgressMode | null; pending: EgressAsk[];
  entries: { host: string; verdict: string; source: string }[];
}

/** An event of /ws/events and of a session's history. Its payload is open: these are the
 * keys the app reads, each checked before use. */
export type ServerEvent = Schemas["Event"];

/** A session as an event shows it: its prompt is left out (written once, at create). */
export type EventSession = Omit<Session, "initial_prompt"> & { initial_prompt?: string };

export function eventSession(e: ServerEvent): EventSession | undefined {
  const s = e.payload.session;
  return s && typeof s === "object" && "id" in s ? s as EventSession : undefined;
}

export function eventText(e: ServerEvent, key: "step" | "message" | "hook" | "path" | "reason"): string {
  const v = e.payload[key];
  return typeof v === "string" ? v : "";
}

export interface Entry { name: string; path: string; type: "dir" | "file" | "symlink" | "other";
  size: number | null }
export interface Listing { path: string; entries: Entry[]; truncated: boolean }
export interface FileBody { path: string; size: number; binary: boolean; truncated: boolean;
  text: string }
/** The top-level fields are the first section's; `repos` has a section per repository. */
export type Diff =
  operations["get_api_sessions_ref_diff"]["responses"][200]["content"]["application/json"];
/** One repository's changes against its own base. `repo` is what `?repo=` takes ("." the
 * primary, else the mount), `name` what to show, `path` where the agent sees it; `files` and
 * `diff` the work tree against the fork, `committed` the branch's commit (what a push sends),
 * `uncommitted` the work tree against that commit (null: not read, a pod's branch); `note`
 * says why the work tree may be partial (the workspace's HEAD cannot be read). */
export type DiffSection = Diff["repos"][number];
/** What the work tree holds of a committed file: null as committed, else undone / differs. */
export type WorkTreeMark = DiffSection["committed"]["files"][number]["work_tree"];
/** The primary repository, as the files and diff routes name it. */
export const PRIMARY_REPO = ".";
export interface Upload { name: string; path: string; container_path: string; size: number;
  mime: string }
/** One proxied request; a long exchange (a WebSocket, a stream of events) is two: `phase`
 * "open" then "end", tied by `stream`. */
export type AuditLine =
  operations["get_api_sessions_ref_audit"]["responses"][200]["content"]["application/json"]["lines"][number];
export interface TranscriptPage { agent: string; messages: Message[]; cursor: string }
export interface RecentRepo { repo_path: string; subdirectory: string; last_used: string }
/** One backend in `/api/backends`: where it is and whether it answers. */
export interface BackendHealth { url: string; reachable: boolean; error?: string }
/** A session using the disk (`/api/disk` when the disk is full): its workspace plus what
 * it wrote in its container outside it (its home, the container's layer) and its requests'
 * audit lines; `files` when the disk's files (inodes) ran out: what it holds of them, and
 * the ranking's key. */
export interface DiskUser { name: string; bytes: number; workspace_bytes: number;
  container_bytes: number; audit_bytes: number; files: number | null }
/** The disk the audit log is on: `full` (below the reserve of bytes or of files) the proxy
 * forwards nothing. `free_files` null: the filesystem sets no number of files. */
export interface DiskHealth { path: string; full: boolean; free_bytes: number;
  reserve_bytes: number; free_files: number | null; reserve_files: number;
  largest: DiskUser[] | null }
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

/** What went wrong, in words: an error's message, or anything else thrown as text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
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

// The sign-in's bind (api/cookies.py): a browser's cookie reaches every port of the host,
// so it signs nothing in alone; the bind, kept per origin (port included), goes with it.
const BIND_KEY = "clauderon.bind";

function bind(): string | null {
  try { return localStorage.getItem(BIND_KEY); } catch { return null; }
}

function keepBind(value: string | undefined): void {
  try {
    if (value) localStorage.setItem(BIND_KEY, value);
    else localStorage.removeItem(BIND_KEY);
  } catch { /* storage refused: the next call asks for a sign-in */ }
}

/** The subprotocols a WebSocket asks for: a page cannot set a WebSocket's headers. */
export function wsProtocols(): string[] {
  const b = bind();
  return b ? ["clauderon", `clauderon.bind.${b}`] : [];
}

/** How long a read that failed to reach the appliance waits before it is asked again. */
const RETRY_MS = 300;

function offline(): ApiError {
  return new ApiError("The appliance cannot be reached. Is it running?", 0, "offline", null);
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

async function call<T>(name: RouteName, opts: { ref?: string; query?: Query; body?: unknown;
  form?: FormData; signal?: AbortSignal } = {}): Promise<T> {
  const [method] = routes[name] as [string, string];
  const headers: Record<string, string> = { Accept: "application/json" };
  const b = bind();
  if (b) headers["X-Clauderon-Bind"] = b;
  const init: RequestInit = { method, headers };
  if (opts.signal) init.signal = opts.signal;
  if (opts.form) {
    init.body = opts.form;
  } else if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  const target = url(name, { ref: opts.ref ?? "" }, opts.query);
  let res: Response;
  try {
    res = await fetch(target, init);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    // A browser drops what is in flight when the host's addresses change, as they do each
    // time the engine adds or removes a session's network: a read is asked once more.
    if (method !== "GET") throw offline();
    await pause(RETRY_MS, opts.signal);
    try { res = await fetch(target, init); } catch (again) {
      if (again instanceof DOMException && again.name === "AbortError") throw again;
      throw offline();
    }
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

type SignedIn = { session: BrowserSessionInfo; bind: string };

function kept(r: SignedIn): SignedIn {
  keepBind(r.bind);
  return r;
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
  editSession: (ref: string, body: { title?: string; description?: string }) =>
    call<{ session: Session }>("editSession", { ref, body }).then(r => r.session),
  retitle: (ref: string) => call<{ session: Session }>("retitle", { ref }).then(r => r.session),
  setAccessMode: (ref: string, access_mode: AccessMode) =>
    call<{ session: Session }>("accessMode", { ref, body: { access_mode } }).then(r => r.session),
  sessionEvents: (ref: string) =>
    call<{ events: ServerEvent[] }>("sessionEvents", { ref }).then(r => r.events),
  files: (ref: string, path: string, repo: string = PRIMARY_REPO) =>
    call<Listing>("files", { ref, query: { path, repo } }),
  file: (ref: string, path: string, repo: string = PRIMARY_REPO) =>
    call<FileBody>("file", { ref, query: { path, repo } }),
  diff: (ref: string) => call<Diff>("diff", { ref }),
  upload: (ref: string, file: File) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return call<Upload>("upload", { ref, form });
  },
  audit: (ref: string, limit = 50) =>
    call<{ lines: AuditLine[] }>("audit", { ref, query: { limit } }).then(r => r.lines),
  recentRepos: () => call<{ repos: RecentRepo[] }>("recentRepos").then(r => r.repos),
  /** The appliance's health; 503 (a backend down) still answers with the details. */
  /** The backends sessions run on here: always a 200, each saying whether it answers. */
  backends: () => call<Partial<Record<BackendKind, BackendHealth>>>("backends"),
  /** The audit log's disk: always a 200 (what every page's notice reads). */
  disk: () => call<DiskHealth>("disk"),
  checkRepo: (path: string, signal?: AbortSignal) =>
    call<RepoCheck>("checkRepo", signal ? { query: { path }, signal } : { query: { path } }),
  transcript: (ref: string, after: string | undefined) =>
    call<TranscriptPage>("transcript", { ref, query: { after } }),
  message: (ref: string, text: string) => call<unknown>("message", { ref, body: { text } }),
  // The branch on its remote, the agent's terminal, health and recovery.
  /** `commit`: the committed part's commit the page showed; refused (409, field `commit`),
   * nothing sent, when the branch is at another. */
  push: (ref: string, pr: boolean, commit: string) =>
    call<{ session: Session; commit: string }>("push", { ref, body: { pr, commit } })
      .then(r => r.session),
  refreshPull: (ref: string) =>
    call<{ session: Session }>("refreshPull", { ref, body: {} }).then(r => r.session),
  merge: (ref: string, method: MergeMethod, delete_branch: boolean, head_sha: string | null) =>
    call<{ session: Session; commit: string }>("merge", { ref, body: {
      method, delete_branch, ...(head_sha ? { head_sha } : {}) } }).then(r => r.session),
  sessionHealth: (ref: string) => call<SessionHealth>("sessionHealth", { ref }),
  interrupt: (ref: string) =>
    call<{ session: Session }>("interrupt", { ref, body: {} }).then(r => r.session),
  recover: (ref: string, verb: string) => {
    const route = RECOVERY_ROUTE[verb];
    if (!route) return Promise.reject(new Error(`unknown recovery ${verb}`));
    return call<{ session: Session }>(route, { ref, body: {} }).then(r => r.session);
  },
  /** The credentials the proxy loaded (masked) and which agents can work with them. */
  credentials: () => call<Schemas["Credentials"]>("credentials"),
  timeline: (ref: string, before?: string, limit = 50) =>
    call<TimelinePage>("timeline", { ref, query: { before, limit } }),
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
    call<SignedIn>("redeemLink", { body: { token } }).then(kept),
  logout: () => call<undefined>("logout", { body: {} }).finally(() => keepBind(undefined)),
  registerOptions: () =>
    call<Ceremony<PublicKeyCredentialCreationOptionsJSON>>("registerOptions", { body: {} }),
  registerPasskey: (ceremony: string, credential: unknown, name: string) =>
    call<{ passkey: PasskeyInfo }>("registerPasskey", { body: { ceremony, credential, name } }),
  loginOptions: () =>
    call<Ceremony<PublicKeyCredentialRequestOptionsJSON>>("loginOptions", { body: {} }),
  loginPasskey: (ceremony: string, credential: unknown) =>
    call<SignedIn>("loginPasskey", { body: { ceremony, credential } }).then(kept),
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
