// Mitigation benchmark cost on the demo: seconds per prompt of each setting (mitigation applied, K images
// generated, SSCD + CLIP scored: the job's own runUnit) against the bare generation of the same images
// (pipeline.generate with the same seeds, nothing else), in one process: each setting's run is paired with
// a bare run just before it, so a busy machine weighs on both alike, and the median of the pairs' ratios is
// reported. The ratio is the overhead of the edits and the metrics.
// Run: npm run build:node && node bench/mitigation.mjs [--prompts 3] [--images 4] [--steps 25] [--rounds 2]
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MEMBENCH_METHODS, parseMitigations, settingKey } from '../dist/main/api/mitigations.js';
import { runUnit, scenarioSeed } from '../dist/main/engine/jobs/benchmark.js';
import { MitigationRunner } from '../dist/main/mitigation/apply.js';
import { ClipModel } from '../dist/main/match/clip.js';
import { DescriptorModel } from '../dist/main/match/descriptor.js';
import { StableDiffusionPipeline } from '../dist/main/sd/pipeline.js';
import { forkSeed } from '../dist/main/util/prng.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const nPrompts = Number(arg('prompts', '3'));
const images = Number(arg('images', '4'));
const steps = Number(arg('steps', '25'));
const rounds = Number(arg('rounds', '2'));
const demo = path.join(root, 'native-models', 'demo');

const pipe = await StableDiffusionPipeline.load(path.join(demo, 'sd-demo'), { provider: 'cpu' });
const descriptor = await DescriptorModel.load(path.join(demo, 'sscd-demo'));
const clip = await ClipModel.load(path.join(demo, 'clip-demo'));
const parsed = parseMitigations(MEMBENCH_METHODS);
const settings = parsed.settings.map((s) => ({ ...s, key: settingKey(s) }));
const runner = await MitigationRunner.prepare(pipe, settings);
const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n').slice(1, 1 + nPrompts).map((l) => l.split(','));
// Each prompt's own training image as its one reference (the trigger scenario's SSCD work).
const refPre = await Promise.all(rows.map((r) => descriptor.preprocess(readFileSync(path.join(demo, 'dataset', 'clean', r[1])), r[1])));
const refVectors = await descriptor.embedPreprocessed(refPre);
const models = { pipe, runner, clip, aestheticClip: clip, aesthetic: null, descriptor, refVectors, refRow: new Map(rows.map((_, i) => [i, i])) };
const size = 64;

const per = Object.fromEntries(settings.map((s) => [s.key, { bare: [], gen: [], metric: [], ratio: [] }]));
// One warm-up pass (session first runs, Ren's edited UNets), not timed.
await pipe.generate({ prompt: rows[0][0], steps: 2, guidance: 7.5, numImages: images, seed: 0, scheduler: 'ddim', width: size, height: size });
for (const s of settings) await runUnit(models, s, { scenario: 'trigger', index: 0, promptId: null, prompt: rows[0][0], references: [0], images }, { seed: 0, steps: 2, guidance: 7.5, size });
for (let round = 0; round < rounds; round++) {
  for (const [i, [prompt]] of rows.entries()) {
    for (const s of settings) {
      const t = performance.now();
      await pipe.generate({ prompt, steps, guidance: 7.5, numImages: images, seed: forkSeed(scenarioSeed(0, 'trigger'), i), scheduler: 'ddim', width: size, height: size });
      const bare = (performance.now() - t) / 1000;
      const { unit } = await runUnit(models, s, { scenario: 'trigger', index: i, promptId: null, prompt, references: [i], images }, { seed: 0, steps, guidance: 7.5, size });
      const r = per[s.key];
      r.bare.push(bare);
      r.gen.push(unit.generationSeconds);
      r.metric.push(unit.metricSeconds);
      r.ratio.push((unit.generationSeconds + unit.metricSeconds) / bare);
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`demo model, ${nPrompts} trigger prompts x ${rounds} rounds, ${images} images per prompt, DDIM ${steps} steps, ${size}x${size}; medians per prompt`);
console.log(`setting    bare (ref)  generate  metrics    total  median ratio  overhead`);
for (const s of settings) {
  const r = per[s.key];
  const ratio = median(r.ratio);
  console.log(`${s.key.padEnd(10)} ${median(r.bare).toFixed(3).padStart(10)} ${median(r.gen).toFixed(3).padStart(9)} ${median(r.metric).toFixed(3).padStart(8)} ${(median(r.gen) + median(r.metric)).toFixed(3).padStart(8)} ${ratio.toFixed(3).padStart(13)} ${((ratio - 1) * 100).toFixed(1).padStart(8)}%`);
}
await runner.release();
await pipe.release();
