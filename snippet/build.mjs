// Builds snippet/src/index.js into static/cartback.js (one minified IIFE), the popup it fetches at idle
// time into static/cartback-popup.js and each platform adapter into static/cartback-{kind}.js. With
// --check: builds in memory, fails when a committed file differs or is over its gzipped size budget.
import { build, transform } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "static", "cartback.js");
const BUDGET = 5120; // bytes, gzipped (level 9): the core, what every page loads
const POPUP_BUDGET = 7168; // bytes, gzipped: the core plus the popup's file (fetched at idle time)
const PAIR_BUDGET = 7168; // bytes, gzipped: the core plus one platform adapter
const ADAPTERS = ["shopify", "woocommerce"];
const TOKEN = '"__CARTBACK_CONFIG__"'; // the collector swaps this literal for the site's config object
const check = process.argv.includes("--check");

// `import CSS from "./popup.css"` gives the file's text, minified.
const cssText = {
  name: "css-text",
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const { code } = await transform(readFileSync(args.path, "utf8"), { loader: "css", minify: true, target: "chrome80" });
      return { contents: code.trim(), loader: "text" };
    });
  },
};

// One IIFE per file: the core, the popup it fetches at idle time, and each platform adapter.
const bundle = async (entry) => {
  const built = await build({
    entryPoints: [join(ROOT, "snippet", "src", entry)],
    bundle: true,
    format: "iife",
    minify: true,
    target: "es2020", // what the CSS target (chrome80) runs anyway: optional catch bindings and ?? are shorter
    charset: "utf8",
    legalComments: "none",
    write: false,
    logLevel: "warning",
    plugins: [cssText],
  });
  const text = built.outputFiles[0].text;
  return [text, gzipSync(Buffer.from(text), { level: 9 }).length];
};
const fail = (msg) => {
  console.error(`snippet: ${msg}`);
  process.exitCode = 1;
};

const [code, gz] = await bundle("index.js");
const tokens = code.split(TOKEN).length - 1;
if (tokens !== 1) fail(`the built file must hold ${TOKEN} exactly once, found ${tokens} times`);
console.log(`snippet: static/cartback.js is ${code.length} bytes, ${gz} bytes gzipped (budget ${BUDGET})`);
if (gz > BUDGET) fail(`over the size budget: ${gz} > ${BUDGET} bytes gzipped`);

// The popup: a second request, at idle time after load, only where the popup may show.
const [popup, pgz] = await bundle("popup.js");
console.log(`snippet: static/cartback-popup.js is ${pgz} bytes gzipped; core + it ${gz + pgz} (budget ${POPUP_BUDGET})`);
if (gz + pgz > POPUP_BUDGET) fail(`core + popup over the size budget: ${gz + pgz} > ${POPUP_BUDGET} bytes gzipped`);
const outputs = [[OUT, code], [join(ROOT, "static", "cartback-popup.js"), popup]];

// The platform adapters: each its own small file that the core loads only on its platform.
for (const kind of ADAPTERS) {
  const [text, agz] = await bundle(join("adapters", `${kind}.js`));
  console.log(`snippet: static/cartback-${kind}.js is ${agz} bytes gzipped; core + it ${gz + agz} (budget ${PAIR_BUDGET})`);
  if (gz + agz > PAIR_BUDGET) fail(`core + ${kind} adapter over the size budget: ${gz + agz} > ${PAIR_BUDGET} bytes gzipped`);
  outputs.push([join(ROOT, "static", `cartback-${kind}.js`), text]);
}

for (const [path, text] of outputs) {
  const name = "static/" + path.split("/").pop();
  if (check) {
    let committed = null;
    try {
      committed = readFileSync(path, "utf8");
    } catch {}
    if (committed !== text) {
      fail(`${name} ${committed === null ? "is missing" : "differs from a fresh build of snippet/src"}: run \`make snippet\` and commit it`);
    }
  } else if (!process.exitCode) {
    writeFileSync(path, text);
    console.log(`snippet: wrote ${name}`);
  }
}
