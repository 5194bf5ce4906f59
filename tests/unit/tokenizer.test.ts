import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer } from '../../main/sd/tokenizer.js';
import { readNpy } from '../../main/util/npy.js';

const ref = path.resolve(import.meta.dirname, '../../../shared/data/reference');

for (const model of ['tiny-sd1', 'tiny-sd2v']) {
  describe(`CLIP tokenizer (${model})`, () => {
    const golden = JSON.parse(readFileSync(path.join(ref, model, 'golden.json'), 'utf8'));
    const prompts: string[] = [...new Set<string>(golden.generations.map((g: { prompt: string }) => g.prompt))];
    const tok = ClipTokenizer.load(path.join(ref, model, 'model', 'tokenizer'));

    it('reads the folder the way it is laid out', () => {
      expect(tok.source).toBe(model === 'tiny-sd1' ? 'vocab.json+merges.txt' : 'tokenizer.json');
      expect(tok.padId).toBe(model === 'tiny-sd1' ? 49407 : 0);
    });

    prompts.forEach((prompt, k) => {
      it(`matches the reference ids for prompt ${k}: ${JSON.stringify(prompt)}`, () => {
        const expected = readNpy(path.join(ref, model, `input_ids_${k}.npy`));
        expect(expected.shape).toEqual([1, 77]);
        const got = tok.encode(prompt);
        expect(Array.from(got.ids)).toEqual(Array.from(expected.data as BigInt64Array, Number));
        expect(got.truncated).toBe(false);
      });
    });

    it('truncates a prompt over 77 tokens, keeps the end token, and says so', () => {
      const long = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
      const got = tok.encode(long);
      expect(got.ids).toHaveLength(77);
      expect(got.truncated).toBe(true);
      expect(got.droppedTokens).toBeGreaterThan(0);
      expect(got.ids[76]).toBe(tok.eosId);
    });
  });
}
