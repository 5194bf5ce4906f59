// End-to-end: the real backend (`eidetic serve`) driven in Debian's Chromium through Playwright.
// Creates a project, imports prompt files (by path and through the browser's file picker), searches
// them, imports reference images, runs the probe job and watches it finish in the jobs panel, then
// stops the server and expects the connection-lost banner. Then it starts `eidetic serve --demo` and runs the
// Model page's registry (bundled models, adding a folder, a refused one), then the
// audit on the demo project: generate + match & cluster in the gallery, a SolidMark evaluation and a short
// trigger-prompt search. Screenshots land in test-results/.
// Run after `npm run build`: node tests/e2e/run.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';
import sharp from 'sharp';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const results = path.join(root, 'test-results');
mkdirSync(results, { recursive: true });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-e2e-'));
// Keep the run away from the user's own config and recent-projects list.
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };
const SLOW = 60_000; // two slow cores: be generous

function startServer(extraArgs = []) {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'serve', '--port', '0', '--json', ...extraArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s\n${stderr}`)), SLOW);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.trim().startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, ...JSON.parse(line) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}\n${stderr}`));
    });
  });
}

function stopServer(s) {
  if (!s || s.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    s.child.once('exit', () => resolve());
    s.child.kill('SIGTERM');
    setTimeout(() => s.child.kill('SIGKILL'), 10_000).unref();
  });
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
let server;
let browser;
let page;
const consoleErrors = [];

/** Screenshots should show the page, not notices: wait for information toasts to time out by themselves. */
async function settleToasts() {
  await page.getByTestId('info-toast').first().waitFor({ state: 'detached', timeout: SLOW }).catch(() => {});
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="info-toast"]').length === 0, null, { timeout: SLOW });
}

const PROMPTS = 50;
const KANAGAWA = Array.from({ length: PROMPTS }, (_, i) => i).filter((i) => i % 10 === 3).length;

test('the page is public; the API and project files need this launch\'s secrets, and no cookie is set', async () => {
  assert.match(server.url, /\/#token=/, 'the token travels in the fragment, which no request carries');
  const pageRes = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(pageRes.status, 200);
  assert.equal(pageRes.headers.get('set-cookie'), null, 'no cookie');
  for (const p of ['/api', `/files/thumb/${'0'.repeat(64)}`, `/files/nokey/thumb/${'0'.repeat(64)}`]) {
    const res = await fetch(`http://127.0.0.1:${server.port}${p}`);
    assert.ok([401, 403, 426].includes(res.status), `${p} answered ${res.status} without the images key`);
  }
  // A socket that does not present the token first is closed.
  const code = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: 'not-the-token' }));
    ws.onclose = (e) => resolve(e.code);
    ws.onerror = () => undefined;
  });
  assert.equal(code, 4401, `a wrong token closed the socket with ${code}`);
});

test('opens with the token, removes it from the address bar, and loads under the CSP', async () => {
  await page.goto(server.url);
  // The first screen says what Eidetic does and offers the demo audit.
  await page.getByRole('heading', { name: 'Start here', level: 1 }).waitFor();
  await page.getByTestId('start-demo-audit').waitFor();
  assert.equal(new URL(page.url()).search, '', 'the token is removed from the address bar');
  assert.doesNotMatch(new URL(page.url()).hash, /token/, 'the token is removed from the address bar');
  assert.deepEqual(await page.context().cookies(), [], 'no cookie is set');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('eidetic.token')), server.token, 'the token is kept for this tab');
  await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/, 'the CSP stays strict');
});

test('creates a project in a fresh folder', async () => {
  await page.getByTestId('nav-projects').click();
  await page.getByTestId('create-dir').fill(path.join(tmp, 'case-17'));
  await page.getByTestId('create-name').fill('Case 17');
  await page.getByTestId('create-project').click();
  await page.getByTestId('project-summary').waitFor();
  assert.match(await page.getByTestId('current-project').innerText(), /Case 17/);
});

test('imports a prompt file by path and searches it', async () => {
  const rows = Array.from({ length: PROMPTS }, (_, i) => `${i},"${i % 10 === 3 ? 'the great wave off kanagawa' : 'a watercolor of a lighthouse'} #${i}","['http://example.invalid/${i}.jpg']"`);
  const file = path.join(tmp, 'membench.csv');
  writeFileSync(file, ',prompt,urls\n' + rows.join('\n') + '\n');
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-path').fill(file);
  await page.getByTestId('import-prompts').click();
  await page.getByTestId('prompt-set').filter({ hasText: 'membench.csv' }).getByTestId('prompt-set-count').filter({ hasText: String(PROMPTS) }).waitFor();
  await page.getByTestId('prompt-total').filter({ hasText: `${PROMPTS} prompts` }).waitFor();
  assert.equal(await page.getByTestId('prompt-row').count(), PROMPTS);
  // Typed key by key: the list must settle on the filtered rows (debounced, stale answers dropped).
  await page.getByTestId('prompt-search').pressSequentially('kanagawa', { delay: 30 });
  await page.getByTestId('prompt-total').filter({ hasText: `${KANAGAWA} prompts match` }).waitFor();
  assert.equal(await page.getByTestId('prompt-row').count(), KANAGAWA);
  for (const text of await page.getByTestId('prompt-row').allInnerTexts()) assert.match(text, /kanagawa/);
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-prompts.png') });
});

test("imports a prompt file chosen in the browser's file picker", async () => {
  const content = ['a red bicycle against a brick wall', 'portrait of an astronaut, oil painting', 'a bowl of ramen, studio photo'].join('\n') + '\n';
  await page.getByTestId('prompt-file').setInputFiles({ name: 'picked.txt', mimeType: 'text/plain', buffer: Buffer.from(content) });
  await page.getByTestId('prompt-set').filter({ hasText: 'picked.txt' }).getByTestId('prompt-set-count').filter({ hasText: '3' }).waitFor();
  await page.getByTestId('prompt-total').filter({ hasText: '3 prompts' }).waitFor();
  assert.match(await page.getByTestId('prompt-row').first().innerText(), /red bicycle/);
});

test('a bad prompt file is refused with a readable message, and the app keeps working', async () => {
  const bad = path.join(tmp, 'bad.csv');
  writeFileSync(bad, 'id,title\n1,x\n');
  await page.getByTestId('prompt-path').fill(bad);
  await page.getByTestId('import-prompts').click();
  const toast = page.getByTestId('error-toast').first();
  await toast.waitFor();
  assert.match(await toast.innerText(), /bad\.csv/);
  await toast.getByRole('button', { name: 'Dismiss message' }).click();
  await toast.waitFor({ state: 'detached' });
  // An error does not follow the user to another page.
  await page.getByTestId('import-prompts').click();
  await page.getByTestId('error-toast').first().waitFor();
  await page.getByTestId('nav-references').click();
  await page.getByTestId('page-references').waitFor();
  assert.equal(await page.getByTestId('error-toast').count(), 0, 'errors are cleared on a page change');
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-set').nth(1).waitFor();
  assert.equal(await page.getByTestId('prompt-set').count(), 2);
  await page.getByTestId('prompt-set').filter({ hasText: 'membench.csv' }).click();
  await page.getByTestId('prompt-total').filter({ hasText: `${PROMPTS} prompts` }).waitFor();
});

