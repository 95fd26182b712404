// Builds the dashboard's static files into ferrite/dashboard/static (or the folder given
// as the first argument): uPlot as published, and our script minified with terser.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { minify } from "terser";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, "..", "ferrite", "dashboard", "static");
mkdirSync(out, { recursive: true });
const uplot = join(here, "node_modules", "uplot", "dist");
copyFileSync(join(uplot, "uPlot.iife.min.js"), join(out, "uPlot.iife.min.js"));
copyFileSync(join(uplot, "uPlot.min.css"), join(out, "uPlot.min.css"));
copyFileSync(join(here, "src", "dashboard.css"), join(out, "dashboard.css"));
const source = readFileSync(join(here, "src", "dashboard.js"), "utf8");
const result = await minify(source, { compress: { passes: 2 }, mangle: true, ecma: 2019 });
writeFileSync(join(out, "dashboard.js"), result.code + "\n");
