// The proxy's controls for one session: its honeytoken alert, what it used and cost, its
// budget (raise it and the agent goes on), its egress mode and the requests held for a
// decision (allow or deny them here; the held request goes on or fails at once).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, errorText, type Budget, type BudgetState, type EgressAsk, type EgressMode, type EgressView,
  type Session, type Usage } from "../api";
import { type AskRow, steadyRows } from "../asks";
import { live } from "../live";

const MODES: EgressMode[] = ["open", "learn", "ask", "locked"];

function money(u: Usage): string {
  return u.cost === null ? "unknown" : `$${u.cost.toFixed(2)}${u.cost_complete ? "" : "+"}`;
}

export function Controls({ s }: { s: Session }) {
  const [usage, setUsage] = useState<{ total: Usage; budget: BudgetState } | null>(null);
  const [egress, setEgress] = useState<EgressView | null>(null);
  const [perDay, setPerDay] = useState("");
  const [error, setError] = useState("");
  // The held requests as drawn; while the pointer or the focus is on them they keep their
  // places (asks.ts), so a click lands on the question the person read.
  const [asks, setAsks] = useState<AskRow[]>([]);
  const pointer = useRef(false);
  const focus = useRef(false);
  const settle = useCallback((pending: EgressAsk[]) => setAsks(before =>
    steadyRows(before, pending, pointer.current || focus.current)), []);
  const hold = (on: { current: boolean }, value: boolean) => {
    on.current = value;
    if (egress) settle(egress.pending);
  };
  const fail = (e: unknown) => setError(errorText(e));
  const load = useCallback(async () => {
    try {
      const [u, e] = await Promise.all([api.sessionUsage(s.id), api.sessionEgress(s.id)]);
      setUsage(u); setEgress(e); setError("");
      settle(e.pending);
    } catch (e) { fail(e); }
  }, [s.id, settle]);
  // Reload when the session changes (events: usage, budget, egress asks and decisions): at
  // once, then at most once a second however many come (an agent's hooks move updated_at
  // twenty times a second, and each asked for the usage and the egress lists again).
  const loadedAt = useRef(0);
  useEffect(() => {
    const t = setTimeout(() => { loadedAt.current = Date.now(); void load(); },
      Math.max(0, loadedAt.current + 1000 - Date.now()));
    return () => clearTimeout(t);
  }, [load, s.updated_at]);
  useEffect(() => { const t = setInterval(() => void load(), 2000); return () => clearInterval(t); },
    [load]);
  const saveBudget = async () => {
    const value = perDay.trim() === "" ? null : Number(perDay);
    const budget: Budget = { ...(usage?.budget.budget ?? { tokens: null, cost: null,
      tokens_per_day: null, cost_per_day: null }), cost_per_day: value };
    try { await api.setSessionBudget(s.id, budget); await load(); } catch (e) { fail(e); }
  };
  const setMode = async (m: EgressMode) => {
    try { live.upsert(await api.setEgressMode(s.id, m)); await load(); } catch (e) { fail(e); }
  };
  const decide = async (id: number, d: "allow" | "deny") => {
    try { await api.decideAsk(id, d); await load(); } catch (e) { fail(e); }
  };
  return <section class="card" data-testid="controls"><h2>Cost and egress</h2>
    {s.alert && <div class="reason" data-testid="alert" role="alert">{s.alert}{" "}
      <button class="button small-button" onClick={() => void api.clearAlert(s.id)
        .then(x => live.upsert(x)).catch(fail)}>Clear</button></div>}
    {s.budget_exceeded && <p class="reason" data-testid="budget-exceeded">{s.budget_exceeded}</p>}
    {usage && <p data-testid="usage">{usage.total.tokens} tokens in {usage.total.requests} model
      calls · cost <b>{money(usage.total)}</b></p>}
    <div class="row wrap">
      <label>Budget, USD per day <input type="number" min="0" step="0.01" value={perDay}
        placeholder={String(usage?.budget.budget.cost_per_day ?? "none")} data-testid="budget-input"
        onInput={e => setPerDay(e.currentTarget.value)} /></label>
      <button class="button" data-testid="budget-save" onClick={() => void saveBudget()}>Save</button>
    </div>
    {egress && <>
      <div class="segmented" role="radiogroup" aria-label="Egress mode" data-testid="egress-mode"
        data-mode={egress.mode}>
        {MODES.map(m => <button role="radio" aria-checked={egress.mode === m}
          class={egress.mode === m ? "on" : ""} data-testid={`egress-${m}`}
          onClick={() => void setMode(m)}>{m}</button>)}
      </div>
      {asks.length > 0 && <ul class="pending" data-testid="pending"
        onPointerEnter={() => hold(pointer, true)} onPointerLeave={() => hold(pointer, false)}
        onFocusIn={() => hold(focus, true)} onFocusOut={() => hold(focus, false)}>
        {asks.map(({ ask: a, gone }) => <li key={a.id} data-host={a.host}
          data-gone={gone ? "" : undefined} class={gone ? "muted" : ""}>
          <b class="mono" data-testid="ask-site" title="The domain it belongs to">{a.site}</b>{" "}
          <span class="mono">{a.host}</span>{" "}
          {a.unicode && <span data-testid="ask-unicode">drawn as <span class="mono">{a.unicode}
          </span></span>}{" "}
          {a.lookalike && <span class="field-error" data-testid="ask-lookalike">{a.lookalike}
          </span>}{" "}
          {gone ? <span data-testid="ask-gone">no longer waiting</span> : <>
            <button class="button primary small-button" data-testid="ask-allow"
              onClick={() => void decide(a.id, "allow")}>Allow</button>{" "}
            <button class="button danger small-button" data-testid="ask-deny"
              onClick={() => void decide(a.id, "deny")}>Deny</button></>}</li>)}
      </ul>}
      <p class="hint">{egress.entries.length} hosts on its list. Model hosts always pass.</p>
    </>}
    {error && <p class="field-error">{error}</p>}
  </section>;
}

/** Every session's usage per day (newest first), with each day's cost. */
export function UsageDays() {
  const [days, setDays] = useState<{ day: string; total: Usage }[] | null>(null);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    if (open) void api.usage(14).then(u => setDays(u.days)).catch(() => setDays([]));
  }, [open]);
  return <details class="usage-days" data-testid="usage-days"
    onToggle={e => setOpen(e.currentTarget.open)}>
    <summary>Usage per day</summary>
    {!days ? <p class="muted">Loading…</p> : days.length === 0
      ? <p class="muted">No model calls yet.</p>
      : <table><tbody>{days.map(d => <tr><td>{d.day}</td><td>{d.total.tokens} tokens</td>
        <td>{money(d.total)}</td></tr>)}</tbody></table>}
  </details>;
}