test('imports a folder of reference images and shows their thumbnails and the skipped file', async () => {
  const dir = path.join(tmp, 'refs');
  mkdirSync(dir);
  const colours = [{ r: 200, g: 40, b: 40 }, { r: 40, g: 160, b: 60 }, { r: 30, g: 60, b: 200 }];
  for (const [i, background] of colours.entries()) {
    await sharp({ create: { width: 64 + i * 16, height: 48, channels: 3, background } }).png().toFile(path.join(dir, `ref-${i}.png`));
  }
  writeFileSync(path.join(dir, 'notes.png'), 'this is not an image');
  await page.getByTestId('nav-references').click();
  await page.getByTestId('refs-path').fill(dir);
  await page.getByTestId('import-refs').click();
  await page.getByTestId('refs-total').filter({ hasText: '3 images' }).waitFor({ timeout: SLOW });
  assert.equal(await page.getByTestId('ref-tile').count(), 3);
  assert.match(await page.getByTestId('ref-tile').filter({ hasText: 'ref-1.png' }).innerText(), /80×48/);
  await page.getByTestId('refs-skipped').filter({ hasText: 'notes.png' }).waitFor();
  // Thumbnails come from /files/<images key>/thumb/<sha256> (the key the socket was given) through the CSP's img-src.
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('[data-testid="ref-tile"] img')];
    return imgs.length === 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: SLOW });
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-references.png') });
});

test('the benchmark page checks the method list before anything runs', async () => {
  await page.getByTestId('nav-benchmark').click();
  await page.getByTestId('benchmark-methods').waitFor();
  assert.equal(await page.getByTestId('benchmark-methods').inputValue(), 'none,rna:1,rna:4,rta:1,rta:4,cwr,gni:0.1,ren:1.0,ren:1.3');
  await page.getByTestId('benchmark-methods').fill('none,foo');
  assert.match(await page.getByTestId('benchmark-methods-error').innerText(), /unknown mitigation method "foo"/);
  assert.equal(await page.getByTestId('start-benchmark').isDisabled(), true);
  await page.getByTestId('benchmark-methods').fill('none,rna:4');
  await page.getByTestId('benchmark-methods-error').waitFor({ state: 'detached' });
});

test('the navigation works from the keyboard', async () => {
  await page.getByTestId('nav-projects').focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByTestId('page-model').waitFor();
  await page.keyboard.press('Tab');
  await page.keyboard.press(' ');
  await page.getByTestId('page-prompts').waitFor();
  assert.equal(await page.getByTestId('nav-prompts').getAttribute('aria-current'), 'page');
});

