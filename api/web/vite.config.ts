// Builds the browser app into ../static, which the API serves at "/" (api/webui.py).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npm run dev` proxies the API of an appliance on its default port.
    proxy: {
      "/api": "http://127.0.0.1:3030",
      "/ws": { target: "ws://127.0.0.1:3030", ws: true },
    },
  },
});
