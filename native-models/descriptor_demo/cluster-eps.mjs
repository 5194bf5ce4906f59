// Calibrates the demo descriptor's DBSCAN eps and min samples for "near-identical generations of one
// prompt" on a held-out split, with the app's own generate and match jobs (built code in dist/):
//
//   npm run build && node native-models/descriptor_demo/cluster-eps.mjs [--set heldout|test] [--json]
//
// held-out: the duplicated captions at even indices and singleton captions 800-819, 4 generations each,
//           DDIM 20 steps, seed 11; eps is chosen here, at the app's min samples 3 (MemBench's): the
//           middle of the widest run of eps values with the best Youden's J (duplicated captions with a
//           dense cluster minus singletons with one), so that neither edge decides it.
// test:     tests/integration/cluster-eps.test.ts's split (odd duplicated captions, singletons 900-909),
//           printed for the record only; the choice never looks at it.
// The chosen values go to native-models/demo/sscd-demo/manifest.json as cluster_eps / cluster_min_samples.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { Backend } = await import(path.join(root, 'dist/main/core/backend.js'));
const { forkLauncher } = await import(path.join(root, 'dist/main/engine/channel.js'));
const { sha256File } = await import(path.join(root, 'dist/main/util/hash.js'));
const { clusterDescriptors } = await import(path.join(root, 'dist/main/match/clusters.js'));

const args = process.argv.slice(2);
const which = args.includes('--set') ? args[args.indexOf('--set') + 1] : 'heldout';
const demo = path.join(root, 'native-models', 'demo');
const lines = (f) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean);
const SETS = {
  heldout: { duplicated: lines('prompts-duplicated.txt').filter((_, i) => i % 2 === 0), singletons: lines('prompts-singletons.txt').slice(800, 820) },
  test: { duplicated: lines('prompts-duplicated.txt').filter((_, i) => i % 2 === 1), singletons: lines('prompts-singletons.txt').slice(900, 910) },
};
const N = 4;
const { duplicated, singletons } = SETS[which];

const tmp = mkdtempSync(path.join(os.tmpdir(), `eidetic-cluster-eps-${which}-`));
process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
try {
  await backend.call('project.create', { dir: path.join(tmp, 'p') });
  const gen = await backend.startJob('generate', { model: path.join(demo, 'sd-demo'), prompts: [...duplicated, ...singletons], n: N, steps: 20, seed: 11, ep: 'cpu' });
  if ((await backend.jobs.finished(gen.id)).status !== 'succeeded') throw new Error('generation failed');
  const descriptor = path.join(demo, 'sscd-demo');
  const m = await backend.jobs.finished((await backend.startJob('match', { descriptor, jobId: gen.id, clusterOnly: true })).id);
  if (m.status !== 'succeeded') throw new Error('match failed');
  const project = backend.currentProject;
  const { queries } = project.matchInputs(gen.id);
  const key = await sha256File(path.join(descriptor, 'model.onnx'));
  const vectors = project.cachedDescriptors(key, queries.map((q) => q.sha256));
  const byPrompt = new Map();
  for (const q of queries) byPrompt.set(q.prompt, [...(byPrompt.get(q.prompt) ?? []), vectors.get(q.sha256)]);
  const dim = vectors.values().next().value.length;
  const dense = (prompt, eps, minSamples) => {
    const vs = byPrompt.get(prompt);
    const mat = new Float32Array(vs.length * dim);
    vs.forEach((v, i) => mat.set(v, i * dim));
    return clusterDescriptors(mat, vs.length, dim, { eps, minSamples }).clusters.some((c) => c.members.length >= minSamples);
  };
  const rows = [];
  for (const minSamples of [2, 3, 4]) {
    for (let e = 1; e <= 100; e++) {
      const eps = e / 200;
      const dup = duplicated.filter((p) => dense(p, eps, minSamples)).length / duplicated.length;
      const single = singletons.filter((p) => dense(p, eps, minSamples)).length / singletons.length;
      rows.push({ eps, minSamples, duplicated: dup, singletons: single, j: dup - single });
    }
  }
  const at3 = rows.filter((r) => r.minSamples === 3);
  const bestJ = Math.max(...at3.map((r) => r.j));
  let run = [];
  let widest = [];
  for (const r of at3) {
    run = r.j >= bestJ - 1e-9 ? [...run, r] : [];
    if (run.length > widest.length) widest = run;
  }
  const best = widest[Math.floor((widest.length - 1) / 2)];
  if (args.includes('--json')) console.log(JSON.stringify({ set: which, best, rows }));
  else {
    console.log(`${which}: ${duplicated.length} duplicated, ${singletons.length} singleton captions x ${N}`);
    for (const r of rows.filter((r) => r.eps * 200 % 4 === 0 || r === best)) console.log(`eps ${r.eps.toFixed(3)} min ${r.minSamples}: duplicated ${r.duplicated.toFixed(2)} singletons ${r.singletons.toFixed(2)} J ${r.j.toFixed(2)}`);
    console.log(`best: ${JSON.stringify(best)}`);
  }
} finally {
  backend.dispose();
  rmSync(tmp, { recursive: true, force: true });
}
