// End-to-end: the real backend (`eidetic serve`) driven in Debian's Chromium through Playwright.
// Creates a project, imports a prompt file, searches it, runs the probe job and watches it finish.
// Screenshots land in test-results/. Run: node tests/e2e/run.mjs (after npm run build).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const results = path.join(root, 'test-results');
mkdirSync(results, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-e2e-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };

function startServer() {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'serve', '--port', '0', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s\n${stderr}`)), 30_000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, ...JSON.parse(line) });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}\n${stderr}`)));
  });
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let server;
let browser;
let page;

test('a request without the token is refused', async () => {
  const res = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(res.status, 401);
  const api = await fetch(`http://127.0.0.1:${server.port}/api`);
  assert.equal(api.status, 401);
});

test('opens the app with the token and creates a project', async () => {
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  assert.equal(new URL(page.url()).search, '', 'the token is removed from the address bar');
  await page.getByTestId('create-dir').fill(path.join(tmp, 'case-17'));
  await page.getByLabel('Name').fill('Case 17');
  await page.getByTestId('create-project').click();
  await page.getByTestId('project-summary').waitFor();
  assert.match(await page.getByTestId('current-project').innerText(), /Case 17/);
});

test('imports a prompt file and searches it', async () => {
  const rows = Array.from({ length: 50 }, (_, i) => `${i},"${i % 10 === 3 ? 'the great wave off kanagawa' : 'a watercolor of a lighthouse'} #${i}","['http://example.invalid/${i}.jpg']"`);
  const file = path.join(tmp, 'membench.csv');
  writeFileSync(file, ',prompt,urls\n' + rows.join('\n') + '\n');
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-path').fill(file);
  await page.getByTestId('import-prompts').click();
  await page.getByTestId('prompt-set-count').filter({ hasText: '50' }).waitFor();
  await page.getByTestId('prompt-total').filter({ hasText: '50 prompts' }).waitFor();
  await page.getByTestId('prompt-search').fill('kanagawa');
  await page.getByTestId('prompt-total').filter({ hasText: '5 prompts' }).waitFor();
  assert.equal(await page.getByTestId('prompt-row').count(), 5);
  await page.screenshot({ path: path.join(results, 'e2e-prompts.png') });
});

test('a bad prompt file is refused with a message naming it, and the app keeps working', async () => {
  const bad = path.join(tmp, 'bad.csv');
  writeFileSync(bad, 'id,title\n1,x\n');
  await page.getByTestId('prompt-path').fill(bad);
  await page.getByTestId('import-prompts').click();
  const toast = page.getByTestId('error-toast').first();
  await toast.waitFor();
  assert.match(await toast.innerText(), /bad\.csv: no 'prompt' or 'caption' column/);
  assert.equal(await page.getByTestId('prompt-set').count(), 1);
});

test('runs the probe job and watches it finish', async () => {
  await page.getByTestId('nav-system').click();
  await page.getByTestId('run-probe').click();
  await page.locator('[data-testid="job-row"][data-kind="probe"][data-status="succeeded"]').waitFor({ timeout: 60_000 });
  await page.getByTestId('probe-result').waitFor();
  assert.match(await page.getByTestId('provider-cpu').innerText(), /available/);
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-search').fill('');
  await page.getByTestId('prompt-total').filter({ hasText: '50 prompts' }).waitFor();
  await page.screenshot({ path: path.join(results, 'e2e-probe.png') });
});

let passed = 0;
let failed = 0;
try {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(20_000);
  for (const t of tests) {
    try {
      await t.fn();
      passed++;
      console.log(`✓ ${t.name}`);
    } catch (err) {
      failed++;
      console.log(`✗ ${t.name}\n  ${err.stack ?? err}`);
      await page?.screenshot({ path: path.join(results, `e2e-failure-${failed}.png`) }).catch(() => {});
    }
  }
} finally {
  await browser?.close();
  server?.child.kill('SIGTERM');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
