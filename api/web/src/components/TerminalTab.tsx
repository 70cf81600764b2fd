// Terminal: xterm.js over /ws/console/{id}, fit to its box, resize sent to the server,
// copy/paste, a key bar for phones, and reconnection. Loaded lazily (xterm is large). A
// hyperlink the agent writes (OSC 8) asks before it opens, as a chat link does; the colours
// and the title it sets are refused, and the text it hides is shown (termguard.ts).
//
// Wire format (api/console.py): output arrives as JSON text frames {"type": "output",
// "data": <base64>} (binary frames are taken as raw output too), then {"type": "exit"};
// input goes out as binary frames, a resize as {"type": "resize", "rows", "cols"}, and the
// first size as ?rows=&cols=. Any number of tabs may watch one session (tmux keeps the screen).
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { hasRoute, wsUrl, wsProtocols, type Session } from "../api";
import { askToLeave, outboundUrl } from "../outbound";
import { guard, Unhider } from "../termguard";

type State = "connecting" | "open" | "closed" | "reconnecting";

const KEYS: [string, string][] = [["Esc", "\x1b"], ["Tab", "\t"], ["Ctrl‑C", "\x03"],
  ["↑", "\x1b[A"], ["↓", "\x1b[B"], ["←", "\x1b[D"], ["→", "\x1b[C"], ["⏎", "\r"]];

function decode64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The clipboard, which browsers leave out of insecure (plain HTTP, not localhost) pages. */
function clipboard(): Clipboard | undefined {
  return window.isSecureContext ? navigator.clipboard : undefined;
}

function colors(): Record<string, string> {
  const css = getComputedStyle(document.documentElement);
  const v = (n: string) => css.getPropertyValue(n).trim();
  return { background: v("--term-bg"), foreground: v("--term-fg"), cursor: v("--accent"),
    selectionBackground: v("--term-selection") };
}

export function TerminalTab({ s }: { s: Session }) {
  const boxRef = useRef<HTMLDivElement>(null);
  const sendRef = useRef<(data: string) => void>(() => undefined);
  const termRef = useRef<Terminal | null>(null);
  const [state, setState] = useState<State>("connecting");
  const [available, setAvailable] = useState<boolean | null>(null);
  const running = s.actions.includes("console");  // a live terminal to show

  useEffect(() => { void hasRoute("console").then(setAvailable); }, []);

  useEffect(() => {
    if (!available || !running || !boxRef.current) return undefined;
    const t = new Terminal({ cursorBlink: true, scrollback: 10_000, fontSize: 13,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", theme: colors(),
      allowProposedApi: false,
      // Text in (nearly) its background's colour is drawn readable, as WCAG asks of text
      // (dim text at half): what a selection copies is what the person saw (termguard.ts
      // shows hidden text for the same reason).
      minimumContrastRatio: 4.5,
      // An OSC 8 hyperlink is the agent's: it asks as a chat link does (xterm's own handler
      // asked with confirm(), naming the target as the agent spelt it).
      linkHandler: { activate: (_e, target) => { const url = outboundUrl(target); if (url) askToLeave(url); } } });
    const guards = guard(t);
    // Everything the terminal is written goes through one Unhider, so that it reads the
    // output as xterm's parser does (termguard.ts).
    const unhider = new Unhider();
    const write = (data: Uint8Array | string) =>
      t.write(typeof data === "string" ? unhider.text(data) : unhider.bytes(data));
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(boxRef.current);
    termRef.current = t;
    let ws: WebSocket | null = null;
    let disposed = false;
    let delay = 500;
    let timer = 0;
    const enc = new TextEncoder();

    const resize = () => {
      try { fit.fit(); } catch { return; }
      if (ws?.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "resize", cols: t.cols, rows: t.rows }));
      }
    };
    const connect = () => {
      try { fit.fit(); } catch { /* not laid out yet: the server's default size */ }
      const sock = new WebSocket(wsUrl("console", { ref: s.id }, { rows: t.rows, cols: t.cols }),
        wsProtocols());
      sock.binaryType = "arraybuffer";
      ws = sock;
      sock.onopen = () => { delay = 500; setState("open"); resize(); };
      sock.onmessage = (m: MessageEvent<ArrayBuffer | string>) => {
        if (typeof m.data !== "string") { write(new Uint8Array(m.data)); return; }
        try {
          const msg = JSON.parse(m.data) as { type?: string; data?: string; message?: string };
          if ((msg.type === "output" || msg.type === "snapshot") && msg.data) write(decode64(msg.data));
          else if (msg.type === "exit") write("\r\n\x1b[2m[the terminal ended; reconnecting]\x1b[0m\r\n");
          else if (msg.type === "error" && msg.message) write(`\r\n\x1b[31m${msg.message}\x1b[0m\r\n`);
        } catch {
          write(m.data);
        }
      };
      sock.onclose = () => {
        if (disposed) return;
        setState("reconnecting");
        timer = window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10_000);
      };
    };
    sendRef.current = (data: string) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(enc.encode(data));
    };
    const input = t.onData(d => sendRef.current(d));
    t.attachCustomKeyEventHandler(e => {
      if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey) return true;
      if (e.key === "C") { void clipboard()?.writeText(t.getSelection()); return false; }
      if (e.key === "V") { void clipboard()?.readText().then(x => t.paste(x)); return false; }
      return true;
    });
    const observer = new ResizeObserver(() => resize());
    observer.observe(boxRef.current);
    connect();
    t.focus();
    return () => {
      disposed = true;
      clearTimeout(timer);
      observer.disconnect();
      input.dispose();
      guards.forEach(g => g.dispose());
      ws?.close();
      t.dispose();
      termRef.current = null;
    };
  }, [available, running, s.id]);

  if (available === null) return <p class="muted pad">Loading…</p>;
  if (!available) {
    return <section class="unavailable" data-testid="terminal-unavailable">
      <h2>The web terminal is not available on this appliance</h2>
      <p>This version of the API has no console stream yet. From a shell on the appliance:
        <code>clauderon attach {s.name}</code></p>
    </section>;
  }
  if (!running) {
    return <section class="unavailable"><h2>The session is {s.phase}</h2>
      <p>The terminal opens when its container runs.</p></section>;
  }
  const copy = () => { const x = termRef.current?.getSelection(); if (x) void clipboard()?.writeText(x); };
  const paste = () => { void clipboard()?.readText().then(x => termRef.current?.paste(x)); };
  return <section class="terminal-tab">
    <div class="term-bar">
      <span class={`link-state ${state === "open" ? "live" : "reconnecting"}`} data-testid="term-state">
        <i class="dot" />{state === "open" ? "Connected" : state === "connecting" ? "Connecting…" : "Reconnecting…"}</span>
      <span class="spacer" />
      <button class="button small-button" onClick={copy} title="Copy the selection (Ctrl+Shift+C)">Copy</button>
      <button class="button small-button" onClick={paste} title="Paste (Ctrl+Shift+V)">Paste</button>
    </div>
    <div class="term" ref={boxRef} data-testid="terminal" />
    <div class="keybar" aria-label="Keys">{KEYS.map(([label, seq]) =>
      <button class="button small-button" onClick={() => { sendRef.current(seq); termRef.current?.focus(); }}>{label}</button>)}</div>
  </section>;
}