test('runs the probe job: the jobs panel follows it to success and CPU is available', async () => {
  await page.getByTestId('nav-system').click();
  // Record every state the panel's probe row passes through, to see it live rather than only at the end.
  await page.evaluate(() => {
    window.__probeStates = [];
    const record = () => {
      const row = document.querySelector('[data-testid="job-row"][data-kind="probe"]');
      if (!row) return;
      const state = `${row.dataset.status} ${row.querySelector('progress')?.getAttribute('value') ?? '-'}`;
      if (window.__probeStates.at(-1) !== state) window.__probeStates.push(state);
    };
    new MutationObserver(record).observe(document.querySelector('[data-testid="jobs-panel"]'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  await page.getByTestId('run-probe').click();
  await page.locator('[data-testid="job-row"][data-kind="probe"][data-status="succeeded"]').waitFor({ timeout: 2 * SLOW });
  const states = await page.evaluate(() => window.__probeStates);
  console.log(`  probe row went through: ${states.join(' → ')}`);
  assert.ok(states.some((s) => /^(queued|running) /.test(s)), 'the panel showed the job before it finished');
  assert.match(states.at(-1), /^succeeded /);
  await page.getByTestId('probe-result').waitFor();
  // An unavailable provider gets one readable line: no C++ source locations, no stack.
  for (const detail of await page.locator('[data-testid^="provider-"][data-available="false"] [data-testid="provider-detail"]').allInnerTexts()) {
    assert.doesNotMatch(detail, /\.(cc|cpp|h):\d|\n|onnxruntime::/, `readable provider error: ${detail}`);
  }
  assert.match(await page.getByTestId('ort-version').innerText(), /^\d+\.\d+/);
  assert.equal(await page.getByTestId('provider-cpu').getAttribute('data-available'), 'true');
  assert.match(await page.getByTestId('provider-cpu').innerText(), /available/);
  await page.screenshot({ path: path.join(results, 'e2e-system.png') });
  // The screenshot the brief asks for: the project's prompts next to the finished probe job.
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-total').filter({ hasText: `${PROMPTS} prompts` }).waitFor();
  assert.equal(await page.locator('[data-testid="job-row"][data-kind="probe"][data-status="succeeded"]').count() >= 1, true);
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-probe.png') });
});

test('no Content-Security-Policy violations or page errors during the run', async () => {
  const violations = await page.evaluate(() => window.__cspViolations ?? []);
  assert.deepEqual(violations, []);
  assert.deepEqual(consoleErrors, []);
});

test('stopping the server shows the connection-lost banner', async () => {
  await stopServer(server);
  await page.getByTestId('connection-lost').waitFor({ timeout: SLOW });
  await page.getByTestId('link-state').filter({ hasText: 'Engine unreachable' }).waitFor();
});


// ---- The demo project: the audit pages against the real engine ----

/** Waits for the inline progress of the job a page started to reach `succeeded` (and fails fast on failure). */
async function waitForJob(kind, timeout) {
  const row = page.locator(`[data-testid="job-progress"][data-kind="${kind}"]`).last();
  await row.waitFor();
  await page.waitForFunction(
    (k) => {
      const el = [...document.querySelectorAll(`[data-testid="job-progress"][data-kind="${k}"]`)].at(-1);
      return el && ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(el.dataset.status);
    },
    kind,
    { timeout },
  );
  assert.equal(await row.getAttribute('data-status'), 'succeeded', `${kind} job: ${await row.innerText()}`);
}

test('opens the demo project with `eidetic serve --demo`', async () => {
  await page.close();
  server = await startServer(['--demo']);
  await openPage();
  await page.goto(server.url);
  await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  await page.getByTestId('current-project').filter({ hasText: /demo/i }).waitFor();
});

test('Start here: the demo audit runs as one job with its steps shown, ends in verdicts, and opens in the gallery', async () => {
  await page.getByTestId('nav-start').click();
  await page.getByRole('heading', { name: 'Start here', level: 1 }).waitFor();
  assert.match(await page.getByTestId('demo-estimate').innerText(), /20 prompts × 4 images × 50 steps/);
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-start.png') });
  // Record the steps' states as they change, to see each step run in turn.
  await page.evaluate(() => {
    window.__auditSteps = [];
    new MutationObserver(() => {
      const s = [...document.querySelectorAll('[data-testid="audit-step"]')].map((el) => el.dataset.state).join(',');
      if (s && window.__auditSteps.at(-1) !== s) window.__auditSteps.push(s);
    }).observe(document.querySelector('[data-testid="page-start"]'), { subtree: true, childList: true, attributes: true });
  });
  await page.getByTestId('start-demo-audit').click();
  await page.locator('[data-testid="audit-job"][data-status="succeeded"]').waitFor({ timeout: 15 * SLOW });
  const states = await page.evaluate(() => window.__auditSteps);
  console.log(`  audit steps went through: ${states.join(' → ')}`);
  assert.ok(states.includes('running,waiting,waiting'), 'the generate step was shown running');
  assert.ok(states.includes('done,running,waiting'), 'the match step was shown running after generation');
  assert.equal(states.at(-1), 'done,done,done');
  // Verdicts: one row per caption, each "likely memorized" with its reasons; the rule and "dense cluster" explained.
  await page.getByTestId('audit-verdicts').waitFor();
  assert.equal(await page.getByTestId('audit-verdict').count(), 20);
  assert.match(await page.getByTestId('audit-legend').innerText(), /dense cluster.*DBSCAN/s);
  for (const row of await page.locator('[data-testid="audit-verdict"][data-memorized="true"]').all()) assert.match(await row.locator('.why').innerText(), /copy threshold|near-identical/);
  const copies = (await page.locator('[data-testid="audit-verdict"] td.mono:nth-child(3)').allInnerTexts()).map((t) => Number(t.split('/')[0]));
  console.log(`  demo audit: ${await page.getByTestId('audit-flagged').innerText()} likely memorized; ${copies.filter((c) => c > 0).length}/20 captions with a copy`);
  assert.ok(copies.filter((c) => c > 0).length >= 10, 'most duplicated captions reproduce their training image');
  // The jobs dock: the audit's row shows its parameters; the list is bounded and scrolls on its own.
  const row = page.locator('[data-testid="job-row"][data-kind="audit"]').first();
  await row.getByTestId('job-expand').click();
  await row.getByTestId('job-details').filter({ hasText: 'promptSetId' }).waitFor();
  assert.match(await row.getByTestId('job-details').innerText(), /promptSetId\s+\d+[\s\S]*n\s+4/);
  assert.ok((await page.locator('[data-testid="jobs-panel"] .list').boundingBox()).height <= 201, 'the jobs list is bounded');
  await row.getByTestId('job-expand').click();
  await settleToasts();
  await page.getByTestId('audit-job').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: path.join(results, 'e2e-start-audit.png') });

  // The gallery on the audit's generations: flagged only, a lightbox with the reference, similarity order, a deep link.
  await page.getByTestId('audit-open-gallery').click();
  await page.getByTestId('gallery-total').filter({ hasText: /^80 generations/ }).waitFor({ timeout: SLOW });
  await page.getByTestId('gallery-flagged-only').check();
  await page.waitForFunction(() => {
    const n = document.querySelector('[data-testid="gallery-flagged"]')?.dataset.count;
    return n && document.querySelector('[data-testid="gallery-total"]')?.textContent?.startsWith(`${n} generations`);
  }, null, { timeout: SLOW });
  const tile = page.locator('[data-testid="gallery-tile"][data-flagged="true"]').first();
  const itemId = await tile.getAttribute('data-id');
  await tile.click();
  await page.getByTestId('open-lightbox').click();
  await page.getByTestId('lightbox').waitFor();
  await page.getByTestId('lightbox-zoom-4').click();
  await page.waitForFunction(() => {
    const [g, r] = ['lightbox-generated', 'lightbox-reference'].map((id) => document.querySelector(`[data-testid="${id}"]`));
    return g && r && g.complete && r.complete && g.naturalWidth > 0 && r.naturalWidth > 0 && g.getBoundingClientRect().width === 4 * g.naturalWidth;
  }, null, { timeout: SLOW });
  await page.screenshot({ path: path.join(results, 'e2e-lightbox.png') });
  await page.keyboard.press('Escape');
  await page.getByTestId('lightbox').waitFor({ state: 'detached' });
  await page.getByTestId('sort-similar').click();
  await page.getByTestId('similar-chip').waitFor();
  await page.waitForFunction((id) => document.querySelector('[data-testid="gallery-tile"]')?.dataset.id === id, itemId, { timeout: SLOW });
  assert.equal(await page.getByTestId('tile-similarity').first().innerText(), '1.00');
  // The address holds the view; a reload comes back to it.
  const hash = new URL(page.url()).hash;
  assert.match(hash, /^#\/gallery\?/);
  for (const part of ['flagged=1', `similar=${itemId}`, `item=${itemId}`]) assert.ok(hash.includes(part), `${part} in ${hash}`);
  await page.reload();
  await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  await page.getByTestId('similar-chip').waitFor({ timeout: SLOW });
  assert.ok(await page.getByTestId('gallery-flagged-only').isChecked());
  await page.getByTestId('gallery-detail').filter({ hasText: `Generation ${itemId}` }).waitFor({ timeout: SLOW });
  await page.waitForFunction((id) => document.querySelector('[data-testid="gallery-tile"]')?.dataset.id === id, itemId, { timeout: SLOW });
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-gallery-deeplink.png') });
  // Leave the gallery as the next tests expect it: no filter, no order by similarity, nothing open.
  await page.getByTestId('similar-chip').getByRole('button').click();
  await page.getByTestId('gallery-flagged-only').uncheck();
  await page.getByTestId('gallery-detail').getByRole('button', { name: 'Close detail' }).click();
  await page.getByTestId('gallery-job').selectOption('');
});

test("References: search by file name, a reference's detail with its hash and the generations that hit it; prompt sets renamed and deleted", async () => {
  await page.getByTestId('nav-references').click();
  await page.getByTestId('refs-search').fill('american-football');
  await page.getByTestId('refs-total').filter({ hasText: /^1 image match/ }).waitFor({ timeout: SLOW });
  await page.getByTestId('ref-tile').first().click();
  await page.getByTestId('ref-detail').waitFor();
  assert.match(await page.getByTestId('ref-hash').innerText(), /^[0-9a-f]{64}$/);
  // The audit's "american football" generations copy this training image: their matches hit it.
  await page.getByTestId('ref-match').first().waitFor({ timeout: SLOW });
  assert.match(await page.getByTestId('ref-match-count').innerText(), /\d+ generation match/);
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-reference-detail.png') });
  await page.getByTestId('refs-search').fill('');

  const file = path.join(tmp, 'a-prompt-set-with-a-rather-long-file-name-that-used-to-be-cut-off.txt');
  writeFileSync(file, 'a lighthouse at dusk\n');
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-path').fill(file);
  await page.getByTestId('import-prompts').click();
  const set = page.getByTestId('prompt-set').filter({ hasText: 'rather-long-file-name-that-used-to-be-cut-off.txt' });
  await set.waitFor();
  await set.click();
  await page.getByTestId('prompt-set-rename').click();
  await page.getByTestId('prompt-set-name').fill('lighthouse check');
  await page.getByTestId('prompt-set-rename-save').click();
  await page.getByTestId('prompt-set').filter({ hasText: 'lighthouse check' }).waitFor();
  await page.getByTestId('prompt-set-delete').click();
  await page.getByTestId('prompt-set-delete-confirm').click();
  await page.getByTestId('prompt-set').filter({ hasText: 'lighthouse check' }).waitFor({ state: 'detached' });
});

test('Model page: lists the bundled models, adds a model folder, refuses a folder that is not a model', async () => {
  await page.getByTestId('nav-model').click();
  await page.getByTestId('page-model').waitFor();
  const entry = (name) => page.locator(`[data-testid="model-entry"][data-name="${name}"]`);
  for (const [name, kind] of [['eidetic-demo-sd', 'text-to-image'], ['eidetic-demo-mlm', 'masked-lm'], ['eidetic-demo-sscd', 'descriptor']]) {
    await entry(name).waitFor({ timeout: SLOW });
    assert.equal(await entry(name).getByTestId('model-kind').innerText(), kind, `${name} is a ${kind} model`);
    assert.equal(await entry(name).getByTestId('model-source').innerText(), 'bundled');
    assert.ok((await entry(name).getByTestId('model-feature').count()) >= 1, `${name} serves at least one feature`);
    assert.equal(await entry(name).getByTestId('model-remove').count(), 0, 'bundled models cannot be removed');
  }
  // File hashes: collapsed, 16 hex characters shown, the full sha256 in the title.
  const sd = entry('eidetic-demo-sd');
  await sd.getByTestId('model-hashes').locator('summary').click();
  const hash = sd.getByTestId('model-hashes').locator('td[title]').first();
  assert.match(await hash.getAttribute('title'), /^[0-9a-f]{64}$/);
  assert.match(await hash.innerText(), /^[0-9a-f]{16}…$/);

  // A folder that does not exist: the message alone, said once (no empty component table, no "pad token null").
  const missing = path.join(tmp, 'no-such-model');
  await page.getByTestId('model-validate-path').fill(missing);
  await page.getByTestId('model-validate').click();
  await page.getByTestId('model-problem').waitFor({ timeout: SLOW });
  assert.equal(await page.getByTestId('model-problem').innerText(), '✗ no such folder');
  assert.equal(await page.getByTestId('model-report').locator('table').count(), 0);
  assert.equal(await page.getByTestId('model-report-facts').count(), 0);

  // The committed reference data (tests/fixtures/reference, the path tests/helpers/reference.ts resolves).
  const tinySd = path.join(root, 'tests', 'fixtures', 'reference', 'tiny-sd1', 'model');
  await page.getByTestId('model-add-path').fill(tinySd);
  await page.getByTestId('model-add').click();
  const added = page.locator('[data-testid="model-entry"][data-source="user"]').filter({ hasText: tinySd });
  await added.waitFor({ timeout: SLOW });
  assert.equal(await added.getAttribute('data-kind'), 'text-to-image');
  assert.equal(await added.getByTestId('model-kind').innerText(), 'text-to-image');
  assert.equal(await added.getByTestId('model-source').innerText(), 'user');
  await added.getByTestId('model-remove').waitFor();

  await page.getByTestId('model-add-path').fill(path.join(root, 'docs'));
  await page.getByTestId('model-add').click();
  await page.getByTestId('model-add-error').waitFor({ timeout: SLOW });
  assert.match(await page.getByTestId('model-add-error').innerText(), /docs/);
  const toast = page.getByTestId('error-toast').first();
  await toast.waitFor();
  assert.equal(await page.locator('[data-testid="model-entry"][data-source="user"]').count(), 1, 'the refused folder is not listed');
  await toast.getByRole('button', { name: 'Dismiss message' }).click();
  await settleToasts();
  // A tall window for the shot, so that all four models (and the refusal) fit in it.
  await page.setViewportSize({ width: 1280, height: 2000 });
  await page.getByTestId('model-registry').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: path.join(results, 'e2e-models.png') });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Remove the user model again so the rest of the demo run sees only the bundled models.
  await added.getByTestId('model-remove').click();
  await added.waitFor({ state: 'detached', timeout: SLOW });
  assert.equal(await page.locator('[data-testid="model-entry"][data-source="user"]').count(), 0);
});

test('gallery: generates duplicated and singleton captions, matches and clusters them, and flags copies at the calibrated threshold', async () => {
  // 20 singleton captions (trained on once each) beside the duplicated ones: their generations copy nothing.
  const singletonFile = path.join(tmp, 'singletons-e2e.txt');
  writeFileSync(singletonFile, readFileSync(path.join(root, 'native-models/demo/dataset/prompts-singletons.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 20).join('\n') + '\n');
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('prompt-path').fill(singletonFile);
  await page.getByTestId('import-prompts').click();
  await page.getByTestId('prompt-set').filter({ hasText: 'singletons-e2e.txt' }).waitFor();
  await page.getByTestId('nav-gallery').click();
  // 4 images per prompt by default, as the audit makes: enough for a prompt's near-identical images to cluster (3).
  assert.equal(await page.getByTestId('generate-n').inputValue(), '4');
  const generate = async (setName) => {
    const setOption = page.getByTestId('generate-set').locator('option', { hasText: setName });
    await setOption.waitFor({ state: 'attached' });
    await page.getByTestId('generate-set').selectOption({ label: await setOption.innerText() });
    // With 2 images per prompt the form says no cluster can form (the default, 4, is checked below).
    await page.getByTestId('generate-n').fill('2');
    await page.getByTestId('generate-cluster-note').waitFor();
    await page.getByTestId('generate-steps').fill('20');
    const progress = '[data-testid="job-progress"][data-kind="generate"]';
    const previous = (await page.locator(progress).count()) ? await page.locator(progress).last().getAttribute('data-job-id') : null;
    await page.getByTestId('start-generate').click();
    // The form's progress line is reused: wait for it to follow the new job before waiting for that job.
    await page.waitForFunction(([sel, prev]) => { const el = [...document.querySelectorAll(sel)].at(-1); return el && el.dataset.jobId !== prev; }, [progress, previous], { timeout: SLOW });
    await waitForJob('generate', 10 * SLOW);
    return page.locator(progress).last().getAttribute('data-job-id');
  };
  const duplicatedJob = await generate('demo: duplicated captions (memorized)');
  const singletonJob = await generate('singletons-e2e.txt');
  assert.notEqual(duplicatedJob, singletonJob);
  await page.getByTestId('gallery-tile').first().waitFor();
  await page.getByTestId('start-match').click();
  await waitForJob('match', 5 * SLOW);
  // The default threshold is the descriptor's calibrated one (its manifest), read from the match job.
  const manifest = JSON.parse(readFileSync(path.join(root, 'native-models/demo/sscd-demo/manifest.json'), 'utf8'));
  await page.getByTestId('threshold-value').filter({ hasText: manifest.threshold.toFixed(3) }).waitFor({ timeout: SLOW });
  const flaggedCount = async () => {
    await page.waitForFunction(() => document.querySelector('[data-testid="gallery-flagged"]')?.dataset.count !== '', null, { timeout: SLOW });
    return Number(await page.getByTestId('gallery-flagged').getAttribute('data-count'));
  };
  // Per generate job, through the gallery's job filter.
  const jobTotal = async (jobId, prompts) => {
    await page.getByTestId('gallery-job').selectOption(jobId);
    await page.getByTestId('gallery-total').filter({ hasText: '40 generations' }).waitFor({ timeout: SLOW });
    await page.waitForFunction(
      (list) => list.some((p) => document.querySelector('[data-testid="gallery-tile"]')?.getAttribute('aria-label')?.includes(p)),
      prompts,
      { timeout: SLOW },
    );
    return flaggedCount();
  };
  const singletonPrompts = readFileSync(singletonFile, 'utf8').split('\n').filter(Boolean);
  const duplicatedPrompts = readFileSync(path.join(root, 'native-models/demo/dataset/prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean);
  const singletonFlags = await jobTotal(singletonJob, singletonPrompts);
  const duplicatedFlags = await jobTotal(duplicatedJob, duplicatedPrompts);
  console.log(`  flagged at ${manifest.threshold}: ${duplicatedFlags}/40 duplicated-caption generations, ${singletonFlags}/40 singleton generations`);
  assert.ok(singletonFlags <= 6, `singleton generations are mostly not flagged (${singletonFlags}/40)`);
  assert.ok(duplicatedFlags >= 20, `most duplicated-caption generations are flagged (${duplicatedFlags}/40)`);
  // "Prompt contains" filters the grid (it once sent no request at all): one caption's 2 generations, then all 40 again.
  const probe = duplicatedPrompts[0];
  const containing = duplicatedPrompts.filter((p) => p.toLowerCase().includes(probe.toLowerCase())).length;
  await page.getByTestId('gallery-filter').fill(probe);
  await page.getByTestId('gallery-total').filter({ hasText: `${2 * containing} generations` }).waitFor({ timeout: SLOW });
  await page.getByTestId('gallery-filter').fill('');
  await page.getByTestId('gallery-total').filter({ hasText: '40 generations' }).waitFor({ timeout: SLOW });
  // Flags are live: tiles whose best match reaches the calibrated threshold wear a "copy" badge.
  const flagged = page.locator('[data-testid="gallery-tile"][data-flagged="true"]');
  await flagged.first().waitFor({ timeout: SLOW });
  assert.match(await flagged.first().getByTestId('copy-badge').innerText(), /copy \d\.\d\d/);
  await flagged.first().click();
  await page.getByTestId('gallery-detail').getByTestId('match-file').first().waitFor({ timeout: SLOW });
  assert.match(await page.getByTestId('match-file').first().innerText(), /\S+\.\w+$/, 'the detail names the matched reference file');
  await page.getByTestId('provenance').waitFor();
  // Keyboard: arrows move the active tile, Escape closes the detail, Enter opens it again.
  await page.getByTestId('gallery-grid').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Escape');
  await page.getByTestId('gallery-detail').waitFor({ state: 'detached' });
  await page.keyboard.press('Enter');
  await page.getByTestId('gallery-detail').getByTestId('match-file').first().waitFor({ timeout: SLOW });
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-gallery-matches.png') });
});

test("SolidMark: counts by group against chance from each image's own keys, presets, additive reruns, histogram and tiles", async () => {
  await page.getByTestId('nav-solidmark').click();
  // The paper's protocol is the default preset; the quick one keeps this run short.
  assert.equal(await page.getByTestId('solidmark-preset').inputValue(), 'paper');
  assert.deepEqual([await page.getByTestId('solidmark-steps').inputValue(), await page.getByTestId('solidmark-guidance').inputValue(), await page.getByTestId('solidmark-repeats').inputValue()], ['100', '3', '10']);
  await page.getByTestId('solidmark-preset').selectOption('quick');
  assert.equal(await page.getByTestId('solidmark-steps').inputValue(), '20');
  await page.getByTestId('solidmark-queries').fill('6');
  await page.getByTestId('solidmark-select').selectOption('stratified');
  await page.getByTestId('start-solidmark').click();
  await waitForJob('solidmark', 10 * SLOW);
  await page.getByTestId('solidmark-counts').waitFor({ timeout: SLOW });
  await page.waitForFunction(() => document.querySelector('[data-testid="solidmark-total"]')?.textContent?.includes('(6)'), null, { timeout: SLOW });
  const firstRow = (group) => page.locator(`[data-testid="solidmark-count-row"][data-group="${group}"]`).first();
  // Chance within 0.1 from each image's own keys: 3 duplicated images with 100 keyed copies each are within 0.1 of a key
  // almost surely (chance ~3, not 3 x 0.19); 3 singletons with one key each, at most 3 x 0.2.
  const dupChance = Number(await firstRow('duplicated').getByTestId('solidmark-chance').innerText());
  assert.ok(dupChance > 2.97, `duplicated images' chance within 0.1 is ~3 (got ${dupChance})`);
  const singleChance = Number(await firstRow('singletons').getByTestId('solidmark-chance').innerText());
  assert.ok(singleChance > 0.3 && singleChance <= 0.6, `singletons' chance within 0.1 is between 3 x 0.1 and 3 x 0.2 (got ${singleChance})`);
  // Three duplicated images cannot beat a chance of ~3: the page must not claim they do.
  assert.equal(await page.locator('[data-testid="solidmark-group"][data-group="duplicated"]').getAttribute('data-above-chance'), 'false');
  assert.equal(await page.locator('[data-testid="solidmark-group"][data-group="duplicated"]').getByTestId('solidmark-verdict').innerText(), 'consistent with chance');
  // Rerun with 6 singletons: the sample keeps the 3 already scored and adds 3, under the same settings.
  await page.getByTestId('solidmark-select').selectOption('singletons');
  await page.getByTestId('start-solidmark').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="solidmark-total"]')?.textContent?.includes('(9)'), null, { timeout: 10 * SLOW });
  await page.getByTestId('error-histogram').waitFor();
  assert.equal(await page.getByTestId('histogram-bar').count(), 20);
  await page.getByTestId('solidmark-tile').first().waitFor();
  await settleToasts();
  await page.getByTestId('solidmark-counts').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: path.join(results, 'e2e-solidmark.png') });
});

test('Search: 2 chains × 5 iterations draw their live chart and best prompts, and the run finishes', async () => {
  await page.getByTestId('nav-search').click();
  await page.getByTestId('search-chains').fill('2');
  await page.getByTestId('search-iterations').fill('5');
  await page.getByTestId('search-q').fill('16');
  await page.getByTestId('search-l').fill('4');
  await page.getByTestId('start-search').click();
  await page.getByTestId('search-chart').waitFor({ timeout: SLOW });
  await page.locator('[data-testid="search-run-detail"][data-status="succeeded"]').waitFor({ timeout: 10 * SLOW });
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="search-chart"]')?.dataset.points) > 0, null, { timeout: SLOW });
  assert.equal(await page.getByTestId('search-best-row').count(), 2, 'one best prompt per chain');
  assert.ok((await page.locator('[data-testid="search-chart"] canvas').count()) > 0, 'the chart is drawn');
  await settleToasts();
  // The content column scrolls, not the page: bring the chart and the best prompts into the shot.
  await page.getByTestId('search-run-detail').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: path.join(results, 'e2e-search.png') });
  // The runs table has the run's chains and iterations.
  const runRow = page.locator('[data-testid="search-run"]').first();
  assert.equal(await runRow.getByTestId('search-run-chains').innerText(), '2');
  assert.match(await runRow.getByTestId('search-run-iterations').innerText(), /^5\s*\/\s*5$/);
  // No near-duplicates among the best prompts: none shares a word with another.
  const tops = (await page.getByTestId('search-top').allInnerTexts()).map((t) => new Set(t.replace(/^[\d.]+\s+/, '').replace(/\s*\+\d+ similar$/, '').split(/\s+/)));
  for (let i = 0; i < tops.length; i++) for (let j = i + 1; j < tops.length; j++) assert.ok(![...tops[i]].some((w) => tops[j].has(w)), 'collapsed best prompts');

  // Verify exactly the listed prompts, then confirm a finding: the end of the demo audit.
  await page.getByTestId('verify-top').fill('2');
  await page.getByTestId('verify-images').fill('4');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="verify-plan-prompt"]').length === 2, null, { timeout: SLOW });
  const planned = (await page.getByTestId('verify-plan-prompt').allInnerTexts()).map((t) => t.replace(/^\S+\s+/, '').trim());
  await page.getByTestId('verify-search').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="search-candidate"] [data-testid="candidate-verdict"]').length === 2, null, { timeout: 10 * SLOW });
  const verified = (await page.locator('[data-testid="search-candidate"] q').allInnerTexts()).map((t) => t.trim());
  assert.deepEqual([...verified].sort(), [...planned].sort(), 'verification tested the listed prompts');
  const candidate = page.getByTestId('search-candidate').first();
  await candidate.getByLabel('Decision note').fill('reproduces a training image (e2e)');
  await candidate.getByTestId('confirm-candidate').click();
  await page.locator('[data-testid="search-candidate"][data-decision="confirmed"]').waitFor({ timeout: SLOW });
  await settleToasts();
  await page.locator('[data-testid="search-candidate"][data-decision="confirmed"]').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  await page.screenshot({ path: path.join(results, 'e2e-search-confirmed.png') });

  // A stopped search reads "stopped" (it resumes from its last iteration), not "cancelled"; defaults are the CLI's.
  assert.match(await page.getByTestId('search-defaults-note').innerText(), /MemBench/);
  await page.getByTestId('search-iterations').fill('150');
  await page.getByTestId('start-search').click();
  await page.waitForFunction(() => {
    const row = document.querySelector('[data-testid="search-run"]');
    return row?.dataset.status === 'running' && Number(row.querySelector('[data-testid="search-run-iterations"]')?.textContent?.split('/')[0]) >= 1;
  }, null, { timeout: 5 * SLOW });
  await page.getByTestId('stop-search').click();
  await page.getByTestId('search-run-status').filter({ hasText: /^stopped$/ }).waitFor({ timeout: SLOW });
  await page.locator('[data-testid="job-row"][data-kind="search"][data-status="cancelled"] .status').filter({ hasText: /^stopped$/ }).first().waitFor();
});

