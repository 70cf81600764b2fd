// Text the agent wrote, with each character that would hide or reorder it drawn as a
// marked U+XXXX (format.ts says which and why); in a path (`path`), each one drawn as a
// slash that is none too.
import { codePoint, hasHidden, HIDDEN_SPLIT, isSlash, PATH_SPLIT } from "../format";

export function Revealed({ text, path = false }: { text: string; path?: boolean }) {
  if (!hasHidden(text, path)) return <>{text}</>;
  return <>{text.split(path ? PATH_SPLIT : HIDDEN_SPLIT).map((part, i) => i % 2
    ? <span class="hidden-char" title={isSlash(part) ? "A character drawn as a slash: no folder's separator"
      : "A character that is not drawn"}>{codePoint(part)}</span>
    : part)}</>;
}
