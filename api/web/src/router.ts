// A small history router: the path is the state; links and code call navigate().
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  for (const fn of listeners) fn();
}

addEventListener("popstate", () => { for (const fn of listeners) fn(); });

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const fn = () => setPath(location.pathname);
    listeners.add(fn);
    return () => { listeners.delete(fn); };
  }, []);
  return path;
}

/** Route a click on an <a href> through the router (keeps middle-click and modifiers). */
export function onLink(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element).closest("a");
  const href = a?.getAttribute("href");
  if (!a || !href || !href.startsWith("/") || a.target) return;
  e.preventDefault();
  navigate(href);
}
