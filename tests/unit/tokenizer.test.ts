import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClipTokenizer, specialTokenContent, withoutWord } from '../../main/sd/tokenizer.js';
import { readNpy } from '../../main/util/npy.js';
import { referenceDir } from '../helpers/reference.js';

const ref = referenceDir;

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
      expect(got.length).toBe(77);
      // "wordN" is several tokens per word; exactly the overflow is dropped.
      expect(got.droppedTokens).toBe(tok.contentIds(long).length - 75);
      const spans = tok.wordSpans(long);
      expect(spans.at(-1)!.kept).toBe(false);
      expect(spans[0]).toMatchObject({ word: 'word0', start: 1, kept: true });
    });

    it('decodes for display without padding, keeping a real "!" in the prompt', () => {
      const got = tok.encode('Hello,   WORLD!! 42');
      // SD 2.x's "!" is an added token without CLIP's end-of-word marker, so no space follows it there.
      expect(tok.decode(got.ids)).toBe(model === 'tiny-sd1' ? 'hello, world!! 4 2' : 'hello, world!!4 2');
    });

    it('word spans line up with the tokens of the whole prompt', () => {
      const prompt = "An astronaut's  helmet, reflecting Earth";
      const ids = Array.from(tok.encode(prompt).ids);
      const spans = tok.wordSpans(prompt);
      expect(spans.map((s) => s.word)).toEqual(['An', "astronaut's", 'helmet,', 'reflecting', 'Earth']);
      for (const s of spans) expect(ids.slice(s.start, s.end)).toEqual(tok.contentIds(s.word));
      expect(spans.at(-1)!.end).toBe(tok.encode(prompt).length - 1);
      expect(withoutWord(prompt, 1)).toBe('An helmet, reflecting Earth');
    });
  });
}

describe('special tokens', () => {
  it('may be strings or AddedToken objects', () => {
    expect(specialTokenContent('<|endoftext|>')).toBe('<|endoftext|>');
    expect(specialTokenContent({ __type: 'AddedToken', content: '!', lstrip: false })).toBe('!');
    expect(specialTokenContent(null)).toBeUndefined();
  });
});
