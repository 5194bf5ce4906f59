// The demo masked LM's training text (native-models/mlm_demo/corpus.tsv): text that excludes the captions
// the trigger-prompt search is meant to find. The LM stands in for bert-base-uncased, which never saw the
// diffusion model's training captions; so no sequence it trains on may contain a duplicated caption.
//
// Sources (each line of corpus.tsv is `source<TAB>text`):
//   singleton  the demo dataset's captions that appear once (prompts-singletons.txt), less 20 held out as
//              controls (CONTROL_COUNT, seeded): unseen captions the probe in tests/integration/demo-mlm.test.ts
//              compares the duplicated ones with
//   emoji      other Noto Emoji names from the @iconify-json/noto package (icons and aliases) that are not
//              demo captions: skin-tone suffixes stripped, flags, keycaps, regional indicators and digit-only
//              names left out, duplicates removed
//   phrase     native-models/mlm_demo/phrases.txt (generic English phrases written for this recipe)
//
// The exclusion rule (`containsDuplicated`): a text is left out when its words contain a duplicated caption
// of two or more words as a contiguous run ("green check mark button" contains "check mark button"), or when
// the text IS a one-word duplicated caption ("fire"). A one-word caption is also an English word: the text
// "heart on fire" stays, as a real BERT has seen "fire" in other sentences, but never the caption itself.
//
// Run from the repository root: node native-models/mlm_demo/corpus.mjs (rewrites corpus.tsv and controls.txt,
// prints counts); train.py reads both.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../dataset/mulberry32.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const dataset = path.join(root, 'native-models', 'demo', 'dataset');
export const CORPUS_FILE = path.join(here, 'corpus.tsv');
export const CONTROLS_FILE = path.join(here, 'controls.txt');
export const CONTROL_SEED = 4242;
export const CONTROL_COUNT = 20;

const lines = (file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/** Lower-case words, split on anything that is not a letter or digit. */
export function words(text) {
  return text.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** True when `text` must not be trained on: it contains a duplicated caption (see the rule above). */
export function containsDuplicated(text, duplicated) {
  const w = words(text);
  return duplicated.some((caption) => {
    const c = words(caption);
    if (c.length === 1) return w.length === 1 && w[0] === c[0];
    for (let i = 0; i + c.length <= w.length; i++) if (c.every((x, j) => w[i + j] === x)) return true;
    return false;
  });
}

export function datasetCaptions() {
  return { duplicated: lines(path.join(dataset, 'prompts-duplicated.txt')), singletons: lines(path.join(dataset, 'prompts-singletons.txt')) };
}

/** The held-out singleton captions: never trained on, compared with the duplicated ones by the probe. */
export function controlCaptions(singletons = datasetCaptions().singletons) {
  const rand = mulberry32(CONTROL_SEED);
  const pool = [...singletons].sort();
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, CONTROL_COUNT).sort();
}

function emojiNames(exclude) {
  const require = createRequire(import.meta.url);
  const set = require('@iconify-json/noto/icons.json');
  const names = [...Object.keys(set.icons), ...Object.keys(set.aliases ?? {})]
    .filter((n) => !/^flag-|keycap|^regional|^\d+$/.test(n))
    .map((n) =>
      n
        .replace(/-(light|medium-light|medium|medium-dark|dark)-skin-tone/g, '')
        .replace(/-tone\d$/, '')
        .replace(/-/g, ' '),
    );
  return [...new Set(names)].filter((n) => !exclude.has(n)).sort();
}

/** Every training text with its source, in a fixed order; nothing in it contains a duplicated caption. */
export function buildCorpus() {
  const { duplicated, singletons } = datasetCaptions();
  const controls = new Set(controlCaptions(singletons));
  const captions = new Set([...duplicated, ...singletons]);
  const candidates = [
    ...singletons.filter((c) => !controls.has(c)).map((text) => ({ source: 'singleton', text })),
    ...emojiNames(captions).map((text) => ({ source: 'emoji', text })),
    ...lines(path.join(here, 'phrases.txt')).map((text) => ({ source: 'phrase', text })),
  ];
  const seen = new Set();
  const kept = [];
  const excluded = [];
  for (const c of candidates) {
    if (seen.has(c.text)) continue;
    seen.add(c.text);
    (containsDuplicated(c.text, duplicated) ? excluded : kept).push(c);
  }
  return { kept, excluded, controls: [...controls] };
}

export function corpusText(kept) {
  return kept.map((c) => `${c.source}\t${c.text}\n`).join('');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { kept, excluded, controls } = buildCorpus();
  writeFileSync(CORPUS_FILE, corpusText(kept));
  writeFileSync(CONTROLS_FILE, controls.map((c) => `${c}\n`).join(''));
  const by = (s) => kept.filter((c) => c.source === s).length;
  console.log(`${path.relative(root, CORPUS_FILE)}: ${kept.length} texts (singleton ${by('singleton')}, emoji ${by('emoji')}, phrase ${by('phrase')})`);
  console.log(`left out for containing a duplicated caption (${excluded.length}): ${excluded.map((c) => c.text).join(' | ')}`);
  console.log(`held-out controls (${controls.length}): ${controls.join(' | ')}`);
}
