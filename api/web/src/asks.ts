// The requests held for a person, as rows that stay where the person read them. While the
// pointer is over the list (or a button in it has focus), a question decided elsewhere or
// expired keeps its place, marked gone with its buttons off, and a new one is added below
// the last: no row moves up under a pending click to take it. The list catches up when the
// pointer leaves.
import type { EgressAsk } from "./api";

export interface AskRow { ask: EgressAsk; gone: boolean }

/** The rows to draw now: ``before`` as drawn last, ``pending`` as the API says now. */
export function steadyRows(before: AskRow[], pending: EgressAsk[], still: boolean): AskRow[] {
  if (!still || before.length === 0) return pending.map(ask => ({ ask, gone: false }));
  const open = new Map(pending.map(a => [a.id, a]));
  const kept = before.map(r => ({ ask: open.get(r.ask.id) ?? r.ask, gone: !open.has(r.ask.id) }));
  const seen = new Set(before.map(r => r.ask.id));
  return [...kept, ...pending.filter(a => !seen.has(a.id)).map(ask => ({ ask, gone: false }))];
}
