/**
 * MemBench's prompt-level mitigations (spec section 6): RNA inserts random integers in [0, 99999], RTA
 * random tokens of the model's CLIP vocabulary (ids below 49400, specials excluded, decoded to text), CWR
 * a word of the prompt again; each at a uniformly random word position (before the first word and after
 * the last allowed), n times, one after the other (a later insertion may land between earlier ones).
 * Every draw comes from the generator passed in, so the mitigated prompt is a function of the seed.
 */
import type { Xoshiro128 } from '../util/prng.js';

/** What RTA needs of a tokenizer (ClipTokenizer has it). */
export interface TokenVocabulary {
  vocabSize: number;
  bosId: number;
  eosId: number;
  padId: number;
  tokenText(id: number): string;
}

/** MemBench draws RTA's tokens below 49400: CLIP's vocabulary without its last merges and specials. */
export const RTA_TOKEN_LIMIT = 49400;

function words(prompt: string): string[] {
  return prompt.split(/\s+/).filter(Boolean);
}

function insertAt(list: string[], word: string, rng: Xoshiro128): void {
  list.splice(rng.nextBelow(list.length + 1), 0, word);
}

/** RNA: n random integers in [0, 99999]. Draw order per insertion: the number, then the position. */
export function randomNumberAddition(prompt: string, n: number, rng: Xoshiro128): string {
  const out = words(prompt);
  for (let i = 0; i < n; i++) insertAt(out, String(rng.nextBelow(100000)), rng);
  return out.join(' ');
}

/**
 * RTA: n random tokens. A token whose text is empty once whitespace and control characters are removed
 * (a lone space or control byte) is drawn again, as are
 * the start, end and pad tokens. Draw order per insertion: the token id(s), then the position.
 */
export function randomTokenAddition(prompt: string, n: number, rng: Xoshiro128, vocab: TokenVocabulary): string {
  const limit = Math.min(RTA_TOKEN_LIMIT, vocab.vocabSize);
  const specials = new Set([vocab.bosId, vocab.eosId, vocab.padId]);
  const out = words(prompt);
  for (let i = 0; i < n; i++) {
    let text = '';
    for (let tries = 0; text === ''; tries++) {
      if (tries > 1000) throw new Error(`the vocabulary (${vocab.vocabSize} ids) has no drawable token`);
      const id = rng.nextBelow(limit);
      // Whitespace and control characters (byte tokens such as \x1c) would split or hide the word.
      if (!specials.has(id)) text = vocab.tokenText(id).replace(/[\s\p{Cc}]+/gu, '');
    }
    insertAt(out, text, rng);
  }
  return out.join(' ');
}

/** CWR: a word of the original prompt (uniformly drawn), inserted again, n times. An empty prompt stays empty. */
export function captionWordRepetition(prompt: string, n: number, rng: Xoshiro128): string {
  const source = words(prompt);
  const out = [...source];
  if (source.length === 0) return '';
  for (let i = 0; i < n; i++) insertAt(out, source[rng.nextBelow(source.length)], rng);
  return out.join(' ');
}
