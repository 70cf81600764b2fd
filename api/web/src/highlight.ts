// Syntax highlighting and Markdown, loaded on demand (Chat and Files only): highlight.js's
// core with the languages agents touch most, and marked with raw HTML escaped, because a
// transcript or a file is untrusted text and must never run as markup.
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import dockerfile from "highlight.js/lib/languages/dockerfile";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import nix from "highlight.js/lib/languages/nix";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked } from "marked";
import { escapeHtml, revealHtml } from "./format";
import { outboundUrl } from "./outbound";

const LANGS = { bash, c, cpp, css, diff, dockerfile, go, ini, java, javascript, json, markdown,
  nix, python, rust, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(LANGS)) hljs.registerLanguage(name, lang);

const BY_EXT: Record<string, string> = {
  sh: "bash", bash: "bash", zsh: "bash", c: "c", h: "c", cc: "cpp", cpp: "cpp", hpp: "cpp",
  css: "css", scss: "css", diff: "diff", patch: "diff", go: "go", ini: "ini", toml: "ini",
  cfg: "ini", conf: "ini", java: "java", js: "javascript", mjs: "javascript", cjs: "javascript",
  jsx: "javascript", json: "json", md: "markdown", nix: "nix", py: "python", rs: "rust",
  sql: "sql", ts: "typescript", tsx: "typescript", html: "xml", xml: "xml", svg: "xml",
  yml: "yaml", yaml: "yaml",
};

export function languageFor(path: string): string | undefined {
  const name = path.split("/").pop() ?? "";
  if (name === "Dockerfile") return "dockerfile";
  return BY_EXT[name.split(".").pop()?.toLowerCase() ?? ""];
}

/** Highlighted HTML for ``code`` (escaped plain text when the language is unknown), each
 * character that hides or reorders code marked. */
export function highlight(code: string, lang: string | undefined): string {
  if (lang && hljs.getLanguage(lang)) return revealHtml(hljs.highlight(code, { language: lang }).value);
  return revealHtml(escapeHtml(code));
}

const md = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    code: ({ text, lang }) => {
      const l = (lang ?? "").split(/\s/)[0] ?? "";
      return `<pre class="code"><code class="hljs">${highlight(text, l || undefined)}</code></pre>`;
    },
    // Never an <a href>: a link the agent wrote is a button that asks before it opens
    // (outbound.ts); a target that is not an absolute http(s) URL is its words only.
    link: ({ href, text }) => {
      const url = outboundUrl(href);
      return url ? `<button type="button" class="md-link" data-href="${escapeHtml(url)}" `
        + `title="${escapeHtml(url)}">${escapeHtml(text)}</button>` : escapeHtml(text);
    },
    image: ({ text }) => escapeHtml(text),
  },
});

/** The HTML of an agent's message, each character that hides or reorders words marked in
 * its prose as in its code (between tags only: an attribute's value is never touched). */
export function markdownToHtml(text: string): string {
  return md.parse(text, { async: false }).split(/(<[^>]*>)/)
    .map((part, i) => i % 2 ? part : revealHtml(part)).join("");
}
