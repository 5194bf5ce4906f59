// An evidence report of a small demo audit: a trigger-prompt search run whose verified prompt (a duplicated
// training caption) the analyst confirms, gallery decisions on two of its generations, copy detection
// against the demo training images, and a SolidMark evaluation. The bundle's manifest and signature are
// checked, a changed image, a changed manifest, an added and a removed file are each named by `report
// verify`, the PDF renders (pdftoppm) and holds the prompt and the key fingerprint (pdftotext), and
// `report reproduce` regenerates every image bit for bit on CPU.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { keyDataset } from '../../main/solidmark/key-dataset.js';
import { installationKey, PRIVATE_KEY_FILE } from '../../main/report/signing.js';
import { sha256Hex, type Manifest } from '../../main/report/manifest.js';
import type { ReportData } from '../../main/report/types.js';
import { rocCurve } from '../../main/api/roc.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const model = path.join(demo, 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-report-'));
const config = path.join(tmp, 'config');
const lines = (f: string) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean);
const [dupA, dupB] = lines('prompts-duplicated.txt');
const [s1, s2] = lines('prompts-singletons.txt');
const cli = (...args: string[]) =>
  run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env: { ...process.env, EIDETIC_CONFIG_DIR: config }, maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
let backend: Backend;
let projectDir: string;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = config;
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  projectDir = (await backend.call('project.create', { dir: path.join(tmp, 'audit') })).dir;
  await backend.call('refs.importFolder', { path: path.join(demo, 'dataset', 'clean'), name: 'demo training images' });
}, 300_000);
afterAll(() => backend?.dispose());

