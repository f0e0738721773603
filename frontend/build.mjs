// Bundle src/ into dist/: one script and one style sheet, no inline code (strict CSP).
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const out = new URL("./dist/", import.meta.url);
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: "dist/app.js",
  logLevel: "warning",
});
// Style sheets imported by the modules are bundled next to the script, as dist/app.css.
for (const name of ["index.html"]) {
  await copyFile(new URL(`./src/${name}`, import.meta.url), new URL(name, out));
}
