// Chat: the agent's transcript as a conversation (Markdown, code, tool calls folded with
// their results, plans), refreshed while the agent works; a box to send a message and images.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, hasRoute, type Session } from "../api";
import { normalize, type Msg } from "../transcript";
import { Attachments } from "./Attachments";
import { waitingForMe } from "./Badge";

type Hl = typeof import("../highlight");

function Markdown({ text, hl }: { text: string; hl: Hl | null }) {
  if (!hl) return <div class="md plain">{text}</div>;
  return <div class="md" dangerouslySetInnerHTML={{ __html: hl.markdownToHtml(text) }} />;
}

function ToolCall({ m, result }: { m: Msg; result: Msg | undefined }) {
  const input = m.input === undefined ? "" : typeof m.input === "string" ? m.input
    : JSON.stringify(m.input, null, 2);
  const summary = toolSummary(m);
  return <details class={`tool${result?.isError ? " error" : ""}`}>
    <summary><span class="tool-name">{m.name ?? "tool"}</span>
      {summary && <span class="tool-arg mono">{summary}</span>}
      <span class="muted small">{result ? (result.isError ? "failed" : "done") : "running…"}</span></summary>
    {input && <pre class="code small">{input}</pre>}
    {result && <pre class="code small result">{result.text.slice(0, 20_000)}</pre>}
  </details>;
}

function toolSummary(m: Msg): string {
  const i = m.input;
  if (!i || typeof i !== "object") return typeof i === "string" ? i.slice(0, 80) : "";
  const o = i as Record<string, unknown>;
  const v = o.command ?? o.file_path ?? o.path ?? o.pattern ?? o.url ?? o.description;
  return typeof v === "string" ? v.slice(0, 100) : "";
}

function Plan({ m, hl }: { m: Msg; hl: Hl | null }) {
  const o = (m.input ?? {}) as { plan?: unknown; todos?: { content?: string; status?: string }[] };
  if (typeof o.plan === "string") {
    return <section class="plan"><h3>Plan</h3><Markdown text={o.plan} hl={hl} /></section>;
  }
  return <section class="plan"><h3>To do</h3><ul class="todos">{(o.todos ?? []).map(t =>
    <li class={`todo ${t.status ?? ""}`}>{t.status === "completed" ? "☑" : t.status === "in_progress" ? "◐" : "☐"} {t.content}</li>)}</ul></section>;
}

export function ChatTab({ s }: { s: Session }) {
  const [available, setAvailable] = useState<boolean | null>(null);
  const [msgs, setMsgs] = useState<Msg[]>([]);
  const [error, setError] = useState("");  // reading the transcript; cleared by the next read
  const [sendError, setSendError] = useState("");  // sending; cleared by the next send
  const [hl, setHl] = useState<Hl | null>(null);
  const [text, setText] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const [sending, setSending] = useState(false);
  const [canSend, setCanSend] = useState(false);
  const cursorRef = useRef<string | undefined>(undefined);
  const endRef = useRef<HTMLDivElement>(null);
  const stickRef = useRef(true);

  useEffect(() => {
    void hasRoute("transcript").then(setAvailable);
    void hasRoute("message").then(setCanSend);
    void import("../highlight").then(setHl);
  }, []);

  useEffect(() => {
    if (!available) return undefined;
    cursorRef.current = undefined;
    setMsgs([]);
    let stop = false;
    let timer = 0;
    const poll = async () => {
      try {
        const page = normalize(await api.transcript(s.id, cursorRef.current));
        if (page.cursor !== undefined) cursorRef.current = page.cursor;
        if (page.messages.length) setMsgs(old => [...old, ...page.messages]);
        setError("");
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      }
      if (!stop) timer = window.setTimeout(poll, document.hidden ? 5000 : 1500);
    };
    void poll();
    return () => { stop = true; clearTimeout(timer); };
  }, [available, s.id]);

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

  if (available === null) return <p class="muted pad">Loading…</p>;
  if (!available) {
    return <section class="unavailable" data-testid="chat-unavailable">
      <h2>Chat is not available on this appliance</h2>
      <p>This version of the API does not serve agent transcripts yet. The Terminal tab
        shows the agent live, and the Files tab shows what it changed.</p>
    </section>;
  }
  const results = new Map(msgs.flatMap(m =>
    m.kind === "tool_result" && m.toolId ? [[m.toolId, m] as const] : []));
  return <section class="chat">
    <div class="messages" onScroll={e => {
      const el = e.currentTarget;
      stickRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    }}>
      {msgs.length === 0 && <p class="muted pad">{s.initial_prompt
        ? "The agent has not written anything yet." : "No conversation yet. Say what to do below."}</p>}
      {msgs.map(m => {
        if (m.kind === "user") return <div key={m.key} class="msg user"><Markdown text={m.text} hl={hl} /></div>;
        if (m.kind === "assistant") return <div key={m.key} class="msg assistant"><Markdown text={m.text} hl={hl} /></div>;
        if (m.kind === "plan") return <Plan key={m.key} m={m} hl={hl} />;
        if (m.kind === "tool_call") return <ToolCall key={m.key} m={m} result={m.toolId ? results.get(m.toolId) : undefined} />;
        // A result whose call is not on this page stands alone.
        if (!(m.toolId && msgs.some(c => c.kind === "tool_call" && c.toolId === m.toolId))) {
          return <pre key={m.key} class="code small result">{m.text}</pre>;
        }
        return null;
      })}
      {s.agent_status === "working" && <p class="typing" aria-live="polite"><i /><i /><i /> working</p>}
      {waitingForMe(s.agent_status) && <p class="banner warn">{s.agent_status === "waiting_approval"
        ? "The agent is waiting for approval: answer it in the Terminal tab." : "The agent is waiting for you."}</p>}
      <div ref={endRef} />
    </div>
    {error && <p class="field-error pad">{error}</p>}
    {sendError && <p class="field-error pad" role="alert" data-testid="chat-error">{sendError}</p>}
    <form class="composer" onSubmit={e => void send(e)}
      onKeyDown={e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send(e); }}>
      <textarea rows={2} value={text} disabled={!canSend} aria-label="Message to the agent"
        placeholder={canSend ? "Message the agent… (Ctrl+Enter sends)" : "Sending is not available on this appliance"}
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
