// Runs the benchmarks in bench/ one after the other (`npm run bench`), each in its own node process so
// one's memory and threads do not weigh on the next. Builds dist/main first when it is out of date.
//
//   npm run bench                              every bench/*.mjs, in name order
//   npm run bench -- --list                    list them, with the Run: line of each
//   npm run bench -- --only engine,search      only those
//   npm run bench -- --size 128 --model DIR    other arguments go to every benchmark; each reads the
//                                              options it knows (see its Run: line) and ignores the rest
// Figures go to docs/PERFORMANCE.md by hand, with the command that produced them.
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const self = path.basename(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== self)
  .map((f) => f.replace(/\.mjs$/, ''))
  .sort();

const args = process.argv.slice(2);
let only = null;
const passThrough = [];
let list = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--list') list = true;
  else if (args[i] === '--only') only = (args[++i] ?? '').split(',').filter(Boolean);
  else if (args[i].startsWith('--only=')) only = args[i].slice('--only='.length).split(',').filter(Boolean);
  else passThrough.push(args[i]);
}

if (list) {
  for (const name of all) {
    const run = readFileSync(path.join(here, `${name}.mjs`), 'utf8').match(/^\/\/ Run: (.*)$/m);
    console.log(`${name.padEnd(18)} ${run ? run[1] : ''}`);
  }
  process.exit(0);
}

const unknown = (only ?? []).filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`bench: no benchmark named ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
const chosen = only ?? all;

// The benchmarks import the built engine from dist/main.
const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-if-stale.mjs'), 'node'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status || 1);

const results = [];
for (const name of chosen) {
  console.log(`\n=== bench/${name}.mjs ${passThrough.join(' ')}`.trimEnd());
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(here, `${name}.mjs`), ...passThrough], { cwd: root, stdio: 'inherit' });
  const seconds = (performance.now() - t0) / 1000;
  const ok = r.status === 0;
  results.push({ name, ok, seconds, why: ok ? '' : r.signal ? `signal ${r.signal}` : `exit code ${r.status}` });
  if (r.signal === 'SIGINT') break;
}

console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name.padEnd(18)} ${r.seconds.toFixed(1)} s${r.ok ? '' : ` (${r.why})`}`);
process.exit(results.every((r) => r.ok) && results.length === chosen.length ? 0 : 1);
