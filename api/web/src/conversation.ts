// The agent's conversation as the chat shows it (pure): the API's typed messages as they
// are (GET /api/sessions/{id}/transcript; which tool calls are plans is the core's to say),
// tool calls paired with their results, and when the chat reads the transcript again.
import type { Message, ServerEvent, Session } from "./api";

/** A message and its key in the list (where it is in the agent's log: unique, stable). */
export interface Shown { key: string; m: Message }

/** The messages of the page read after cursor `after`; empty text is left out. */
export function shown(after: string | undefined, page: Message[]): Shown[] {
  return page.flatMap((m, i) => (m.kind === "user" || m.kind === "assistant") && !m.text.trim()
    ? [] : [{ key: `${after ?? "0"}.${i}`, m }]);
}

/** Drawn on a user message the person did not send through the appliance: the agent may
 * write one in its transcript, or someone typed it in the session's terminal (they cannot
 * be told apart). */
export const WRITTEN_LABEL = "In the session's transcript, not sent from here: typed in its terminal, or written by the agent";

/** Each tool call's result, by the call's id. */
export function resultsById(list: Shown[]): Map<string, Message> {
  return new Map(list.flatMap(({ m }) =>
    m.kind === "tool_result" && m.tool_id ? [[m.tool_id, m] as const] : []));
}

/** Whether a result's call is in the list (otherwise the result stands alone). */
export function hasCall(list: Shown[], result: Message): boolean {
  return !!result.tool_id && list.some(({ m }) =>
    (m.kind === "tool_call" || m.kind === "plan") && m.tool_id === result.tool_id);
}

function field(input: unknown, key: string): unknown {
  return input && typeof input === "object" ? (input as Record<string, unknown>)[key] : undefined;
}

/** A tool call's arguments in one line: its command, path, pattern or URL. */
export function toolSummary(m: Message): string {
  if (typeof m.input === "string") return m.input.slice(0, 80);
  for (const key of ["command", "file_path", "path", "pattern", "url", "description"]) {
    const v = field(m.input, key);
    if (typeof v === "string") return v.slice(0, 100);
  }
  return "";
}

export function toolInput(m: Message): string {
  if (m.input === undefined || m.input === null) return "";
  return typeof m.input === "string" ? m.input : JSON.stringify(m.input, null, 2);
}

/** Characters of one text the chat draws (a message, a plan, a tool's input or result): one
 * line of the agent's transcript can hold megabytes, each character of it drawn as nothing a
 * marked element of its own, and drawing them all hangs the tab. The Terminal has it whole. */
export const SHOWN_CHARS = 20_000;

/** ``text`` cut to ``max`` characters (never inside a surrogate pair), saying how many more
 * it held (pure). */
export function cut(text: string, max = SHOWN_CHARS): string {
  if (text.length <= max) return text;
  const end = /[\ud800-\udbff]/.test(text.charAt(max - 1)) ? max - 1 : max;
  return `${text.slice(0, end)}\n\n… ${text.length - end} more characters not shown`;
}

/** A plan message's plan: the core reads each agent's plan tool into this one shape (and
 * bounds it: the agent wrote it), so the chat reads nothing else of the message. */
export type Plan = NonNullable<Message["plan"]>;
export type PlanStep = Plan["steps"][number];

/** What a plan message says (an empty plan when it carries none). */
export function planOf(m: Message): Plan {
  return m.plan ?? { text: "", steps: [], more_steps: 0 };
}

// --- when to read the transcript again ---------------------------------------------------
// The agent writes its log as it goes; the appliance learns what it does from its hooks,
// which arrive on /ws/events as updates of the session. So the chat reads the transcript when
// an event about its session arrives (and when the stream reconnects), not on a timer.
// Two things events cannot say, and what covers them:
//   - a hook may fire just before the agent writes the line it announces (the prompt is
//     logged after UserPromptSubmit): a second read SETTLE_MS after an event catches it;
//   - not every write has a hook (Claude's tool results, Codex's steps inside a turn: Codex
//     reports only the end of a turn): while the agent works, a slow safety read every
//     WORKING_MS picks those up. A session that is not working writes nothing, so then
//     there is no timer at all.
export const SETTLE_MS = 1500;
export const WORKING_MS = 10_000;

/** Whether an event (or a reconnection: null) means the chat of `sessionId` reads again. */
export function concerns(e: ServerEvent | null, sessionId: string): boolean {
  return e === null || e.session_id === sessionId;
}

/** The safety read's period for a session, or null for none. */
export function safetyPeriod(s: Session): number | null {
  return s.agent_status === "working" ? WORKING_MS : null;
}
