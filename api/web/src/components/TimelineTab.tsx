// Timeline: the session's transcript messages, proxied requests, commits and status and
// lifecycle events on one screen, in time order (GET /api/sessions/{ref}/timeline). Read
// again when /ws/events says the session changed and on a slow timer (the transcript and the
// audit log have no event); "Older" pages back with the API's cursor. Every field is shown
// as text, never as HTML: the agent writes most of it; each character in it that hides or
// reorders words (its messages' too, as in the chat) is drawn as what it is (Revealed).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, errorText, hasRoute, type TimelineItem } from "../api";
import { WRITTEN_LABEL, concerns } from "../conversation";
import { live } from "../live";
import { CATCH_UP_PAGES, SOURCE_LABEL, keepWalking, newer, older } from "../timeline";
import type { Session } from "../api";
import { Revealed } from "./Revealed";

const POLL_MS = 3000;

/** Which repository a commit is in, for a session with more than one (else nothing). */
function repoOf(s: Session, item: TimelineItem): string {
  if (!item.repo || s.extra_repos.length === 0) return "";
  return item.repo === "." ? (s.repo_path.split("/").filter(Boolean).pop() ?? ".") : item.repo;
}

function Row({ item, repo }: { item: TimelineItem; repo: string }) {
  const time = new Date(item.ts).toLocaleTimeString([], { hour12: false });
  const body = item.text && item.text !== item.title;
  // A user message the person did not send from here says so, before the agent's words.
  const written = item.source === "message" && item.kind === "user" && !item.from_person
    && <span class="written-label small" data-testid="written-label">{WRITTEN_LABEL} </span>;
  return <li class={`tl-item tl-${item.source}`} data-testid="timeline-item"
    data-source={item.source} data-key={item.key} data-repo={repo || undefined}>
    <span class="tl-time mono" title={item.trusted_time ? item.ts
      : `${item.ts} (written by the agent)`}>{time}{item.trusted_time ? "" : "~"}</span>
    <span class="pill tl-source">{SOURCE_LABEL[item.source]}</span>
    <span class="tl-kind muted small">{item.kind}{repo && <> · <span class="mono"
      data-testid="timeline-repo">{repo}</span></>}</span>
    {body
      ? <details class="tl-body"><summary class="tl-title">{written}<Revealed text={item.title} />
        </summary><pre class="code small"><Revealed text={item.text} /></pre></details>
      : <span class="tl-title">{written}<Revealed text={item.title} /></span>}
  </li>;
}

export function TimelineTab({ s }: { s: Session }) {
  const [available, setAvailable] = useState<boolean | null>(null);
  const [items, setItems] = useState<TimelineItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);  // for older items; null: none
  const [error, setError] = useState("");
  const [notes, setNotes] = useState<string[]>([]);  // sources the newest page left out
  const [loading, setLoading] = useState(false);
  const itemsRef = useRef<TimelineItem[]>([]);
  const endRef = useRef<HTMLDivElement>(null);

  useEffect(() => { void hasRoute("timeline").then(setAvailable); }, []);

  useEffect(() => {
    if (!available) return undefined;
    setItems([]);
    setCursor(null);
    let stop = false;
    let first = true;
    let busy = false;
    const refresh = async () => {
      if (busy) return;
      busy = true;
      try {
        const known = new Set(itemsRef.current.map(i => i.key));
        const pages: TimelineItem[][] = [];
        let page = await api.timeline(s.id);
        pages.push(page.items);
        if (!stop) setNotes(page.notes);
        if (first) setCursor(page.more ? page.cursor : null);
        for (let n = 1; !first && n < CATCH_UP_PAGES && keepWalking(known, page); n++) {
          page = await api.timeline(s.id, page.cursor);
          pages.push(page.items);
        }
        if (stop) return;
        first = false;
        setItems(old => newer(old, pages));
        setError("");
      } catch (e) {
        if (!stop) setError(errorText(e));
      } finally {
        busy = false;
      }
    };
    const unlisten = live.listen(e => { if (concerns(e, s.id)) void refresh(); });
    const timer = window.setInterval(() => { if (!document.hidden) void refresh(); }, POLL_MS);
    void refresh();
    return () => { stop = true; unlisten(); clearInterval(timer); };
  }, [available, s.id]);

  useEffect(() => {
    itemsRef.current = items;
    endRef.current?.scrollIntoView({ block: "end" });
  }, [items]);

  async function loadOlder() {
    if (!cursor) return;
    setLoading(true);
    try {
      const page = await api.timeline(s.id, cursor);
      setItems(old => older(old, page));
      setCursor(page.more ? page.cursor : null);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  if (available === null) return <p class="muted pad">Loading…</p>;
  if (!available) {
    return <section class="unavailable"><h2>The timeline is not available on this appliance</h2>
      <p>This version of the API does not serve timelines yet.</p></section>;
  }
  return <section class="timeline pad" data-testid="timeline">
    {cursor && <button class="button small-button" data-testid="timeline-older"
      disabled={loading} onClick={() => void loadOlder()}>{loading ? "Loading…" : "Older"}</button>}
    {notes.map(n => <p class="banner warn" data-testid="timeline-note">{n}</p>)}
    {items.length === 0 && !error && <p class="muted">Nothing has happened yet.</p>}
    <ol class="tl-list">{items.map(i => <Row key={i.key} item={i} repo={repoOf(s, i)} />)}</ol>
    {error && <p class="field-error" role="alert">{error}</p>}
    <p class="muted small">~ marks a time the agent wrote (shown between the session's start and now).</p>
    <div ref={endRef} />
  </section>;
}
