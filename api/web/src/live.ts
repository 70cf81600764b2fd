// The live session store: the list from GET /api/sessions, kept current by /ws/events.
//
// Theory of operation: the socket connects first and says which event id is the latest; the
// list is fetched after that, and events arriving meanwhile are held and applied in order
// once it lands, so nothing between the two is lost. On a drop the socket reconnects with
// ?after=<last id seen> (backing off to 10 s), so the stream resumes exactly where it left off.
// Views that need more than the list (the chat: when to read the transcript again) listen to
// the events themselves through `listen`.
import { useEffect, useState } from "preact/hooks";
import { api, errorText, eventSession, eventText, wsUrl, wsProtocols, type ServerEvent, type Session } from "./api";
import * as notify from "./notify";

/** An event as it arrives, or null when the stream has just (re)connected: whatever a
 * listener keeps may have changed while it was down. */
export type Listener = (e: ServerEvent | null) => void;

export type Link = "connecting" | "live" | "reconnecting";

export interface Progress { step: string; message: string; ts: string }

/** A workspace kept aside by a delete (its work could not be brought into the branch):
 * where it is, for the person to take what they need. */
export interface Kept { id: number; name: string; path: string; reason: string }

class LiveStore {
  sessions = new Map<string, Session>();
  progress = new Map<string, Progress[]>();
  kept: Kept[] = [];
  link: Link = "connecting";
  loaded = false;
  error: string | null = null;
  private lastId: number | null = null;
  private held: ServerEvent[] | null = [];
  private loading = false;
  /** Sessions whose deletion arrived (ids and names): an answer read before it never
   * brings one back, and a page open on one knows it is gone without asking. */
  private goneIds = new Set<string>();
  private goneNames = new Set<string>();
  /** Each session as the events last showed it: what a notification is judged against. An
   * answer (`upsert`) may bring a change before its event does (a slow answer to the
   * person's action, read after the agent's hook moved the session); judged against the
   * store, the event then changed nothing and the person was never told. */
  private noted = new Map<string, Session>();
  /** When each note's tag was last shown (notify.due): one per kind and session a while. */
  private shownAt = new Map<string, number>();
  /** Notes that came within their tag's gap, by tag: told when it ends if still true. */
  private heldNotes = new Map<string, notify.Note>();
  /** A stream resumed with ?after= replays what the page missed, up to `replayTo` (the
   * newest event when it connected): the view follows each event, but notes are judged once
   * the replay is read, each session from where it stood to where it ends up (a wait that
   * is already over is not told); `replayed` keeps where each stood before it (nothing, for
   * a session made while the page was away: `notify.unseen`). */
  private replayTo = 0;
  private replayed = new Map<string, Session | undefined>();
  private listeners = new Set<() => void>();
  private eventListeners = new Set<Listener>();
  private ws: WebSocket | null = null;
  private delay = 500;
  private version = 0;
  private stopped = false;

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Call `fn` with every event from now on (and null on each reconnection). */
  listen(fn: Listener): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  get tick(): number { return this.version; }

  private emit(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  start(): void {
    this.stopped = false;
    if (this.ws) return;
    this.connect();
  }

  /** Close the stream and do not reconnect (signed out). */
  stop(): void {
    this.stopped = true;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const query = this.lastId === null ? {} : { after: this.lastId };
    const ws = new WebSocket(wsUrl("events", {}, query), wsProtocols());
    this.ws = ws;
    ws.onmessage = (msg: MessageEvent<string>) => {
      const data = JSON.parse(msg.data) as { type: string; latest?: number; event?: ServerEvent };
      if (data.type === "connected") {
        this.delay = 500;
        this.link = "live";
        if (this.lastId === null) this.lastId = data.latest ?? 0;
        else if (this.loaded && (data.latest ?? 0) > this.lastId) this.replayTo = data.latest ?? 0;
        if (!this.loaded) void this.load();
        this.emit();
        for (const fn of this.eventListeners) fn(null);
      } else if (data.type === "event" && data.event) {
        this.lastId = data.event.id;
        if (this.held) this.held.push(data.event);
        else this.apply(data.event);
        for (const fn of this.eventListeners) fn(data.event);
      }
    };
    ws.onclose = () => {
      if (this.stopped || this.ws !== ws) return;
      this.ws = null;
      this.link = "reconnecting";
      this.emit();
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10_000);
    };
  }

