// Chat: the agent's transcript as a conversation (Markdown, code, tool calls folded with
// their results, plans), read again when /ws/events says the session changed (see
// conversation.ts for when exactly); a box to send a message and images.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, errorText, hasRoute, type Message, type Session } from "../api";
import {
  concerns, cut, hasCall, planOf, resultsById, safetyPeriod, SETTLE_MS, toolInput,
  shown, toolSummary, WRITTEN_LABEL, type PlanStep, type Shown,
} from "../conversation";
import { live } from "../live";
import { followLink } from "../outbound";
import { Attachments } from "./Attachments";
import { Revealed } from "./Revealed";

type Hl = typeof import("../highlight");

function Markdown({ text, hl }: { text: string; hl: Hl | null }) {
  if (!hl) return <div class="md plain"><Revealed text={text} /></div>;
  return <div class="md" onClick={followLink}
    dangerouslySetInnerHTML={{ __html: hl.markdownToHtml(text) }} />;
}

function ToolCall({ m, result }: { m: Message; result: Message | undefined }) {
  const input = cut(toolInput(m));
  const summary = toolSummary(m);
  return <details class={`tool${result?.is_error ? " error" : ""}`}>
    <summary><span class="tool-name"><Revealed text={m.tool ?? "tool"} /></span>
      {summary && <span class="tool-arg mono"><Revealed text={summary} /></span>}
      <span class="muted small">{result ? (result.is_error ? "failed" : "done") : "running…"}</span></summary>
    {input && <pre class="code small"><Revealed text={input} /></pre>}
    {result && <pre class="code small result"><Revealed text={cut(result.text)} /></pre>}
  </details>;
}

const MARK: Record<PlanStep["status"], string> = { pending: "☐", in_progress: "◐", completed: "☑" };

function Plan({ m, hl }: { m: Message; hl: Hl | null }) {
  const plan = planOf(m);
  const text = plan.text && <Markdown text={cut(plan.text)} hl={hl} />;
  if (!plan.steps.length) return <section class="plan"><h3>Plan</h3>{text}</section>;
  return <section class="plan"><h3>To do</h3>{text}<ul class="todos">{plan.steps.map(t =>
    <li class={`todo ${t.status}`}>{MARK[t.status]} <Revealed text={t.text} /></li>)}
    {plan.more_steps > 0 && <li class="todo">… {plan.more_steps} more items not shown</li>}</ul></section>;
}

