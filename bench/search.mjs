// Trigger-prompt search overhead on CPU: time per Gibbs iteration (masked-LM proposals, text encoding of
// new candidates, the Q energy UNet passes, softmax move, bookkeeping) against the bare cost of the same
// UNet calls — Q conditional samples in the job's batches plus one unconditional — on a bare
// onnxruntime session over prebuilt tensors, in the same process.
// Run: npm run build:node && node bench/search.mjs [--model DIR] [--mlm DIR] [--size PX] [--candidates Q] [--iterations N]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { StableDiffusionPipeline } from '../dist/main/sd/pipeline.js';
import { MaskedLm, DEFAULT_GENERIC_WORDS } from '../dist/main/search/masked-lm.js';
import { runGibbsSearch } from '../dist/main/search/gibbs.js';
import { createSearchEnergy, defaultEnergyBatch } from '../dist/main/search/energy.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const modelDir = arg('model', path.join(root, 'native-models/demo/sd-demo'));
const mlmDir = arg('mlm', path.join(root, 'native-models/demo/mlm-demo'));
const Q = Number(arg('candidates', '64'));
const iterations = Number(arg('iterations', '30'));

const pipe = await StableDiffusionPipeline.load(modelDir, { provider: 'cpu' });
const lm = await MaskedLm.load(mlmDir, { executionProvider: 'cpu' });
const factor = await pipe.vaeScaleFactor();
const unetIn = pipe.report.components.find((c) => c.name === 'unet').inputs.find((i) => i.name === 'sample');
// Image size: --size, else the UNet's fixed sample size, else 64 px.
const size = Number(arg('size', typeof unetIn.shape[2] === 'number' ? String(unetIn.shape[2] * factor) : '64'));
const h = size / factor;
const c = pipe.latentChannels;
const per = c * h * h;
const batch = Math.min(Q + 2, defaultEnergyBatch(h, h));

// Where the time goes: the LM's proposals and the text encoder, timed inside the run.
const timers = { propose: 0, encode: 0 };
const timed = (obj, name, key) => {
  const fn = obj[name].bind(obj);
  obj[name] = async (...args) => {
    const t = performance.now();
    try {
      return await fn(...args);
    } finally {
      timers[key] += performance.now() - t;
    }
  };
};
timed(lm, 'propose', 'propose');
timed(pipe, 'encodeText', 'encode');

// The search: one chain, so every iteration scores ~Q candidates.
const energy = createSearchEnergy(pipe, { seed: 1, latentHeight: h, latentWidth: h, batchSize: batch });
const params = { chains: 1, iterations, candidates: Q, slots: 4, seed: 1, bannedWords: [] };
await runGibbsSearch({ ...params, iterations: 2 }, { proposals: lm, energy }); // warm-up
timers.propose = timers.encode = 0;
const calls0 = energy.stats.unetCalls;
const prompts0 = energy.stats.prompts;
const t0 = performance.now();
await runGibbsSearch(params, { proposals: lm, energy, keepRecords: false });
const searchMs = (performance.now() - t0) / iterations;
const proposeMs = timers.propose / iterations;
const encodeMs = timers.encode / iterations;
const scoredPerIteration = (energy.stats.prompts - prompts0) / iterations;
const callsPerIteration = (energy.stats.unetCalls - calls0) / iterations;

// Bare: the same number of samples per iteration through a bare session, in the same batches.
const bare = await ort.InferenceSession.create(path.join(modelDir, 'unet', 'model.onnx'), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
const { embeddings } = await pipe.encodeText(['a prompt']);
const hidden = embeddings.length / 77;
const tType = bare.inputMetadata.find((m) => m.name === 'timestep').type;
const feedsFor = (n) => ({
  sample: new ort.Tensor('float32', new Float32Array(n * per).fill(0.1), [n, c, h, h]),
  timestep: tType === 'int64' ? new ort.Tensor('int64', new BigInt64Array(n).fill(999n), [n]) : new ort.Tensor('float32', new Float32Array(n).fill(999), [n]),
  encoder_hidden_states: new ort.Tensor('float32', new Float32Array(n * 77 * hidden).fill(0.01), [n, 77, hidden]),
});
const samples = Math.round(scoredPerIteration);
const chunks = [];
for (let s = samples; s > 0; s -= batch) chunks.push(Math.min(batch, s));
const feeds = [feedsFor(1), ...chunks.map(feedsFor)];
for (const f of feeds) await bare.run(f);
const t1 = performance.now();
for (let i = 0; i < iterations; i++) for (const f of feeds) await bare.run(f);
const bareMs = (performance.now() - t1) / iterations;

console.log(`model ${path.relative(root, modelDir)}, latents ${c}x${h}x${h}; LM ${path.relative(root, mlmDir)} (vocab ${lm.vocabSize}); Q=${Q}, UNet batch ${batch}`);
console.log(`Gibbs iteration: ${searchMs.toFixed(1)} ms (${scoredPerIteration.toFixed(1)} distinct candidates scored, ${callsPerIteration.toFixed(2)} UNet calls, ${(1000 / searchMs).toFixed(2)} iterations/s)`);
console.log(`bare UNet calls for the same samples (1 uncond + ${chunks.join('+')}): ${bareMs.toFixed(1)} ms`);
console.log(`overhead x${(searchMs / bareMs).toFixed(3)} (${(100 * (searchMs / bareMs - 1)).toFixed(1)}%)`);
console.log(`  of which: masked-LM proposals ${proposeMs.toFixed(1)} ms, text encoding of new candidates ${encodeMs.toFixed(1)} ms, the rest (UNet through the pipeline, moves, bookkeeping) ${(searchMs - proposeMs - encodeMs).toFixed(1)} ms`);
const unetOnly = searchMs - proposeMs - encodeMs;
console.log(`  without the LM and the text encoder: x${(unetOnly / bareMs).toFixed(3)} of the bare UNet calls`);
