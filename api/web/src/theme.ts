// Light, dark or follow the system; saved per browser. index.html applies it before paint.
export type Theme = "system" | "light" | "dark";
const KEY = "clauderon.theme";
const media = matchMedia("(prefers-color-scheme: dark)");

export function getTheme(): Theme {
  const t = localStorage.getItem(KEY);
  return t === "light" || t === "dark" ? t : "system";
}

export function applyTheme(t: Theme = getTheme()): void {
  const dark = t === "dark" || (t === "system" && media.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  document.querySelector('meta[name="theme-color"]:not([media])')?.remove();
  const meta = document.createElement("meta");
  meta.name = "theme-color";
  meta.content = dark ? "#0f1115" : "#f6f7f9";
  document.head.append(meta);
}

export function setTheme(t: Theme): void {
  localStorage.setItem(KEY, t);
  applyTheme(t);
}

export function nextTheme(t: Theme): Theme {
  return t === "system" ? "light" : t === "light" ? "dark" : "system";
}

media.addEventListener("change", () => applyTheme());