test('Detection: scores and ROC survive leaving the page and a reload; a job row opens its result', async () => {
  await page.getByTestId('nav-detection').click();
  // The model comes from the registry (the demo project's model is preselected); a folder can still be typed.
  await page.getByTestId('detect-model').locator('option', { hasText: 'eidetic-demo-sd' }).waitFor({ state: 'attached' });
  assert.equal(await page.getByTestId('detect-model').inputValue(), path.join(root, 'native-models/demo/sd-demo'));
  const pick = async (testid, name) => {
    const option = page.getByTestId(testid).locator('option', { hasText: name });
    await option.waitFor({ state: 'attached' });
    await page.getByTestId(testid).selectOption({ label: await option.innerText() });
  };
  await pick('detect-set', 'singletons-e2e.txt');
  await page.getByTestId('detect-noises').fill('1');
  await page.getByTestId('start-detect').click();
  await page.locator('[data-testid="detect-row"]').nth(19).waitFor({ timeout: 5 * SLOW });
  const scored = await page.getByTestId('detection-results').getAttribute('data-job-id');
  await pick('roc-negative-set', 'singletons-e2e.txt');
  await pick('detect-set', 'demo: duplicated captions (memorized)');
  await page.getByTestId('start-roc').click();
  await page.getByTestId('roc-summary').waitFor({ timeout: 5 * SLOW });
  // The labelled run is stored in the project as an evaluation, listed and selected; its ROC is the one drawn.
  await page.locator('[data-testid="roc-summary"]:not([data-evaluation-id=""])').waitFor({ timeout: SLOW });
  const evaluationId = await page.getByTestId('roc-summary').getAttribute('data-evaluation-id');
  await page.locator(`[data-testid="roc-evaluation"][data-evaluation-id="${evaluationId}"][data-selected="true"]`).waitFor();
  const storedAuc = await page.locator(`[data-testid="roc-evaluation"][data-evaluation-id="${evaluationId}"] [data-testid="roc-evaluation-auc"]`).innerText();
  assert.match(await page.getByTestId('roc-summary').innerText(), new RegExp(`AUC ${storedAuc}`));
  // The legend names the curve's values FPR and TPR (uPlot's defaults said "Value" and the series name).
  const legend = await page.getByTestId('roc-plot').locator('.u-legend').innerText();
  assert.match(legend, /FPR/);
  assert.match(legend, /TPR/);
  assert.doesNotMatch(legend, /value|detection score/i);
  // Verdicts: the labelled run's threshold, its operating point on the ROC, the two sets' histograms with it,
  // "likely memorized" labels, the occlusion legend's neighbour, and t explained.
  await page.getByTestId('detect-operating-point').waitFor();
  assert.match(await page.getByTestId('detect-operating-point').getAttribute('data-rule'), /^(fpr|youden)$/);
  assert.notEqual(await page.getByTestId('roc-plot').getAttribute('data-point'), '', 'the operating point is drawn on the ROC');
  await page.getByTestId('histogram-threshold').waitFor({ state: 'attached' }); // a zero-width line: attached, not "visible"
  assert.equal(await page.getByTestId('histogram-positive').count(), 24);
  assert.match(await page.getByTestId('timestep-note').innerText(), /t = \d+/);
  // The scored set (the singletons) next to the labelled run's threshold: few, if any, are labelled.
  const singletonsFlagged = await page.locator('[data-testid="detect-row"][data-memorized="true"]').count();
  console.log(`  detection verdicts: ${singletonsFlagged}/20 singleton captions likely memorized at ${await page.getByTestId('detect-operating-point').locator('strong').first().innerText()}`);
  // A typed threshold above every score labels nothing; the labelled run's comes back with one click.
  await page.getByTestId('detect-threshold').fill('1e9');
  await page.getByTestId('detect-threshold-apply').click();
  await page.locator('[data-testid="detect-operating-point"][data-rule="user"]').waitFor();
  assert.equal(await page.locator('[data-testid="detect-row"][data-memorized="true"]').count(), 0);
  await page.getByTestId('detect-threshold-reset').click();
  await page.locator('[data-testid="detect-operating-point"]:not([data-rule="user"])').waitFor();
  await settleToasts();
  await page.getByTestId('detection-verdicts').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: path.join(results, 'e2e-detection-verdicts.png') });

  // Away and back: the same scores, the ROC and the form's values.
  await page.getByTestId('nav-prompts').click();
  await page.getByTestId('page-prompts').waitFor();
  await page.getByTestId('nav-detection').click();
  await page.getByTestId('roc-summary').waitFor();
  assert.equal(await page.getByTestId('detection-results').getAttribute('data-job-id'), scored);
  assert.equal(await page.getByTestId('detect-noises').inputValue(), '1');
  assert.equal(await page.getByTestId('detect-row').count(), 20);

  // A reload forgets everything but the project: the latest scoring of a prompt set comes back from it.
  await page.reload();
  await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  await page.getByTestId('nav-detection').click();
  await page.locator(`[data-testid="detection-results"][data-job-id="${scored}"]`).waitFor({ timeout: SLOW });
  assert.equal(await page.getByTestId('detect-row').count(), 20);
  // The stored evaluation comes back from the project after the reload, selected, with its ROC drawn.
  await page.locator(`[data-testid="roc-evaluation"][data-evaluation-id="${evaluationId}"][data-selected="true"]`).waitFor({ timeout: SLOW });
  await page.locator(`[data-testid="roc-summary"][data-evaluation-id="${evaluationId}"]`).waitFor();
  await page.getByTestId('roc-plot').locator('canvas').first().waitFor();
  assert.match(await page.getByTestId('roc-summary').innerText(), new RegExp(`AUC ${storedAuc}`));
  console.log(`  detection evaluation ${evaluationId} stored and redrawn after a reload: AUC ${storedAuc}`);

  // A typed threshold stored on the evaluation: origin "typed", its TPR/FPR recomputed; a label; a delete asked twice.
  const row = page.locator(`[data-testid="roc-evaluation"][data-evaluation-id="${evaluationId}"]`);
  assert.match(await row.getByTestId('roc-evaluation-origin').getAttribute('data-rule'), /^(fpr|youden)$/);
  await page.getByTestId('detect-threshold').fill('1e9');
  await page.getByTestId('detect-threshold-apply').click();
  await page.getByTestId('store-threshold').click();
  await row.locator('[data-testid="roc-evaluation-origin"][data-rule="user"]').waitFor({ timeout: SLOW });
  assert.equal(await row.getByTestId('roc-evaluation-threshold').innerText(), '1000000000.0000');
  assert.match(await row.getByTestId('roc-evaluation-origin').innerText(), /typed by the analyst \(TPR 0\.000, FPR 0\.000\)/);
  await page.locator('[data-testid="stored-threshold"][data-rule="user"]').waitFor();
  await page.getByTestId('roc-evaluation-rename').click();
  await page.getByTestId('roc-evaluation-label-input').fill('e2e labelled run');
  await page.getByTestId('roc-evaluation-label-save').click();
  await row.getByTestId('roc-evaluation-label').filter({ hasText: 'e2e labelled run' }).waitFor();
  await page.reload();
  await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  await page.getByTestId('nav-detection').click();
  await row.locator('[data-testid="roc-evaluation-origin"][data-rule="user"]').waitFor({ timeout: SLOW });
  assert.equal(await row.getByTestId('roc-evaluation-label').innerText(), 'e2e labelled run');
  await page.getByTestId('roc-evaluation-delete').click();
  assert.equal(await row.count(), 1, 'nothing is deleted before the confirmation');
  await page.getByTestId('roc-evaluation-delete-confirm').click();
  await row.waitFor({ state: 'detached', timeout: SLOW });
  console.log(`  detection evaluation ${evaluationId}: typed threshold stored (origin user), labelled, deleted after confirmation`);

  // The jobs dock: a generate job's row opens the gallery filtered to that job; a detect job's the Detection page.
  // One of the gallery test's generate jobs (20 captions × 2 images × 20 steps = 800 steps), not the search verification's.
  const generateRow = page.locator('[data-testid="job-row"][data-kind="generate"][data-status="succeeded"]').filter({ hasText: '800/800' }).first();
  const generateId = await generateRow.getAttribute('data-job-id');
  await generateRow.getByTestId('job-open').click();
  await page.getByTestId('page-gallery').waitFor();
  await page.waitForFunction((id) => document.querySelector('[data-testid="gallery-job"]')?.value === id, generateId, { timeout: SLOW });
  await page.getByTestId('gallery-total').filter({ hasText: '40 generations' }).waitFor({ timeout: SLOW });
  await page.locator(`[data-testid="job-row"][data-job-id="${scored}"]`).getByTestId('job-open').click();
  await page.locator(`[data-testid="detection-results"][data-job-id="${scored}"]`).waitFor({ timeout: SLOW });
});

