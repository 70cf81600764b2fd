// Turns a transcript page from the API into typed messages. Pure, and lenient about field
// names, because the agents' logs (Claude Code's JSONL, Codex's session log) differ and the
// API may pass either through: unknown entries are dropped, never fatal.
export type Kind = "user" | "assistant" | "tool_call" | "tool_result" | "plan";

export interface Msg {
  key: string;
  kind: Kind;
  text: string;
  name?: string;
  input?: unknown;
  toolId?: string;
  isError?: boolean;
  ts?: string;
}

export interface Page { messages: Msg[]; cursor?: string }

type Raw = Record<string, unknown>;

const KIND: Record<string, Kind> = {
  user: "user", human: "user", user_message: "user",
  assistant: "assistant", assistant_text: "assistant", text: "assistant", agent_message: "assistant",
  tool_call: "tool_call", tool_use: "tool_call", function_call: "tool_call",
  tool_result: "tool_result", function_call_output: "tool_result",
};

const PLAN_TOOLS = new Set(["ExitPlanMode", "TodoWrite", "update_plan"]);

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}

function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(textOf).filter(Boolean).join("\n");
  if (v && typeof v === "object") {
    const o = v as Raw;
    return str(o.text) ?? str(o.content) ?? (o.content !== undefined ? textOf(o.content) : "");
  }
  return "";
}

let counter = 0;

export function normalizeOne(r: Raw): Msg | null {
  const kind = KIND[str(r.type) ?? str(r.kind) ?? str(r.role) ?? ""];
  if (!kind) return null;
  const name = str(r.name) ?? str(r.tool) ?? str(r.tool_name);
  const input = r.input ?? r.arguments ?? r.tool_input ?? r.args;
  const toolId = kind === "tool_result"
    ? str(r.tool_use_id) ?? str(r.call_id) ?? str(r.tool_id) ?? str(r.id)
    : kind === "tool_call" ? str(r.tool_use_id) ?? str(r.call_id) ?? str(r.tool_id) ?? str(r.id) : undefined;
  const text = textOf(r.text ?? r.content ?? r.output ?? r.result ?? r.message ?? "");
  const msg: Msg = { key: str(r.uuid) ?? str(r.id) ?? `m${counter++}`, text,
    kind: kind === "tool_call" && name && PLAN_TOOLS.has(name) ? "plan" : kind };
  if (name !== undefined) msg.name = name;
  if (input !== undefined) msg.input = typeof input === "string" && kind === "tool_call"
    ? tryJson(input) : input;
  if (toolId !== undefined) msg.toolId = toolId;
  if (r.is_error === true || r.error === true) msg.isError = true;
  const ts = str(r.ts) ?? str(r.timestamp);
  if (ts !== undefined) msg.ts = ts;
  if ((kind === "user" || kind === "assistant") && !text.trim()) return null;
  return msg;
}

function tryJson(s: string): unknown {
  try { return JSON.parse(s); } catch { return s; }
}

export function normalize(raw: unknown): Page {
  const body = (raw ?? {}) as Raw;
  const list = Array.isArray(raw) ? raw
    : [body.messages, body.entries, body.items, body.events].find(Array.isArray) ?? [];
  const messages = (list as unknown[]).filter((x): x is Raw => !!x && typeof x === "object")
    .map(normalizeOne).filter((m): m is Msg => m !== null);
  const cursor = str(body.cursor) ?? str(body.next) ?? str(body.next_cursor) ?? str(body.after);
  return cursor === undefined ? { messages } : { messages, cursor };
}
