// Entry point: theme, the app, and the service worker that makes it installable.
import { render } from "preact";
import { App } from "./components/App";
import "./styles.css";
import { applyTheme } from "./theme";

applyTheme();
render(<App />, document.getElementById("app")!);

// Service workers need a secure context (HTTPS, or localhost).
if ("serviceWorker" in navigator && window.isSecureContext) {
  addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  });
}
