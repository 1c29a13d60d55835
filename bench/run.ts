// `npm run bench`: runs every bench/*.bench.ts (compiled to dist/bench) in turn, or those named in
// BENCH (e.g. BENCH=files,relay). Each prints its own figures beside its baseline.
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.env['BENCH']?.split(',').map((s) => s.trim()).filter(Boolean);
const files = (await readdir(dir)).filter((f) => f.endsWith('.bench.js')).sort();
for (const file of files) {
  const name = file.replace(/\.bench\.js$/, '');
  if (wanted && !wanted.includes(name)) continue;
  process.stdout.write(`\n# ${name}\n`);
  const mod = (await import(new URL(file, import.meta.url).href)) as { run(): Promise<void> };
  await mod.run();
}