export function ChatTab({ s }: { s: Session }) {
  const [available, setAvailable] = useState<boolean | null>(null);
  const [msgs, setMsgs] = useState<Shown[]>([]);
  const [error, setError] = useState("");  // reading the transcript; cleared by the next read
  const [sendError, setSendError] = useState("");  // sending; cleared by the next send
  const [hl, setHl] = useState<Hl | null>(null);
  const [text, setText] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [sending, setSending] = useState(false);
  const [served, setServed] = useState(false);  // this appliance takes messages at all
  const cursorRef = useRef<string | undefined>(undefined);
  const endRef = useRef<HTMLDivElement>(null);
  const stickRef = useRef(true);

  useEffect(() => {
    void hasRoute("transcript").then(setAvailable);
    void hasRoute("message").then(setServed);
    void import("../highlight").then(setHl);
  }, []);

  // Read the transcript after the cursor: now, on each event about this session (and once
  // more a moment later), and on a slow safety timer while the agent works. One read at a
  // time; a request that comes during a read makes one more read after it.
  const period = safetyPeriod(s);
  const readRef = useRef<() => void>(() => undefined);
  useEffect(() => {
    if (!available) return undefined;
    cursorRef.current = undefined;
    setMsgs([]);
    let stop = false;
    let busy = false;
    let again = false;
    const readOnce = async () => {
      try {
        const after = cursorRef.current;
        const page = await api.transcript(s.id, after);
        if (stop) return;
        cursorRef.current = page.cursor;
        const added = shown(after, page.messages);
        if (added.length) setMsgs(old => [...old, ...added]);
        setError("");
      } catch (e) {
        if (!stop) setError(errorText(e));
      }
    };
    const read = async (): Promise<void> => {
      if (busy) { again = true; return; }
      busy = true;
      try { await readOnce(); } finally { busy = false; }
      if (again && !stop) { again = false; await read(); }
    };
    readRef.current = () => { void read(); };
    let settle = 0;
    const unlisten = live.listen(e => {
      if (!concerns(e, s.id)) return;
      void read();
      clearTimeout(settle);  // one more read after the last of a burst
      settle = window.setTimeout(() => void read(), SETTLE_MS);
    });
    void read();
    return () => { stop = true; unlisten(); clearTimeout(settle); };
  }, [available, s.id]);
  useEffect(() => {
    if (!available || period === null) return undefined;
    const timer = window.setInterval(() => { if (!document.hidden) readRef.current(); }, period);
    return () => clearInterval(timer);
  }, [available, period]);

  useEffect(() => { if (stickRef.current) endRef.current?.scrollIntoView({ block: "end" }); }, [msgs.length]);

  async function send(e: Event) {
    e.preventDefault();
    if (!text.trim() && !files.length) return;
    setSending(true);
    try {
      const paths: string[] = [];
      for (const f of files) paths.push((await api.upload(s.id, f)).container_path);
      const body = paths.length ? `${text.trim()}\n\n${paths.map(p => `[image: ${p}]`).join("\n")}` : text.trim();
      await api.message(s.id, body);
      setText("");
      setFiles([]);
      setSendError("");
    } catch (err) {
      setSendError(err instanceof Error ? err.message : String(err));
    } finally {
      setSending(false);
    }
  }

  const canSend = served && s.actions.includes("message");
  if (available === null) return <p class="muted pad">Loading…</p>;
  if (!available) {
    return <section class="unavailable" data-testid="chat-unavailable">
      <h2>Chat is not available on this appliance</h2>
      <p>This version of the API does not serve agent transcripts yet. The Terminal tab
        shows the agent live, and the Files tab shows what it changed.</p>
    </section>;
  }
  const results = resultsById(msgs);
  // A failing model also waits for a person; the page says so above the tabs.
  const waiting = s.filters.includes("waiting") && s.agent_state !== "model_failing";
  return <section class="chat">
    <div class="messages" onScroll={e => {
      const el = e.currentTarget;
      stickRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    }}>
      {msgs.length === 0 && <p class="muted pad">{s.initial_prompt
        ? "The agent has not written anything yet." : "No conversation yet. Say what to do below."}</p>}
      {msgs.map(({ key, m }) => {
        if (m.kind === "user") return m.from_person
          ? <div key={key} class="msg user"><Markdown text={cut(m.text)} hl={hl} /></div>
          : <div key={key} class="msg written">
            <p class="written-label small" data-testid="written-label">{WRITTEN_LABEL}</p>
            <Markdown text={cut(m.text)} hl={hl} /></div>;
        if (m.kind === "assistant") return <div key={key} class="msg assistant"><Markdown text={cut(m.text)} hl={hl} /></div>;
        if (m.kind === "plan") return <Plan key={key} m={m} hl={hl} />;
        if (m.kind === "tool_call") return <ToolCall key={key} m={m} result={m.tool_id ? results.get(m.tool_id) : undefined} />;
        // A result whose call is not in the list stands alone.
        if (!hasCall(msgs, m)) return <pre key={key} class="code small result"><Revealed text={cut(m.text)} /></pre>;
        return null;
      })}
      {s.agent_state === "working" && <p class="typing" aria-live="polite"><i /><i /><i /> working</p>}
      {waiting && <p class="banner warn" data-testid="waiting-banner">{s.agent_state === "exited"
        ? <>The agent exited: nothing more happens until it is restarted
          (<a href={`/s/${encodeURIComponent(s.name)}/info`}>Info</a>, Health: restart agent).</>
        : s.agent_status === "waiting_approval"
          ? "The agent is waiting for approval: answer it in the Terminal tab." : "The agent is waiting for you."}</p>}
      <div ref={endRef} />
    </div>
    {error && <p class="field-error pad">{error}</p>}
    {sendError && <p class="field-error pad" role="alert" data-testid="chat-error">{sendError}</p>}
    <form class="composer" onSubmit={e => void send(e)}
      onKeyDown={e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send(e); }}>
      <textarea rows={2} value={text} disabled={!canSend} aria-label="Message to the agent"
        placeholder={canSend ? "Message the agent… (Ctrl+Enter sends)" : !served
          ? "Sending is not available on this appliance" : `The session is ${s.phase}: start it to send a message`}
        onInput={e => setText(e.currentTarget.value)}
        onPaste={e => { const imgs = [...(e.clipboardData?.files ?? [])].filter(f => f.type.startsWith("image/"));
          if (imgs.length) { e.preventDefault(); setFiles(f => [...f, ...imgs]); } }} />
      <div class="composer-actions">
        <Attachments files={files} onChange={setFiles} />
        <button class="button primary" disabled={!canSend || sending}>{sending ? "Sending…" : "Send"}</button>
      </div>
    </form>
  </section>;
}