test('Gallery: filters and slider are kept across visits, the export box keeps its width, Projects counts follow new generations', async () => {
  await page.getByTestId('nav-gallery').click();
  await page.getByTestId('gallery-job').selectOption('');
  await page.getByTestId('gallery-sort').selectOption('prompt');
  await page.getByTestId('gallery-filter').fill('a');
  await page.waitForFunction(() => document.querySelector('[data-testid="gallery-total"]')?.textContent?.includes('generations'), null, { timeout: SLOW });
  await page.getByTestId('nav-solidmark').click();
  await page.getByTestId('page-solidmark').waitFor();
  await page.getByTestId('nav-gallery').click();
  assert.equal(await page.getByTestId('gallery-sort').inputValue(), 'prompt');
  assert.equal(await page.getByTestId('gallery-filter').inputValue(), 'a');
  await page.getByTestId('gallery-filter').fill('');
  // Projects and the gallery (no filter) agree on the number of generations, without a reload.
  await page.getByTestId('nav-projects').click();
  const generations = Number(await page.getByTestId('project-count-generations').getAttribute('data-count'));
  await page.getByTestId('nav-gallery').click();
  await page.getByTestId('gallery-total').filter({ hasText: new RegExp(`^${generations} generations`) }).waitFor({ timeout: SLOW });
  await page.getByTestId('gallery-tile').first().waitFor({ timeout: SLOW });

  // Export one generation: the folder box is as wide afterwards as before. Opening a tile does not select it;
  // its tick box does.
  await page.getByTestId('gallery-tile').first().click();
  await page.getByTestId('gallery-total').filter({ hasText: '0 selected' }).waitFor();
  await page.getByTestId('tile-select').first().check();
  await page.getByTestId('gallery-total').filter({ hasText: '1 selected' }).waitFor();
  const before = (await page.getByTestId('export-dir').boundingBox()).width;
  await page.getByTestId('export-dir').fill(path.join(tmp, 'export-e2e'));
  await page.getByTestId('export').click();
  await page.getByTestId('export-done').waitFor({ timeout: SLOW });
  const after = (await page.getByTestId('export-dir').boundingBox()).width;
  assert.ok(after >= Math.min(before, 240) && after > 200, `the export box keeps its width (${before}px before, ${after}px after)`);

  // A new generate job: Projects counts its generations without a reload.
  const setOption = page.getByTestId('generate-set').locator('option', { hasText: 'singletons-e2e.txt' });
  await setOption.waitFor({ state: 'attached' });
  await page.getByTestId('generate-set').selectOption({ label: await setOption.innerText() });
  await page.getByTestId('generate-n').fill('1');
  await page.getByTestId('generate-steps').fill('5');
  const progress = '[data-testid="job-progress"][data-kind="generate"]';
  const previous = (await page.locator(progress).count()) ? await page.locator(progress).last().getAttribute('data-job-id') : null;
  await page.getByTestId('start-generate').click();
  await page.waitForFunction(([sel, prev]) => { const el = [...document.querySelectorAll(sel)].at(-1); return el && el.dataset.jobId !== prev; }, [progress, previous], { timeout: SLOW });
  await waitForJob('generate', 5 * SLOW);
  await page.getByTestId('nav-projects').click();
  await page.locator(`[data-testid="project-count-generations"][data-count="${generations + 20}"]`).waitFor({ timeout: SLOW });
  await settleToasts();
});