describe('evidence report of the demo audit', () => {
  const bundle = path.join(tmp, 'report-1');
  let data: ReportData;

  it('gathers the confirmed search finding with its matches, gallery decisions and SolidMark into a signed bundle', async () => {
    // A short search run (its verification is what the report shows), then the duplicated caption verified with the quick preset.
    const search = await backend.jobs.finished((await backend.startJob('search', { model, mlm: path.join(demo, 'mlm-demo'), chains: 1, iterations: 2, candidates: 8, slots: 2, seed: 0, ep: 'cpu' })).id);
    expect(search.status).toBe('succeeded');
    const runId = (search.result as { runId: number }).runId;
    await backend.call('search.verify', { runId, prompts: [dupA, s1], images: 8, steps: 50, descriptor: path.join(demo, 'sscd-demo') });
    await backend.searches.verified(runId);
    const candidates = (await backend.call('search.get', { runId, since: 0 })).candidates;
    const found = candidates.find((c) => c.prompt === dupA)!;
    expect(found.evidence!.generations).toBe(8);
    expect(found.evidence!.bestMatches[0].fileName).toBe(`${dupA.replace(/ /g, '-')}.png`);
    await backend.call('search.decide', { runId, prompt: dupA, decision: 'confirmed', note: `copies ${dupA}.png` });
    await backend.call('search.decide', { runId, prompt: s1, decision: 'rejected', note: 'no consistent copy' });
    // Gallery decisions on single generations: one of the singleton's confirmed, one rejected.
    const [g1, g2] = candidates.find((c) => c.prompt === s1)!.evidence!.generationIds;
    expect((await backend.call('generations.decide', { id: g1, decision: 'confirmed', note: 'looks like the emoji' })).decision).toBe('confirmed');
    await backend.call('generations.decide', { id: g2, decision: 'rejected' });
    expect((await backend.call('generations.decisions', { ids: [g1, g2, 999_999] })).map((d) => d.decision)).toEqual(['confirmed', 'rejected']);

    // SolidMark on two duplicated images (3 keyed copies each) and two singletons.
    const src = path.join(tmp, 'sm-src');
    mkdirSync(path.join(src, 'clean'), { recursive: true });
    const file = (c: string) => `clean/${c.replace(/ /g, '-')}.png`;
    const entries = [dupA, dupA, dupA, dupB, dupB, dupB, s1, s2];
    for (const c of new Set(entries)) writeFileSync(path.join(src, file(c)), readFileSync(path.join(demo, 'dataset', file(c))));
    writeFileSync(path.join(src, 'train.jsonl'), entries.map((c) => JSON.stringify({ file: file(c), caption: c })).join('\n'));
    const keyed = await keyDataset({ input: path.join(src, 'train.jsonl'), out: path.join(tmp, 'keyed'), border: 8, seed: 7 });
    const sm = await backend.jobs.finished((await backend.startJob('solidmark', { model, data: path.join(keyed.out, 'manifest.jsonl'), ep: 'cpu', steps: 3, guidance: 3, repeats: 1, select: 'all', queries: 4 } as never)).id);
    expect(sm.error).toBeNull();

    // Detection as the Detection page's ROC runs it: one labelled set's prompts, then the other's, stored as a
    // labelled evaluation (the report takes labels from stored evaluations only, never from job order).
    const dupSet = await backend.call('prompts.importContent', { fileName: 'memorized.txt', content: lines('prompts-duplicated.txt').slice(0, 6).join('\n'), name: 'memorized (labelled)' });
    const oneSet = await backend.call('prompts.importContent', { fileName: 'others.txt', content: lines('prompts-singletons.txt').slice(0, 6).join('\n'), name: 'others (labelled)' });
    const rocPrompts = [...lines('prompts-duplicated.txt').slice(0, 6), ...lines('prompts-singletons.txt').slice(0, 6)];
    const detect = await backend.jobs.finished((await backend.startJob('detect', { model, prompts: rocPrompts, noises: 2, seed: 0, ep: 'cpu' })).id);
    expect(detect.status).toBe('succeeded');
    expect([dupSet.count, oneSet.count]).toEqual([6, 6]);
    const scores = (detect.result as { scores: { score: number }[] }).scores.map((x) => x.score);
    const evaluation = await backend.call('detection.evaluate', { positive: { jobId: detect.id, count: 6, setId: dupSet.id }, negative: { jobId: detect.id, offset: 6, setId: oneSet.id } });

    const created = await backend.call('report.create', { out: bundle, pdf: true, zip: true, operator: 'A. Analyst', caseRef: 'CASE-42' });
    expect(created).toMatchObject({ findings: 2, images: 9, operator: 'A. Analyst', caseRef: 'CASE-42', zip: `${bundle}.zip` });
    expect((await backend.call('report.list', {}))[0]).toMatchObject({ id: created.id, dir: bundle, fingerprint: created.fingerprint });
    data = JSON.parse(readFileSync(path.join(bundle, 'data', 'report.json'), 'utf8')) as ReportData;
    const finding = data.findings.find((f) => f.source === 'search')!;
    expect(finding).toMatchObject({ status: 'confirmed', prompt: dupA, note: `copies ${dupA}.png`, runId });
    expect(finding.generationIds).toHaveLength(8);
    expect(finding.bestMatches[0].file).toMatch(/^images\/references\//);
    expect(data.findings.find((f) => f.source === 'gallery')).toMatchObject({ status: 'confirmed', generationIds: [g1], prompt: s1 });
    expect(data.rejected.map((f) => f.prompt).sort()).toEqual([s1, s1]);
    // Scope: the model with every file's hash, the reference library with each image's hash.
    expect(data.models).toHaveLength(1);
    expect(data.models[0].files.map((f) => f.file)).toContain('unet/model.onnx');
    expect(data.models[0].files.find((f) => f.file === 'unet/model.onnx')!.sha256).toBe(sha256Hex(readFileSync(path.join(model, 'unet', 'model.onnx'))));
    expect(data.references.count).toBe(1000);
    expect(data.references.images.every((r) => /^[0-9a-f]{64}$/.test(r.sha256))).toBe(true);
    // Methods: the copy threshold from the descriptor's manifest; SolidMark counts beside their chance.
    expect(data.methods.copyDetection[0].threshold).toBe(0.8469);
    expect(data.methods.copyDetection[0].thresholdOrigin).toMatch(/calibrated/);
    const smAll = data.methods.solidmark[0].groups.find((g) => g.group === 'all')!;
    expect(smAll.queries).toBe(4);
    expect(smAll.counts.every((c) => c.chance > 0 && c.chance < smAll.queries)).toBe(true);
    // The stored evaluation's ROC on its two labelled sets, as rocCurve gives it on the job's scores.
    const roc = rocCurve(scores.slice(0, 6), scores.slice(6));
    expect(data.methods.detection[0].roc).toEqual({ evaluationId: evaluation.id, positiveSet: 'memorized (labelled)', negativeSet: 'others (labelled)', positives: 6, negatives: 6, auc: roc.auc, tprAt1Fpr: roc.tprAt1Fpr });
    expect(data.methods.detectionEvaluations).toHaveLength(1);
    expect(data.methods.detectionEvaluations[0]).toMatchObject({ id: evaluation.id, jobIds: [detect.id], auc: roc.auc, seed: 0, noises: 2 });
    // Every image has its command line, with the model digest and its seed.
    for (const g of data.images) expect(g.command).toContain(`--model-digest ${data.models[0].digest} --prompt`);
    expect(data.images.find((g) => g.generationId === g1)!.command).toMatch(/--seed 0 --scheduler ddim --steps 50 --guidance 7.5 --size 64x64 --n 1 --ep cpu/);

    // The manifest lists every file with its hash; the signature is this installation's key's.
    const manifest = JSON.parse(readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as Manifest;
    const onDisk = readdirSync(bundle, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(bundle, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    expect(manifest.files.map((f) => f.path).sort()).toEqual(onDisk.filter((p) => p !== 'manifest.json' && p !== 'manifest.sig').sort());
    for (const f of manifest.files) expect(f.sha256).toBe(sha256Hex(readFileSync(path.join(bundle, f.path))));
    const key = installationKey(config);
    expect(manifest.signature.fingerprint).toBe(key.fingerprint);
    expect(statSync(path.join(config, PRIVATE_KEY_FILE)).mode & 0o777).toBe(0o600);
    // The HTML is self-contained: images inlined, nothing loaded from elsewhere.
    const html = readFileSync(path.join(bundle, 'report.html'), 'utf8');
    expect(html).toContain(key.fingerprint);
    expect(html.match(/<img src="data:image\/png;base64,/g)!.length).toBeGreaterThanOrEqual(9);
    expect(html).not.toMatch(/(src|href)="(https?:|file:|\/\/)/);
  }, 900_000);

  it('previews a search run or a selection of generations, and refuses an unknown scope or a used folder before any work', async () => {
    const runId = data.findings.find((f) => f.source === 'search')!.runId!;
    const g1 = data.findings.find((f) => f.source === 'gallery')!.generationIds[0];
    const run = await backend.call('report.preview', { scope: { kind: 'search', runId } });
    expect(run.scopeLabel).toBe(`search run ${runId}`);
    // The run's confirmed candidate, and the gallery decision on one of its verification images.
    expect(run.findings.map((f) => [f.source, f.prompt, f.decision]).sort()).toEqual([['gallery', s1, 'confirmed'], ['search', dupA, 'confirmed']]);
    expect(run.rejected).toBe(2);
    const g2 = Number(data.rejected.find((f) => f.source === 'gallery')!.id.replace('generation-', ''));
    const selection = await backend.call('report.preview', { scope: { kind: 'generations', ids: [g1, g2] }, includeUnreviewed: true });
    expect(selection.findings.map((f) => f.decision)).toEqual(['confirmed']);
    expect(selection.rejected).toBe(1);
    const unreviewed = data.findings.find((f) => f.source === 'search')!.generationIds[0];
    expect((await backend.call('report.preview', { scope: { kind: 'generations', ids: [unreviewed] } })).findings).toEqual([]);
    expect((await backend.call('report.preview', { scope: { kind: 'generations', ids: [unreviewed] }, includeUnreviewed: true })).findings.map((f) => f.decision)).toEqual(['pending']);
    await expect(backend.call('report.preview', { scope: { kind: 'search', runId: 999 } })).rejects.toThrow('search run 999 does not exist');
    await expect(backend.call('report.preview', { scope: { kind: 'generations', ids: [999_999] } })).rejects.toThrow('generation 999999 not in');
    await expect(backend.call('report.create', { out: bundle })).rejects.toThrow(`${bundle}: exists and is not an empty folder`);
  });

  it('verify holds for the folder and the zip, and names a changed image, a changed manifest, added and missing files', async () => {
    const ok = await cli('report', 'verify', bundle, '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, signatureValid: true, changed: [], added: [], missing: [] });
    expect(JSON.parse((await cli('report', 'verify', `${bundle}.zip`, '--json')).stdout)).toMatchObject({ ok: true, signatureValid: true });

    const image = data.images[0].file;
    const tampered = path.join(tmp, 'tampered-image');
    cpSync(bundle, tampered, { recursive: true });
    const bytes = readFileSync(path.join(tampered, image));
    bytes[bytes.length - 20] ^= 1;
    writeFileSync(path.join(tampered, image), bytes);
    writeFileSync(path.join(tampered, 'notes.txt'), 'added later');
    rmSync(path.join(tampered, 'data', 'clusters.csv'));
    const v = await cli('report', 'verify', tampered, '--json');
    expect(v.code).not.toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: false, signatureValid: true, changed: [image], added: ['notes.txt'], missing: ['data/clusters.csv'] });
    expect((await cli('report', 'verify', tampered)).stdout).toContain(`changed: ${image}`);

    // Hiding the change by rewriting the manifest breaks the signature.
    const manifest = JSON.parse(readFileSync(path.join(tampered, 'manifest.json'), 'utf8')) as Manifest;
    manifest.files.find((f) => f.path === image)!.sha256 = sha256Hex(bytes);
    writeFileSync(path.join(tampered, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    const m = JSON.parse((await cli('report', 'verify', tampered, '--json')).stdout);
    expect(m).toMatchObject({ ok: false, signatureValid: false, changed: [] });
    expect(m.signatureProblem).toContain('does not match manifest.json');
  }, 120_000);

  it('renders the PDF to PNG pages and reads the prompt and the fingerprint in its text', () => {
    const pdf = path.join(bundle, 'report.pdf');
    const pages = path.join(tmp, 'pages');
    mkdirSync(pages);
    execFileSync('pdftoppm', ['-png', '-r', '40', pdf, path.join(pages, 'p')]);
    const pngs = readdirSync(pages).filter((f) => f.endsWith('.png'));
    expect(pngs.length).toBeGreaterThanOrEqual(2);
    for (const p of pngs) expect(readFileSync(path.join(pages, p)).subarray(1, 4).toString()).toBe('PNG');
    const text = execFileSync('pdftotext', ['-layout', pdf, '-']).toString();
    expect(text).toContain(dupA);
    expect(text).toContain(data.signing.fingerprint);
    expect(text).toContain('CASE-42');
  });

  it('reproduces every image bit for bit on CPU, and a rerun skips what it compared', async () => {
    const first = await cli('report', 'reproduce', bundle, '--model', model, '--json');
    expect(first.stderr).toMatch(/\[9\/9\] generation \d+: equal/);
    expect(first.code).toBe(0);
    const r = JSON.parse(first.stdout) as { counts: Record<string, number>; outcomes: { status: string; provider: string; regeneratedSha256: string; sha256: string }[] };
    expect(r.counts).toEqual({ equal: 9, 'within-1e-3': 0, different: 0, failed: 0 });
    for (const o of r.outcomes) expect(o).toMatchObject({ status: 'equal', provider: 'cpu', regeneratedSha256: o.sha256 });
    const again = await cli('report', 'reproduce', bundle, '--model', model, '--json');
    expect(again.stderr).toContain('9 of 9 images compared by an earlier run; 0 to do');
    expect(JSON.parse(again.stdout).counts.equal).toBe(9);
    // Another model's folder is refused before any generation.
    const wrong = await cli('report', 'reproduce', bundle, '--model', path.join(demo, 'sscd-demo'), '--out', path.join(tmp, 'wrong'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('are not those of the model');
    expect(existsSync(path.join(tmp, 'wrong', 'reproduce.json'))).toBe(false);
  }, 600_000);
});
