// Engine throughput on CPU with the reference tiny-sd1 pipeline (or --model DIR):
//  - UNet calls per second through the pipeline vs. bare onnxruntime session.run on prebuilt tensors
//  - seconds per image (DDIM 50 steps, guidance 7.5) vs. the bare cost of its 50 UNet calls + decode
//  - detection throughput (prompts per second, N = 4) vs. the bare cost of the same UNet calls
// Run: npm run build:node && node bench/engine.mjs [--model DIR] [--size 64]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { StableDiffusionPipeline } from '../dist/main/sd/pipeline.js';
import { detectMemorization, detectionNoises } from '../dist/main/sd/detection.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
// The committed reference data (tests/fixtures/reference, see its README).
const modelDir = arg('model', path.join(root, 'tests', 'fixtures', 'reference', 'tiny-sd1', 'model'));
const size = Number(arg('size', '64'));

const pipe = await StableDiffusionPipeline.load(modelDir, { provider: 'cpu' });
const factor = await pipe.vaeScaleFactor();
const h = size / factor;
const c = pipe.latentChannels;
const per = c * h * h;
const { embeddings } = await pipe.encodeText(['', 'a photo of an astronaut riding a horse']);
const time = async (fn, reps) => {
  await fn();
  const t = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t) / reps;
};

// Bare session on the same UNet file: the reference.
const bare = await ort.InferenceSession.create(path.join(modelDir, 'unet', 'model.onnx'), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
const tType = bare.inputMetadata.find((m) => m.name === 'timestep').type;
const feeds = {
  sample: new ort.Tensor('float32', new Float32Array(2 * per).fill(0.1), [2, c, h, h]),
  timestep: tType === 'int64' ? new ort.Tensor('int64', BigInt64Array.from([981n, 981n]), [2]) : new ort.Tensor('float32', Float32Array.from([981, 981]), [2]),
  encoder_hidden_states: new ort.Tensor('float32', embeddings, [2, 77, embeddings.length / 2 / 77]),
};
const reps = 50;
const bareMs = await time(() => bare.run(feeds), reps);
const pipeMs = await time(() => pipe.predictNoise(new Float32Array(2 * per).fill(0.1), 2, h, h, 981, embeddings), reps);
console.log(`model ${modelDir}, ${size}x${size}, latents ${c}x${h}x${h}`);
console.log(`UNet batch 2 (CFG): pipeline ${(1000 / pipeMs).toFixed(1)} calls/s, bare ORT ${(1000 / bareMs).toFixed(1)} calls/s, overhead x${(pipeMs / bareMs).toFixed(3)}`);

const imageMs = await time(() => pipe.generate({ prompt: 'a photo of an astronaut riding a horse', steps: 50, guidance: 7.5, width: size, height: size, seed: 1, scheduler: 'ddim' }), 3);
const decodeMs = await time(() => pipe.decode(new Float32Array(per), 1, h, h), 5);
const bareImageMs = 50 * bareMs + decodeMs;
console.log(`image (DDIM 50, g 7.5): ${(imageMs / 1000).toFixed(3)} s/image; bare 50 UNet calls + decode ${(bareImageMs / 1000).toFixed(3)} s, overhead x${(imageMs / bareImageMs).toFixed(3)}`);

const prompts = Array.from({ length: 32 }, (_, i) => `prompt number ${i} about a subject`);
const noises = detectionNoises(0, 4, c, h, h);
let calls = 0;
const detectMs = await time(async () => {
  const r = await detectMemorization(pipe, prompts, { noises, noiseCount: 4, latentHeight: h, latentWidth: h, batchSize: 8 });
  calls = r.unetCalls;
}, 2);
const bare8 = await ort.InferenceSession.create(path.join(modelDir, 'unet', 'model.onnx'), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
const feeds8 = {
  sample: new ort.Tensor('float32', new Float32Array(8 * per).fill(0.1), [8, c, h, h]),
  timestep: tType === 'int64' ? new ort.Tensor('int64', new BigInt64Array(8).fill(981n), [8]) : new ort.Tensor('float32', new Float32Array(8).fill(981), [8]),
  encoder_hidden_states: new ort.Tensor('float32', new Float32Array(8 * embeddings.length / 2), [8, 77, embeddings.length / 2 / 77]),
};
const bare8Ms = await time(() => bare8.run(feeds8), 20);
console.log(`detection N=4: ${(prompts.length / (detectMs / 1000)).toFixed(1)} prompts/s (${calls} UNet calls of batch <= 8 for ${prompts.length} prompts); bare ${calls} calls ${(calls * bare8Ms / 1000).toFixed(3)} s, overhead x${(detectMs / (calls * bare8Ms)).toFixed(3)}`);
await pipe.release();