test('Reports: a generation confirmed in the gallery becomes a finding of a signed report exported from the Reports page', async () => {
  await page.getByTestId('nav-gallery').click();
  // The newest generations (the singletons just made) fill the first page: show the flagged ones only.
  await page.getByTestId('gallery-flagged-only').check();
  const flagged = page.locator('[data-testid="gallery-tile"][data-flagged="true"]');
  await flagged.first().waitFor({ timeout: SLOW });
  await flagged.first().click();
  await page.getByTestId('decision-note').fill('copy of the training image (e2e)');
  await page.getByTestId('decision-confirm').click();
  await page.getByTestId('decision-state').filter({ hasText: 'confirmed' }).waitFor({ timeout: SLOW });
  await page.getByTestId('nav-reports').click();
  await page.getByTestId('report-operator').fill('E2E Operator');
  await page.getByTestId('report-case').fill('E2E-1');
  await page.getByTestId('report-preview').click();
  await page.getByTestId('preview-finding').filter({ hasText: 'copy of the training image (e2e)' }).waitFor({ timeout: SLOW });
  const out = path.join(tmp, 'report-e2e');
  await page.getByTestId('report-out').fill(out);
  await page.getByTestId('report-export').click();
  await page.getByTestId('report-created').waitFor({ timeout: 3 * SLOW });
  const fingerprint = await page.getByTestId('report-fingerprint').innerText();
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  await page.getByTestId('report-row').filter({ hasText: 'E2E-1' }).waitFor({ timeout: SLOW });
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.signature.fingerprint, fingerprint);
  assert.ok(manifest.files.some((f) => f.path === 'report.pdf') && manifest.files.some((f) => f.path.startsWith('images/generations/')));
  assert.match(readFileSync(path.join(out, 'report.html'), 'utf8'), /copy of the training image \(e2e\)/);
  // Reproduce from the past report's row: verified, regenerated on CPU, every image bitwise equal; live in the jobs dock.
  const reportImages = JSON.parse(readFileSync(path.join(out, 'data', 'report.json'), 'utf8')).images.length;
  assert.ok(reportImages >= 1);
  await page.getByTestId('reproduce-model').fill(path.join(root, 'native-models/demo/sd-demo'));
  await page.getByTestId('report-row').filter({ hasText: 'E2E-1' }).getByTestId('report-reproduce').click();
  assert.equal(await page.getByTestId('reproduce-bundle').inputValue(), out);
  await waitForJob('reproduce', 5 * SLOW);
  // The jobs dock lists it, finished.
  await page.locator('[data-testid="job-row"][data-kind="reproduce"][data-status="succeeded"]').first().waitFor({ timeout: SLOW });
  await page.getByTestId('reproduce-result').waitFor({ timeout: SLOW });
  assert.equal(await page.locator('[data-testid="reproduce-row"][data-status="equal"]').count(), reportImages);
  assert.match(await page.getByTestId('reproduce-summary').innerText(), new RegExp(`^${reportImages} bitwise equal, 0 within 1e-3, 0 different, 0 failed`));
  assert.ok(existsSync(path.join(`${out}.reproduce`, 'reproduce.json')));
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-reports.png') });
  await page.getByTestId('nav-gallery').click();
  await page.getByTestId('gallery-flagged-only').uncheck();
});