  async load(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    try {
      const list = await api.listSessions();
      this.sessions = new Map(list.map(s => [s.id, s]));
      this.noted = new Map(this.sessions);
      this.loaded = true;
      this.error = null;
      const held = this.held ?? [];
      this.held = null;
      for (const e of held) this.apply(e, false);
    } catch (e) {
      this.error = errorText(e);
      // Until the list is read, every event is held: ask again (a page open on a session
      // has no button for it), as the event stream reconnects.
      if (!this.stopped) setTimeout(() => { if (!this.loaded) void this.load(); }, this.delay);
    } finally {
      this.loading = false;
    }
    this.emit();
  }

  /** Put a session the API just answered with into the store (before its event arrives). */
  upsert(s: Session): void {
    const known = this.sessions.get(s.id);
    if (this.goneIds.has(s.id) || (known && known.updated_at > s.updated_at)) return;
    this.sessions.set(s.id, s);
    this.emit();
  }

  private apply(e: ServerEvent, emit = true): void {
    const seen = eventSession(e);
    // An event's view leaves out what never changes (the prompt): what is known stays.
    const s: Session | undefined = seen && { initial_prompt: "", ...this.sessions.get(seen.id), ...seen };
    const replaying = e.id <= this.replayTo;
    if (s && replaying && !this.replayed.has(s.id)) {
      this.replayed.set(s.id, this.noted.get(s.id) ?? this.sessions.get(s.id));
    }
    if (s) {
      const note = emit && !replaying
        ? notify.noteFor(this.noted.get(s.id) ?? this.sessions.get(s.id), s) : null;
      if (note) this.tell(note, s.id);
      this.noted.set(s.id, s);
      this.sessions.set(s.id, s);
    }
    if (e.kind === "workspace_kept" && e.session_id) {
      const path = eventText(e, "path");
      const name = this.sessions.get(e.session_id)?.name ?? path.split("/").pop() ?? "";
      this.kept.push({ id: e.id, name, path, reason: eventText(e, "reason") });
    }
    if (e.kind === "deleted" && e.session_id) {
      this.goneIds.add(e.session_id);
      const name = this.sessions.get(e.session_id)?.name;
      if (name) this.goneNames.add(name);
      this.sessions.delete(e.session_id);
      this.noted.delete(e.session_id);
      this.progress.delete(e.session_id);
    }
    if (e.kind === "progress" && e.session_id) {
      const list = this.progress.get(e.session_id) ?? [];
      list.push({ step: eventText(e, "step"), message: eventText(e, "message"), ts: e.ts });
      this.progress.set(e.session_id, list);
    }
    if (this.replayTo && e.id >= this.replayTo) this.replayEnded(emit);
    if (emit) this.emit();
  }

  private replayEnded(emit: boolean): void {
    this.replayTo = 0;
    const replayed = this.replayed;
    this.replayed = new Map();
    if (!emit) return;
    for (const [id, before] of replayed) {
      const now = this.noted.get(id);
      const note = now ? notify.noteFor(before ?? notify.unseen(now), now) : null;
      if (note) this.tell(note, id);
    }
  }

  /** Show `note` now, or hold it (the newest of its tag) until its gap ends and show it
   * then if the session still stands as it says (notify.waitFor, notify.holds). */
  private tell(note: notify.Note, id: string): void {
    const now = Date.now();
    const wait = notify.waitFor(this.shownAt, note, now);
    if (wait === 0) {
      this.shownAt.set(note.tag, now);
      void notify.show(note).catch((e: unknown) => console.warn("a notification was not shown:", e));
      return;
    }
    const pending = this.heldNotes.has(note.tag);
    this.heldNotes.set(note.tag, note);
    if (pending) return;  // one timer per tag: it tells the newest note held
    setTimeout(() => {
      const held = this.heldNotes.get(note.tag);
      this.heldNotes.delete(note.tag);
      if (held && notify.holds(held, this.noted.get(id))) this.tell(held, id);
    }, wait);
  }

  dismissKept(id: number): void {
    this.kept = this.kept.filter(k => k.id !== id);
    this.emit();
  }

  /** Whether the session ``ref`` names was deleted while this page was open. */
  deleted(ref: string): boolean { return this.goneIds.has(ref) || this.goneNames.has(ref); }

  byRef(ref: string): Session | undefined {
    const direct = this.sessions.get(ref);
    if (direct) return direct;
    for (const s of this.sessions.values()) if (s.name === ref) return s;
    return undefined;
  }
}

export const live = new LiveStore();

/** Re-render the calling component whenever the live store changes. */
export function useLive(): LiveStore {
  const [, setTick] = useState(live.tick);
  useEffect(() => live.subscribe(() => setTick(live.tick)), []);
  return live;
}
