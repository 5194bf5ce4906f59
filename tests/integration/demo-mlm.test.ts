// The demo masked LM, as the search uses it: for a masked word of a demo caption, its top proposals
// are words of the caption vocabulary, and usually the masked word itself.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MaskedLm } from '../../main/search/masked-lm.js';

const dataset = path.resolve(import.meta.dirname, '../../native-models/demo/dataset');
const captions = ['prompts-duplicated.txt', 'prompts-singletons.txt'].flatMap((f) => readFileSync(path.join(dataset, f), 'utf8').split('\n').filter(Boolean));
const captionWords = new Set(captions.flatMap((c) => c.split(' ')));

describe('demo masked LM proposals', () => {
  it('proposes caption-vocabulary words for a masked caption word, the original among the top 10', async () => {
    const lm = await MaskedLm.load(path.resolve(import.meta.dirname, '../../native-models/demo/mlm-demo'));
    const duplicated = captions.slice(0, 20);
    let words = 0;
    let inVocabulary = 0;
    let originalInTop10 = 0;
    let masked = 0;
    for (const caption of duplicated) {
      const slots = lm.encode(caption);
      for (let i = 0; i < slots.length; i++) {
        const token = lm.decode([slots[i]]);
        if (!captionWords.has(token)) continue; // a word piece of a longer word
        const masking = slots.map((s, j) => (j === i ? lm.maskId : s));
        const [proposed] = await lm.propose([{ slots: masking, slotIndex: i, include: [] }], 10, { banned: new Set(), contextPrefix: 'image of a' });
        const top = proposed.map((id) => lm.decode([id]));
        masked++;
        if (top.includes(token)) originalInTop10++;
        for (const t of top) {
          if (t === '') continue;
          words++;
          if (captionWords.has(t)) inVocabulary++;
        }
      }
    }
    console.log(`demo MLM: ${masked} masked words; original in top 10: ${originalInTop10}/${masked}; proposals in the caption vocabulary: ${inVocabulary}/${words}`);
    expect(inVocabulary / words).toBeGreaterThanOrEqual(0.9);
    expect(originalInTop10 / masked).toBeGreaterThanOrEqual(0.6);
  });
});