test('Benchmark: a small table on the demo, its trade-off plot, the drill-down with each setting\'s images, and the Wen row\'s summary with its prompts', async () => {
  await page.getByTestId('nav-benchmark').click();
  await page.getByTestId('benchmark-methods').fill('none,ren:1.3,wen:0.352');
  await page.getByTestId('benchmark-trigger-prompts').fill('2');
  await page.getByTestId('benchmark-general-prompts').fill('1');
  await page.getByTestId('start-benchmark').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="benchmark-row"]').length === 3, null, { timeout: SLOW * 2 });
  const rows = await page.getByTestId('benchmark-row').allInnerTexts();
  assert.match(rows[0], /^none/);
  assert.match(rows[1], /^Ren\s+c=1.3/);
  assert.match(rows[2], /^Wen\s+l=0.352/);
  assert.match(await page.getByTestId('benchmark-clip-note').innerText(), /original prompt/);
  assert.match(await page.getByTestId('benchmark-aesthetic-note').innerText(), /no aesthetic predictor/);
  // The Wen row (and only it) has its summary line: 2 trigger + 1 general prompts.
  await page.getByTestId('benchmark-wen-summary').waitFor({ timeout: SLOW });
  assert.equal(await page.getByTestId('benchmark-wen-row').count(), 1);
  const summary = await page.getByTestId('benchmark-wen-summary').innerText();
  const m = /^(\d)\/3 reached l = 0\.352 · norm (\d\.\d{3}) -> (\d\.\d{3}) · (\d+\.\d) updates · \d+\.\d\d s\/prompt$/.exec(summary);
  assert.ok(m, summary);
  assert.ok(Number(m[3]) < Number(m[2]), `the optimisation lowers the norm: ${summary}`);
  assert.match(await page.getByTestId('benchmark-wen-legend').getAttribute('title'), /below the target l\. Detection norm: mean over the prompt's images of/);
  assert.match(await page.getByTestId('benchmark-wen-note').innerText(), /Detection norm/);
  // Expanded: one line per prompt, whose figures give the summary.
  await page.getByTestId('benchmark-wen-toggle').click();
  await page.getByTestId('benchmark-wen-prompts').waitFor();
  const prompts = await page.getByTestId('benchmark-wen-prompt').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
  assert.equal(prompts.length, 3);
  assert.deepEqual(prompts.map((p) => p[0]), ['trigger', 'trigger', 'general']);
  assert.equal(prompts.filter((p) => p[6] === 'yes').length, Number(m[1]));
  const meanOf = (i) => prompts.reduce((s, p) => s + Number(p[i]), 0) / prompts.length;
  assert.ok(Math.abs(meanOf(3) - Number(m[2])) < 0.0011, `norm before ${meanOf(3)} vs ${m[2]}`);
  assert.ok(Math.abs(meanOf(4) - Number(m[3])) < 0.0011, `norm after ${meanOf(4)} vs ${m[3]}`);
  assert.ok(Math.abs(meanOf(5) - Number(m[4])) < 0.051, `updates ${meanOf(5)} vs ${m[4]}`);
  await page.locator('[data-testid="benchmark-tradeoff"] canvas').waitFor();
  await page.waitForFunction(() => {
    const drill = [...document.querySelectorAll('[data-testid="benchmark-drill-row"]')];
    return drill.length === 3 && drill.every((d) => [...d.querySelectorAll('img')].length === 4 && [...d.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0));
  }, null, { timeout: SLOW });
  await settleToasts();
  await page.screenshot({ path: path.join(results, 'e2e-benchmark.png'), fullPage: true });
});

