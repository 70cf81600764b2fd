// Lint rules for the browser app: typescript-eslint's strict type-checked set, the hooks
// rules (Preact's hooks follow React's rules) and browser globals. `npm run lint` runs it;
// `npm run build` runs it before bundling.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // Written by `npm run types` from the OpenAPI document; type-checked, not linted.
  { ignores: ["src/generated/**"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  reactHooks.configs.flat["recommended-latest"],
  {
    files: ["src/**/*.{ts,tsx}", "vite.config.ts"],
    languageOptions: {
      globals: globals.browser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers in template strings are fine; objects and nullish values are not.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // `onClick={() => setOpen(true)}` is the ordinary Preact idiom.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ["eslint.config.js", "scripts/**/*.mjs", "public/**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node, ...globals.serviceworker } },
  },
  {
    // Loaded by index.html before the app (the theme before the first paint).
    files: ["public/theme-boot.js"],
    languageOptions: { globals: globals.browser },
  },
);
