// Leaving the app for a URL the agent wrote (a link in its chat messages). Its words can
// name one place and its target be another, and a target can be a scheme that runs
// something (javascript:, data:, vbscript:) or starts another program (vscode:, ssh:). So
// only an absolute http(s) URL is ever a link, and following it asks first: the person is
// shown the whole destination and opens it, in a new tab with no opener and no referrer,
// or does not.

/** The URL to open for a target the agent wrote, in the form shown and opened, or null
 * when it may not be one: anything but an absolute http(s) URL (a scheme that runs or
 * starts something, a path relative to this app, `//host`), or one naming a user
 * (`https://github.com@elsewhere/` reads as the first name and goes to the second). */
export function outboundUrl(target: string): string | null {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (url.username || url.password) return null;
  return url.href;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", cls = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** Ask the person whether to open `url` (an outboundUrl); open it only on their yes. */
export function askToLeave(url: string): void {
  document.querySelector("dialog.leave")?.remove();
  const dialog = el("dialog", "", "dialog leave");
  dialog.dataset.testid = "leave";
  const where = el("p", url, "mono leave-url");
  where.dataset.testid = "leave-url";
  const form = el("form", "", "row end");
  form.method = "dialog";
  const cancel = el("button", "Cancel", "button");
  cancel.value = "cancel";
  const open = el("button", "Open", "button primary");
  open.value = "open";
  form.append(cancel, open);
  dialog.append(el("h2", "Open a link the agent wrote?"),
    el("p", "The agent wrote this link; its words may name another place. It goes to:"),
    where, el("p", "It opens in a new tab.", "muted small"), form);
  // Keys typed here are the dialog's: Escape closes it, and no shortcut of the page under
  // it runs (Escape there goes back to the list, a digit to another tab).
  dialog.addEventListener("keydown", e => e.stopPropagation());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "open") window.open(url, "_blank", "noopener,noreferrer");
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}

/** A click (or Enter) on a link of agent-written Markdown (highlight.ts renders each as a
 * button carrying its target in `data-href`): ask before leaving. */
export function followLink(e: MouseEvent): void {
  const link = (e.target as Element | null)?.closest<HTMLElement>("[data-href]");
  if (!link) return;
  e.preventDefault();
  const url = outboundUrl(link.dataset.href ?? "");
  if (url) askToLeave(url);
}
