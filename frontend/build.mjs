// Bundle src/ into dist/: one script and one style sheet (the modules' style sheets, bundled
// as app.css), no inline code (strict CSP). The new build is made aside and swapped in, so
// a running server never serves half of one.
import { build } from "esbuild";
import { copyFile, mkdir, rename, rm } from "node:fs/promises";

const here = new URL("./", import.meta.url);
const dist = new URL("./dist/", here);
const fresh = new URL(`./dist.${process.pid}/`, here);
const old = new URL(`./dist.${process.pid}.old/`, here);
await rm(fresh, { recursive: true, force: true });
await mkdir(fresh, { recursive: true });
try {
  await build({
    entryPoints: ["src/main.js"],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    outfile: `dist.${process.pid}/app.js`,
    logLevel: "warning",
  });
  await copyFile(new URL("./src/index.html", here), new URL("index.html", fresh));
  await rename(dist, old).catch(() => null);
  await rename(fresh, dist);
} finally {
  await rm(fresh, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}
