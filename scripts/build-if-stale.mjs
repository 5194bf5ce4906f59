// Builds dist/ only where it is out of date with its sources, so one CI run builds once: `npm ci` builds
// through `prepare`, then `npm test` finds dist/ up to date and goes straight to the checks.
//
//   node scripts/build-if-stale.mjs [--force] [node|preload|renderer ...]   (default: all three)
//
// Each part has a stamp in dist/.build-stamps/PART.json holding a digest of its inputs (path, size and
// mtime of every file and folder under its source folders, plus the config files), taken before the
// build starts and written only after the build succeeded. A part is rebuilt when its output is missing
// or the digest differs: an edit, a new, deleted or renamed file, a branch switch, a changed lockfile.
// An edit made while a build runs leaves the digest different, so the next run builds again.
// `npm run build` is this script with --force; the test global setup uses it for the node part.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampDir = path.join(root, 'dist', '.build-stamps');
const common = ['package.json', 'package-lock.json', 'tsconfig.base.json'];

// inputs: folders (walked) and files, relative to the root; output: a file the build must leave.
// preload and renderer import from main/, so main/ is an input of all three.
const PARTS = {
  node: { script: 'build:node', inputs: ['main', 'tsconfig.json', ...common], output: 'dist/main/engine/worker.js' },
  preload: { script: 'build:preload', inputs: ['preload', 'main', ...common], output: 'dist/preload/preload.cjs' },
  renderer: { script: 'build:renderer', inputs: ['renderer', 'main', ...common], output: 'dist/renderer/index.html' },
};

function walk(rel, out) {
  const abs = path.join(root, rel);
  let st;
  try {
    st = statSync(abs);
  } catch {
    out.push(`${rel}\tmissing`);
    return;
  }
  out.push(`${rel}\t${st.size}\t${st.mtimeMs}`);
  if (!st.isDirectory()) return;
  for (const name of readdirSync(abs).sort()) {
    if (name === 'node_modules' || name === '.git') continue;
    walk(path.posix.join(rel, name), out);
  }
}

function digest(part) {
  const lines = [];
  for (const input of PARTS[part].inputs) walk(input, lines);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const stampFile = (part) => path.join(stampDir, `${part}.json`);

function isFresh(part, sum) {
  if (!existsSync(path.join(root, PARTS[part].output))) return false;
  try {
    return JSON.parse(readFileSync(stampFile(part), 'utf8')).inputs === sum;
  } catch {
    return false;
  }
}

function runScript(script) {
  // Under npm, npm_execpath is npm's own CLI; run it with this node so the same npm is used.
  const npmCli = process.env.npm_execpath;
  const [cmd, args] = npmCli && /\.c?js$/.test(npmCli) ? [process.execPath, [npmCli, 'run', '--silent', script]] : ['npm', ['run', '--silent', script]];
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' && cmd === 'npm' });
  if (r.status !== 0) {
    console.error(`build-if-stale: npm run ${script} failed${r.error ? ` (${r.error.message})` : ''}`);
    process.exit(r.status || 1);
  }
}

const args = process.argv.slice(2);
const force = args.includes('--force');
const parts = args.filter((a) => a !== '--force');
for (const p of parts) {
  if (!(p in PARTS)) {
    console.error(`build-if-stale: unknown part '${p}' (parts: ${Object.keys(PARTS).join(', ')})`);
    process.exit(2);
  }
}

for (const part of parts.length ? parts : Object.keys(PARTS)) {
  const sum = digest(part);
  if (!force && isFresh(part, sum)) {
    console.log(`build-if-stale: ${part} is up to date`);
    continue;
  }
  if (!force) console.log(`build-if-stale: ${part} is out of date, building (npm run ${PARTS[part].script})`);
  runScript(PARTS[part].script);
  mkdirSync(stampDir, { recursive: true });
  writeFileSync(stampFile(part), JSON.stringify({ inputs: sum, builtAt: new Date().toISOString() }) + '\n');
}
