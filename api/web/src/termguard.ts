// What the agent may not ask of the web terminal. Its bytes reach xterm.js as they are
// (the attach runs as the agent's uid: it writes the console's terminal device past tmux),
// and xterm.js acts on OSC 4 (a palette colour), 10, 11 and 12 (the text, background and
// cursor colours): text drawn in the background's colour, or a line made to look like the
// page's own, hides what the agent runs from the person watching. Those sets are refused;
// their queries ("?") still get xterm's answer, as tmux asks them. The titles (OSC 0, 1, 2)
// are refused too: nothing here shows them now, and nothing may later by surprise.
import type { IDisposable, Terminal } from "@xterm/xterm";

export const COLOUR_OSC = [4, 10, 11, 12];
export const TITLE_OSC = [0, 1, 2];

/** Whether OSC `ident` with `data` only asks for colours: `4;n;?` pairs, `10;?` (and the
 * `?` of the slots after it, 11 and 12, as in `10;?;?`). */
export function onlyAsks(ident: number, data: string): boolean {
  const parts = data.split(";");
  if (ident === 4) {
    return parts.length % 2 === 0 && parts.every((p, i) => i % 2 ? p === "?" : /^\d{1,3}$/.test(p));
  }
  return parts.every(p => p === "?");
}

/** Refuse the agent's colour sets and titles in `t` (handled here: xterm's own never runs). */
export function guard(t: Terminal): IDisposable[] {
  return [
    ...TITLE_OSC.map(n => t.parser.registerOscHandler(n, () => true)),
    ...COLOUR_OSC.map(n => t.parser.registerOscHandler(n, data => !onlyAsks(n, data))),
  ];
}

const ESC = 0x1b, CAN = 0x18, SUB = 0x1a, C1_CSI = 0x9b, ZERO = 0x30, NINE = 0x39, M = 0x6d;
/** SGR 28: hidden text shown again. */
const REVEAL = "\x1b[28m";

/** Text the agent draws hidden (SGR 8) shows as blanks, yet a selection copies it: `echo ok`
 * on the screen, `echo ok; curl … | sh` in what the person pastes into their own shell. Each
 * SGR that may hide (a parameter or sub-parameter worth 8: `8`, `08`, `8:1`) is followed by
 * SGR 28, which shows it again. The output is read as xterm's parser reads it, across
 * writes: a CSI begins at ESC [ (a C0 control between them runs and the escape goes on) or a
 * C1 CSI, and ends at its final byte, or at ESC, CAN, SUB or another C1 control. One more
 * SGR 28 than needed (after `38;5;8`, a colour) changes nothing. */
export class Unhider {
  private state: "ground" | "esc" | "csi" = "ground";
  private eight = false;
  /** The value of the CSI's parameter being read (capped: only whether it is 8 counts). */
  private value = 0;
  private readonly decoder = new TextDecoder();

  /** `data`, UTF-8, as text for the terminal (a character cut between two writes waits). */
  bytes(data: Uint8Array): string {
    return this.text(this.decoder.decode(data, { stream: true }));
  }

  /** `text` with SGR 28 after each SGR that may hide. */
  text(text: string): string {
    if (this.state === "ground" && !text.includes("\x1b") && !text.includes("\x9b")) return text;
    let out = "";
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      if (this.step(text.charCodeAt(i))) {
        out += text.slice(from, i + 1) + REVEAL;
        from = i + 1;
      }
    }
    return out + text.slice(from);
  }

  /** Read one character; true when it ended an SGR that may hide. */
  private step(c: number): boolean {
    if (c === ESC) { this.state = "esc"; return false; }
    if (c === C1_CSI) { this.csi(); return false; }
    if (this.state === "ground") return false;
    if (c === CAN || c === SUB || (c >= 0x80 && c <= 0x9f)) { this.state = "ground"; return false; }
    if (this.state === "esc") {
      if (c === 0x5b) this.csi();
      else if (c >= 0x20 && c !== 0x7f) this.state = "ground";  // a C0 or DEL: still ESC
      return false;
    }
    if (c >= ZERO && c <= NINE) {
      this.value = Math.min(this.value * 10 + c - ZERO, 1000);
      return false;
    }
    this.eight ||= this.value === 8;
    this.value = 0;
    if (c < 0x40 || c > 0x7e) return false;  // a separator, C0, prefix or intermediate
    this.state = "ground";
    return c === M && this.eight;
  }

  private csi(): void {
    this.state = "csi";
    this.eight = false;
    this.value = 0;
  }
}
