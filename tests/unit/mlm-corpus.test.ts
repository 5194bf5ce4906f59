// "No training data" for the demo: the demo masked LM's training text (native-models/mlm_demo/corpus.tsv,
// built by corpus.mjs) contains none of the duplicated captions the search is meant to find, and the
// committed LM's manifest says which text it was trained on (the corpus, by hash).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the recipe, without type declarations
import { buildCorpus, containsDuplicated, controlCaptions, CONTROLS_FILE, CORPUS_FILE, corpusText, datasetCaptions } from '../../native-models/mlm_demo/corpus.mjs';

type Entry = { source: string; text: string };
const root = path.resolve(import.meta.dirname, '../..');
const { duplicated, singletons } = datasetCaptions() as { duplicated: string[]; singletons: string[] };
const committed: Entry[] = readFileSync(CORPUS_FILE, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l: string) => {
    const [source, text] = l.split('\t');
    return { source, text };
  });
const words = (t: string) => t.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);

describe('the demo masked LM training text', () => {
  it('applies the exclusion rule: a run of a 2+-word duplicated caption, or the whole text a 1-word one', () => {
    expect(duplicated).toHaveLength(20);
    expect(containsDuplicated('green check mark button', duplicated)).toBe(true);
    expect(containsDuplicated('image of a bell pepper, sliced', duplicated)).toBe(true);
    expect(containsDuplicated('fire', duplicated)).toBe(true);
    expect(containsDuplicated('Fire', duplicated)).toBe(true);
    expect(containsDuplicated('heart on fire', duplicated)).toBe(false); // the word, not the caption
    expect(containsDuplicated('check mark', duplicated)).toBe(false);
    expect(containsDuplicated('elephant', duplicated)).toBe(false); // "ant" is a word, not a substring
    expect(containsDuplicated('woman gesturing ok', duplicated)).toBe(false);
  });

  it('has no duplicated caption and no held-out control in any text, and is what corpus.mjs builds', () => {
    expect(committed.length).toBeGreaterThan(1500);
    const dupWords = duplicated.map(words);
    for (const { text } of committed) {
      const w = words(text);
      for (const c of dupWords) {
        if (c.length === 1) expect(w).not.toEqual(c);
        else for (let i = 0; i + c.length <= w.length; i++) expect(w.slice(i, i + c.length)).not.toEqual(c);
      }
    }
    const texts = new Set(committed.map((e) => e.text));
    for (const c of duplicated) expect(texts.has(c)).toBe(false);
    const controls: string[] = controlCaptions();
    expect(controls).toHaveLength(20);
    expect(readFileSync(CONTROLS_FILE, 'utf8')).toBe(controls.map((c) => `${c}\n`).join(''));
    for (const c of controls) expect(texts.has(c)).toBe(false);
    // Sources: the other singleton captions, other emoji names, the recipe's phrases.
    expect(new Set(committed.map((e) => e.source))).toEqual(new Set(['singleton', 'emoji', 'phrase']));
    expect(committed.filter((e) => e.source === 'singleton')).toHaveLength(singletons.length - 20);
    const built = buildCorpus() as { kept: Entry[] };
    expect(corpusText(built.kept)).toBe(readFileSync(CORPUS_FILE, 'utf8'));
  });

  it("is the text the committed LM was trained on, as its manifest says", () => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'native-models/demo/mlm-demo/manifest.json'), 'utf8'));
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(manifest.training_sources.corpus).toEqual({ file: 'native-models/mlm_demo/corpus.tsv', sha256: sha(CORPUS_FILE), texts: committed.length });
    expect(manifest.training_sources.controls).toMatchObject({ file: 'native-models/mlm_demo/controls.txt', sha256: sha(CONTROLS_FILE), texts: 20 });
    expect(manifest.training_data).toMatch(/no text in it contains one of the 20 duplicated captions/);
    for (const key of ['singleton', 'emoji', 'phrase', 'excluded']) expect(typeof manifest.training_sources[key]).toBe('string');
  });
});
