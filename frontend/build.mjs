// Bundle src/ into dist/, or into the folder named by the first argument (the wheel's build
// hook, hatch_build.py): one script and one style sheet (the modules' style sheets, bundled
// as app.css), no inline code (strict CSP). The new build is made aside and swapped in, so
// a running server never serves half of one.
import { build } from "esbuild";
import { copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.argv[2] ?? join(here, "dist"));
const fresh = `${dist}.${process.pid}`;
const old = `${dist}.${process.pid}.old`;
await rm(fresh, { recursive: true, force: true });
await mkdir(fresh, { recursive: true });
try {
  // Bundled as if into dist/ wherever it goes: the source maps name the sources alike.
  const { outputFiles } = await build({
    entryPoints: [join(here, "src", "main.js")],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    outfile: join(here, "dist", "app.js"),
    write: false,
    logLevel: "warning",
  });
  for (const file of outputFiles) {
    await writeFile(join(fresh, basename(file.path)), file.contents);
  }
  await copyFile(join(here, "src", "index.html"), join(fresh, "index.html"));
  await rename(dist, old).catch(() => null);
  await rename(fresh, dist);
} finally {
  await rm(fresh, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}
