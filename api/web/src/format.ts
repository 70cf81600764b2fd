// Small pure formatting helpers shared by the views.
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 45) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  return d < 30 ? `${d} d ago` : new Date(iso).toLocaleDateString();
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A path segment decoded; as it was when it is not a valid escape (`%E0` alone): a link
 * anyone can make must not leave the person on a blank page. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function basename(path: string): string {
  const parts = path.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// Characters that make code read as other code: bidirectional controls reorder what is
// drawn ("Trojan Source": a check drawn as a comment), zero-width ones hide in a name
// (`is_admin` and `is_ad<ZWJ>min` look alike). The agent writes the code and the file names
// the Files tab shows, so each is drawn as what it is, a marked U+XXXX (see Revealed.tsx).
// Tag letters (words spelled in them are not drawn at all), fillers and variation selectors
// too: Unicode's Default_Ignorable_Code_Point but the two selectors that choose how an emoji
// is drawn (U+FE0E, U+FE0F: in most of an agent's messages). The CLI marks the same set.
// Marks that combine stand in the class on purpose: each is matched alone, to be shown.
/* eslint-disable no-misleading-character-class */
const HIDDEN_CHARS = String.raw`\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f`
  + String.raw`\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0d\ufeff\uffa0`
  + String.raw`\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}`;
const ANY_HIDDEN = new RegExp(`[${HIDDEN_CHARS}]`, "u");
/** Splits text around each hidden character, keeping it (odd indexes). */
export const HIDDEN_SPLIT = new RegExp(`([${HIDDEN_CHARS}])`, "u");
const EACH_HIDDEN = new RegExp(`[${HIDDEN_CHARS}]`, "gu");
// Characters drawn as a slash that are none (division, fraction, fullwidth and big solidus,
// the box-drawing diagonal, the Philippine punctuation): a file of the root named
// `src∕app.py` reads as `src/app.py`. Marked in paths only: in the agent's words (`1⁄2`,
// Japanese prose, a diagram) they mean what they show and hide no file elsewhere. The CLI's set.
const SLASH_CHARS = String.raw`\u1735\u2044\u2215\u2571\u29f8\uff0f`;
const ANY_HIDDEN_IN_PATH = new RegExp(`[${HIDDEN_CHARS}${SLASH_CHARS}]`, "u");
/** As HIDDEN_SPLIT, for a path: its look-alike slashes kept apart too. */
export const PATH_SPLIT = new RegExp(`([${HIDDEN_CHARS}${SLASH_CHARS}])`, "u");
const SLASH = new RegExp(`^[${SLASH_CHARS}]$`, "u");
/* eslint-enable no-misleading-character-class */

export function hasHidden(text: string, path = false): boolean {
  return (path ? ANY_HIDDEN_IN_PATH : ANY_HIDDEN).test(text);
}

/** Whether a character is drawn as a slash and is none. */
export function isSlash(ch: string): boolean {
  return SLASH.test(ch);
}

/** A character's code point as written in Unicode's charts: U+202E. */
export function codePoint(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** The hidden characters in text, each once, as code points in the order met: U+2060. */
export function hiddenIn(text: string): string[] {
  return [...new Set((text.match(EACH_HIDDEN) ?? []).map(codePoint))];
}

/** Text without its hidden characters. */
export function withoutHidden(text: string): string {
  return text.replace(EACH_HIDDEN, "");
}

/** Text as HTML that shows it, none of it markup (untrusted: an agent wrote it). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, ch => `&#${ch.charCodeAt(0)};`);
}

/** HTML text (no markup inside the hidden characters' reach: they cannot be part of a tag
 * highlight.js or the escaper writes) with each hidden character marked. */
export function revealHtml(html: string): string {
  return html.replace(EACH_HIDDEN, ch =>
    `<span class="hidden-char" title="A character that is not drawn">${codePoint(ch)}</span>`);
}

/** How many characters a desktop notification's text keeps: the OS shows a few lines. */
export const NOTE_CHARS = 200;

/** Text for where no markup can mark it (a desktop notification): each hidden character
 * written as `<U+XXXX>`, as the CLI writes it, and at most `max` characters, counted in
 * code points so no half of a pair is left, an ellipsis saying more was cut (pure). */
export function plainMarked(text: string, max = NOTE_CHARS): string {
  const chars = Array.from(text.replace(EACH_HIDDEN, ch => `<${codePoint(ch)}>`));
  return chars.length <= max ? chars.join("") : `${chars.slice(0, max - 1).join("")}…`;
}
