// Checks the client's route table (src/routes.json) against an OpenAPI document: every path
// the client uses must exist there with that method. The document is either a file or a
// running API's:
//   node scripts/check-api.mjs openapi.json
//     the document this source tree's API serves (dumped by `python -m api.openapi_dump`);
//     `npm run check` does this at every build, offline.
//   CLAUDERON_TOKEN=crn_... node scripts/check-api.mjs http://127.0.0.1:3030 [--allow-missing name,name]
//     an appliance that runs (maybe another version); its document needs sign-in:
//     CLAUDERON_TOKEN is a bearer token (`clauderon auth token create --read-only`).
// Exit status 0 when all match; 1 with one line per missing route otherwise.
import { readFile } from "node:fs/promises";

const [source, flag, allowed] = process.argv.slice(2);
if (!source) {
  console.error("usage: check-api.mjs <openapi.json file | api base url> [--allow-missing name,...]");
  process.exit(2);
}
const allow = new Set(flag === "--allow-missing" && allowed ? allowed.split(",") : []);
const routes = JSON.parse(await readFile(new URL("../src/routes.json", import.meta.url), "utf8"));

async function fetchDocument(base) {
  const token = process.env.CLAUDERON_TOKEN;
  const res = await fetch(new URL("/api/openapi.json", base),
    token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  if (!res.ok) {
    console.error(`GET /api/openapi.json answered ${res.status}` +
      (res.status === 401 ? " (set CLAUDERON_TOKEN to a token: clauderon auth token create --read-only)" : ""));
    process.exit(1);
  }
  return res.json();
}

const doc = /^https?:\/\//.test(source) ? await fetchDocument(source)
  : JSON.parse(await readFile(source, "utf8"));
let missing = 0;
for (const [name, [method, path]] of Object.entries(routes)) {
  const ok = doc.paths?.[path]?.[method.toLowerCase()] !== undefined;
  if (ok) continue;
  if (allow.has(name)) {
    console.log(`allowed missing: ${name} ${method} ${path}`);
    continue;
  }
  console.log(`missing: ${name} ${method} ${path}`);
  missing++;
}
console.log(`${Object.keys(routes).length} routes checked, ${missing} missing`);
process.exit(missing ? 1 : 0);
