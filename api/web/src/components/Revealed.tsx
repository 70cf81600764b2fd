// Text the agent wrote, with each character that would hide or reorder it drawn as a
// marked U+XXXX (format.ts says which and why).
import { codePoint, hasHidden, HIDDEN_SPLIT } from "../format";

export function Revealed({ text }: { text: string }) {
  if (!hasHidden(text)) return <>{text}</>;
  return <>{text.split(HIDDEN_SPLIT).map((part, i) => i % 2
    ? <span class="hidden-char" title="A character that is not drawn">{codePoint(part)}</span>
    : part)}</>;
}
