/**
 * RNA, RTA, CWR and GNI against implementations written independently in Python
 * (tests/fixtures/mitigation_reference.py): the mitigated prompts exactly (same generator state, the demo
 * model's vocabulary for RTA), and GNI's embeddings against the PyTorch text encoder on the same weights
 * plus the same noise.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMitigations } from '../../main/api/mitigations.js';
import { MitigationRunner } from '../../main/mitigation/apply.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { readNpy, writeNpy } from '../../main/util/npy.js';
import { mitigationStream } from '../../main/util/prng.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, 'tests/fixtures/mitigation_reference.py');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mitref-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PROMPTS = ['raising hands', 'woman tipping hand', 'check mark button', 'a', 'an aerial tramway over the sea'];

describe('mitigations against an independent Python implementation', () => {
  it('gives exactly the prompts Python gives from the same generator state (RNA, RTA, CWR)', async () => {
    const pipe = await StableDiffusionPipeline.load(path.join(ROOT, 'native-models/demo/sd-demo'), { provider: 'cpu' });
    try {
      const parsed = parseMitigations('rna:1,rna:4,rta:1,rta:4,cwr:1,cwr:3');
      if (!parsed.ok) throw new Error(parsed.error);
      const runner = await MitigationRunner.prepare(pipe, parsed.settings);
      const cases: { method: string; prompt: string; n: number; state: number[] }[] = [];
      const ours: string[] = [];
      for (const [p, prompt] of PROMPTS.entries()) {
        for (const setting of parsed.settings) {
          cases.push({ method: setting.method, prompt, n: setting.param!, state: mitigationStream(42, p).state() });
          ours.push((await runner.apply(setting, prompt, 42, p)).prompt);
        }
      }
      mkdirSync(path.join(tmp, 'in'), { recursive: true });
      writeFileSync(path.join(tmp, 'in/cases.json'), JSON.stringify(cases));
      execFileSync('/usr/bin/python3', [SCRIPT, 'prompts', path.join(tmp, 'in'), path.join(tmp, 'out')], { stdio: 'pipe' });
      const theirs = JSON.parse(readFileSync(path.join(tmp, 'out/prompts.json'), 'utf8')) as string[];
      expect(ours).toEqual(theirs);
      // The transforms changed the prompts (the comparison is not between unchanged inputs).
      expect(ours.every((p, i) => p !== cases[i].prompt)).toBe(true);
      await runner.release();
    } finally {
      await pipe.release();
    }
  }, 60_000);

  it("GNI's embeddings equal the PyTorch text encoder's plus lambda x the same noise (1e-4)", async () => {
    const pipe = await StableDiffusionPipeline.load(path.join(ROOT, 'native-models/demo/sd-demo'), { provider: 'cpu' });
    try {
      const parsed = parseMitigations('gni:0.1');
      if (!parsed.ok) throw new Error(parsed.error);
      const runner = await MitigationRunner.prepare(pipe, parsed.settings);
      const prompt = 'raising hands';
      const applied = await runner.apply(parsed.settings[0], prompt, 42, 0);
      expect(applied.prompt).toBe(prompt);
      const cond = (await pipe.encodeText([prompt])).embeddings;
      const uncond = (await pipe.encodeText([''])).embeddings;
      const noisy = applied.options.conditioning!({ cond, uncond });

      const ids = new BigInt64Array(2 * 77);
      pipe.tokenizer.encode(prompt).ids.forEach((v, i) => (ids[i] = BigInt(v)));
      pipe.tokenizer.encode('').ids.forEach((v, i) => (ids[77 + i] = BigInt(v)));
      await writeNpy(path.join(tmp, 'enc/ids.npy'), ids, [2, 77]);
      execFileSync('/usr/bin/python3', [SCRIPT, 'encode', path.join(tmp, 'enc'), path.join(tmp, 'enc-out')], { stdio: 'pipe' });
      const torchEmb = readNpy(path.join(tmp, 'enc-out/embeddings.npy')).data as Float32Array;
      const noise = mitigationStream(42, 0).randn(2 * cond.length);
      const n = cond.length;
      let worst = 0;
      let moved = 0;
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, Math.abs(noisy.cond[i] - (torchEmb[i] + 0.1 * noise[i])), Math.abs(noisy.uncond![i] - (torchEmb[n + i] + 0.1 * noise[n + i])));
        moved = Math.max(moved, Math.abs(noisy.cond[i] - torchEmb[i]));
      }
      expect(worst).toBeLessThan(1e-4);
      expect(moved).toBeGreaterThan(0.1); // the noise is there: 0.1 x max |N(0,1)| over ~10k draws
      await runner.release();
    } finally {
      await pipe.release();
    }
  }, 60_000);
});
