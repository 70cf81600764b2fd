// Desktop notifications through the service worker: when a session starts waiting for the
// person (a question, an approval, an agent that exited and needs a restart) or fails. Only after the person turned them on (the
// browser asks for permission then); the words come from the session the API sent, each
// hidden character in them written as `<U+XXXX>` and their length bounded (format.ts).
import type { Session } from "./api";
import { plainMarked } from "./format";

const KEY = "clauderon.notify";

/** What a note tells: each kind has its own tag per session (what the throttle counts and
 * what a note replaces on screen). */
export type NoteKind = "failed" | "exited" | "approval" | "waiting";

export interface Note { kind: NoteKind; title: string; body: string; tag: string; url: string }

/** What changed between two views of a session that a person should hear about (pure). */
export function noteFor(before: Session | undefined, after: Session): Note | null {
  if (!before) return null;
  const url = `/s/${encodeURIComponent(after.name)}`;
  if (after.phase === "failed" && before.phase !== "failed") {
    return { kind: "failed", title: `${after.name} failed`, body: plainMarked(after.status_reason ?? "The session failed."),
      tag: `failed-${after.id}`, url };
  }
  if (after.agent_status === "exited" && before.agent_status !== "exited") {
    return { kind: "exited", title: `${after.name}'s agent exited`,
      body: "Nothing more happens until it is restarted (Info, Health: restart agent).",
      tag: `exited-${after.id}`, url: `${url}/info` };
  }
  // An approval and a wait are two kinds, each with its own tag: a tag is both what the
  // throttle counts and what a note replaces on screen (silently), so an approval asked just
  // after a wait was told is still told, and leaves the wait's note where it is.
  if (after.agent_status === "waiting_approval" && before.agent_status !== after.agent_status) {
    return { kind: "approval", title: `${after.name} needs your approval`, body: plainMarked(after.initial_prompt),
      tag: `approval-${after.id}`, url };
  }
  if (after.agent_status === "waiting_input" && before.agent_status !== after.agent_status) {
    return { kind: "waiting", title: `${after.name} is waiting for you`, body: plainMarked(after.initial_prompt),
      tag: `waiting-${after.id}`, url };
  }
  return null;
}

/** Session `s` as it stood before this page knew of it (pure): made while the page was
 * away, its first view is the replay's, and a wait or failure it reached meanwhile is told
 * as any other session's (judged against nothing, it was never told). */
export function unseen(s: Session): Session {
  return { ...s, phase: "creating", agent_status: "unknown" };
}

/** How long after a note another of the same kind for the same session waits (30 s). */
export const NOTE_GAP_MS = 30_000;

/** How long from `now` (ms) `note` has to wait before it may be shown (0: now), given when
 * each tag was last shown: at most one note of each tag (a session's wait, its approval, its
 * agent's exit, its failure) in NOTE_GAP_MS, so an agent flipping its status between working
 * and waiting in a loop cannot storm the person's desktop (pure). A note that has to wait is
 * held, not dropped: when its gap ends it is told if its session still stands as it says
 * (`holds`), so the last state is never lost to the one told before it. */
export function waitFor(shownAt: ReadonlyMap<string, number>, note: Note, now: number): number {
  const last = shownAt.get(note.tag);
  return last === undefined ? 0 : Math.max(last + NOTE_GAP_MS - now, 0);
}

/** Whether session `s` still stands as `note` says (pure): a held note is told at the end of
 * its gap only then (an approval answered meanwhile, a session deleted, is not told). */
export function holds(note: Note, s: Session | undefined): boolean {
  if (!s) return false;
  switch (note.kind) {
    case "failed": return s.phase === "failed";
    case "exited": return s.agent_status === "exited";
    case "approval": return s.agent_status === "waiting_approval";
    case "waiting": return s.agent_status === "waiting_input";
  }
}

export function supported(): boolean {
  return "Notification" in window && "serviceWorker" in navigator && window.isSecureContext;
}

export function enabled(): boolean {
  return supported() && Notification.permission === "granted" && localStorage.getItem(KEY) === "on";
}

/** Turn notifications on (asks the browser's permission) or off; whether they are on now. */
export async function toggle(): Promise<boolean> {
  if (enabled()) { localStorage.setItem(KEY, "off"); return false; }
  if (!supported()) return false;
  const answer = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  localStorage.setItem(KEY, answer === "granted" ? "on" : "off");
  return answer === "granted";
}

export async function show(note: Note): Promise<void> {
  if (!enabled()) return;
  const reg = await navigator.serviceWorker.ready;
  await reg.showNotification(note.title, { body: note.body, tag: note.tag, icon: "/icon-192.png",
    data: { url: note.url } });
}
