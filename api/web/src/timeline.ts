// The timeline tab's list, kept by item key (pure). The API pages from the newest end with a
// cursor per source (appliance/timeline.py); the tab holds what it has shown, adds what a
// fresh newest page brings (walking back a few pages when more came than one page holds)
// and what an older page brings. Items are text: the views render them as text nodes only.
import type { TimelineItem, TimelinePage } from "./api";

/** Pages walked back to catch up after a burst (each page is `limit` items). */
export const CATCH_UP_PAGES = 10;

export function newer(old: TimelineItem[], pages: TimelineItem[][]): TimelineItem[] {
  const known = new Set(old.map(i => i.key));
  let added: TimelineItem[] = [];
  for (const items of pages) {  // newest page first, each oldest first
    added = [...items.filter(i => !known.has(i.key)), ...added];
    if (items.some(i => known.has(i.key))) break;
  }
  return added.length ? [...old, ...added] : old;
}

export function older(old: TimelineItem[], page: TimelinePage): TimelineItem[] {
  const known = new Set(old.map(i => i.key));
  return [...page.items.filter(i => !known.has(i.key)), ...old];
}

/** Whether paging back from a fresh newest page must go on: nothing of it is known yet. */
export function keepWalking(known: Set<string>, page: TimelinePage): boolean {
  return page.more && !page.items.some(i => known.has(i.key));
}

export const SOURCE_LABEL: Record<TimelineItem["source"], string> = {
  message: "message", audit: "request", commit: "commit", event: "event",
};
