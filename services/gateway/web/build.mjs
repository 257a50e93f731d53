// Copies the dashboard's third-party assets from node_modules (installed by `npm ci` from the
// committed lock file) into ../static/vendor, which is git-ignored. No CDN: the dashboard must
// work with no internet. Run through `make dashboard` (part of `make install`).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor");
const assets = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
];

mkdirSync(out, { recursive: true });
for (const [from, to] of assets) {
  copyFileSync(join(here, "node_modules", from), join(out, to));
}
const version = JSON.parse(readFileSync(join(here, "node_modules/uplot/package.json"), "utf8")).version;
writeFileSync(join(out, "VERSIONS.json"), JSON.stringify({ uplot: version }, null, 2) + "\n");
console.log(`vendored uPlot ${version} into ${out}`);
