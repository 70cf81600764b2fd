// Entry point: theme, the app, and the service worker that makes it installable.
import { render } from "preact";
import { App } from "./components/App";
import "./styles.css";
import { applyTheme } from "./theme";

applyTheme();
const root = document.getElementById("app");
if (root) render(<App />, root);

// Service workers need a secure context (HTTPS, or localhost).
if ("serviceWorker" in navigator && window.isSecureContext) {
  addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  });
}