test('every page shows its data within 1 s on the demo project (timed, with a screenshot of each)', async () => {
  const pages = [
    ['start', '[data-testid="audit-verdict"]'],
    ['projects', '[data-testid="project-summary"]'],
    ['model', '[data-testid="model-entry"]'],
    ['prompts', '[data-testid="prompt-row"]'],
    ['references', '[data-testid="ref-tile"] img'],
    ['detection', '[data-testid="detect-row"]'],
    ['search', '[data-testid="search-top"]'],
    ['gallery', '[data-testid="gallery-tile"]'],
    ['solidmark', '[data-testid="solidmark-tile"]'],
    ['system', '[data-testid="run-probe"]'],
  ];
  const times = {};
  for (const [name, ready] of pages) {
    await page.getByTestId(name === 'projects' ? 'nav-start' : 'nav-projects').click();
    await page.getByTestId(name === 'projects' ? 'page-start' : 'page-projects').waitFor();
    const t0 = Date.now();
    await page.getByTestId(`nav-${name}`).click();
    await page.locator(ready).first().waitFor({ timeout: SLOW });
    times[name] = Date.now() - t0;
    await page.screenshot({ path: path.join(results, `e2e-page-${name}.png`) });
  }
  console.log(`  time to data per page (ms): ${Object.entries(times).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [name, ms] of Object.entries(times)) assert.ok(ms < 1000, `${name} showed its data in ${ms} ms (bound 1000 ms)`);
});

test('deep links: Detection keeps its job, Search its run and SolidMark its view in the address, and a reload restores them', async () => {
  const reloadAt = async (hash) => {
    await page.evaluate((h) => {
      history.replaceState(history.state, '', `${location.pathname}${location.search}${h}`);
      location.reload();
    }, hash);
    await page.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor();
  };
  // Detection: the address names the job shown; a link to another detect job (one the page would not pick
  // by itself, when the project has one) opens that job after a reload.
  await page.getByTestId('nav-detection').click();
  await page.locator('[data-testid="detection-results"][data-job-id]').waitFor({ timeout: SLOW });
  const shown = await page.getByTestId('detection-results').getAttribute('data-job-id');
  await page.waitForFunction((id) => location.hash === `#/detection?job=${id}`, shown, { timeout: SLOW });
  const detectIds = await page.locator('[data-testid="job-row"][data-kind="detect"][data-status="succeeded"]').evaluateAll((rows) => rows.map((r) => r.dataset.jobId));
  const target = detectIds.find((id) => id !== shown) ?? shown;
  await reloadAt(`#/detection?job=${target}`);
  await page.locator(`[data-testid="detection-results"][data-job-id="${target}"]`).waitFor({ timeout: SLOW });
  // Search: the selected run is in the address and comes back after a reload.
  await page.getByTestId('nav-search').click();
  await page.getByTestId('search-run-detail').waitFor({ timeout: SLOW });
  await page.waitForFunction(() => /^#\/search\?run=\d+$/.test(location.hash), null, { timeout: SLOW });
  const run = new URL(page.url()).hash.split('=')[1];
  await reloadAt(`#/search?run=${run}`);
  await page.locator(`[data-testid="search-run-detail"][aria-label="Run ${run}"]`).waitFor({ timeout: SLOW });
  assert.equal(await page.locator('[data-testid="search-run"] button[aria-pressed="true"]').innerText(), `#${run}`);
  // SolidMark: a view other than the default is written to the address and restored.
  await page.getByTestId('nav-solidmark').click();
  await page.getByTestId('solidmark-view').selectOption('duplicated');
  await page.waitForFunction(() => location.hash.startsWith('#/solidmark?') && location.hash.includes('view=duplicated'), null, { timeout: SLOW });
  await reloadAt(new URL(page.url()).hash);
  await page.getByTestId('page-solidmark').waitFor({ timeout: SLOW });
  await page.waitForFunction(() => document.querySelector('[data-testid="solidmark-view"]')?.value === 'duplicated', null, { timeout: SLOW });
  await page.getByTestId('solidmark-view').selectOption('all');
  console.log(`  deep links: detection job ${target}${target === shown ? ' (the only detect job)' : ` (not the restored ${shown})`}, search run ${run}, solidmark view restored`);
});

test('no Content-Security-Policy violations or page errors on the demo pages', async () => {
  const violations = await page.evaluate(() => window.__cspViolations ?? []);
  assert.deepEqual(violations, []);
  assert.deepEqual(consoleErrors, []);
});


/** A fresh tab that records CSP violations and page errors. */
async function openPage() {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  // Record CSP violations from the first script on; init scripts are not subject to the page's CSP.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
  page.on('console', (msg) => {
    // A refused WebSocket after the server stops is expected; everything else is a bug.
    if (msg.type() === 'error' && server?.child.exitCode === null) consoleErrors.push(msg.text());
  });
}

let passed = 0;
let failed = 0;
try {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  await openPage();
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
} catch (err) {
  failed++;
  console.log(`✗ setup\n  ${err.stack ?? err}`);
} finally {
  await browser?.close().catch(() => {});
  await stopServer(server);
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
