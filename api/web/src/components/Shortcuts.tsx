// The keyboard shortcut sheet (desktop), and the test every handler uses to stay out of
// the way while someone types.
import { useEffect, useRef } from "preact/hooks";

export function typing(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)
    || t.closest(".xterm") !== null;
}

const KEYS: [string, string][] = [
  ["n", "New session"], ["/", "Search sessions"], ["j / k", "Next / previous session"],
  ["Enter", "Open the selected session"], ["1 – 5", "Chat, Terminal, Files, Info, Timeline"],
  ["Esc", "Back to the list"], ["t", "Switch theme"], ["Ctrl+Enter", "Send / create"],
  ["?", "This sheet"],
];

export function Shortcuts({ onClose }: { onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => { ref.current?.showModal(); }, []);
  return <dialog ref={ref} class="dialog" onClose={onClose} aria-label="Keyboard shortcuts">
    <h2>Keyboard shortcuts</h2>
    <dl class="keys">{KEYS.map(([k, v]) => <><dt><kbd>{k}</kbd></dt><dd>{v}</dd></>)}</dl>
    <form method="dialog"><button class="button">Close</button></form>
  </dialog>;
}
