/**
 * What the trigger-prompt search never proposes (algorithms spec, section 3). Two parts:
 *
 * 1. MemBench's "stop words", which are NOT English function words but whole token classes of the masked
 *    LM's vocabulary, banned by rule (`tokenBanClass`): bracketed specials (`[unused12]`, `[CLS]`, ...),
 *    tokens with a non-ASCII character, number tokens (any digit) and punctuation (anything that is not
 *    letters; the full stop is allowed in the last slot only, decided per proposal). Function words
 *    ("the", "of", "with", "no") stay allowed: most real trigger prompts contain them.
 * 2. A configurable list of generic words (`DEFAULT_GENERIC_WORDS`, or a word-per-line file read by
 *    `readBannedWordsFile`): words that raise the energy of almost any prompt a little without pointing
 *    at one training image.
 */
import { readFileSync, statSync } from 'node:fs';
import { EideticError } from '../util/errors.js';

export type TokenBanClass = 'special' | 'non-ascii' | 'number' | 'punctuation';

/**
 * Why a vocabulary entry may never be proposed, or null when it may. `##` continuation pieces are judged
 * by what follows the `##`. The full stop comes back as 'punctuation': the caller allows it in the last slot.
 */
export function tokenBanClass(token: string): TokenBanClass | null {
  if (/^\[.*\]$/.test(token)) return 'special';
  const core = token.startsWith('##') ? token.slice(2) : token;
  if (/[^\x00-\x7f]/.test(core)) return 'non-ascii';
  if (/[0-9]/.test(core)) return 'number';
  if (!/^[A-Za-z]+$/.test(core)) return 'punctuation';
  return null;
}

/**
 * The default generic-word list, in the spirit of MemBench's (about 300 words: colours, nature and
 * landscape words, "man", "face", "logo", "icon", "texture", "resolution", "zoom"): words that make a
 * diffusion model draw a generic scene (a landscape, a colour field, a face, a logo) whatever the rest
 * of the prompt says, so chains would collect them instead of a memorized image's words. Written for
 * Eidetic, not copied; docs/SEARCH.md describes it. No function words: they are allowed.
 */
export const DEFAULT_GENERIC_WORDS: readonly string[] = [
  // colours
  'red', 'reds', 'orange', 'oranges', 'yellow', 'yellows', 'green', 'greens', 'greenish', 'blue', 'blues', 'purple', 'purples',
  'pink', 'brown', 'browns', 'black', 'white', 'gray', 'grey', 'beige', 'cream', 'charcoal', 'crimson', 'burgundy', 'maroon',
  'magenta', 'cyan', 'teal', 'turquoise', 'aquamarine', 'navy', 'indigo', 'violet', 'lime', 'olive', 'tan', 'silver',
  'colorful', 'colourful', 'color', 'colour', 'colors', 'colours', 'dark', 'bright', 'shade', 'shades',
  // generic figures and graphic material
  'man', 'men', 'face', 'faces', 'teeth', 'logo', 'logos', 'icon', 'icons', 'texture', 'textures', 'background', 'surface',
  'silhouette', 'silhouettes', 'resolution', 'zoom', 'micro',
  // sky and weather
  'sky', 'skies', 'cloud', 'clouds', 'sun', 'sunset', 'sunrise', 'horizon', 'rainbow', 'rainbows', 'starlit',
  'milky', 'satellite', 'winter', 'summer', 'spring', 'autumn', 'fall', 'snow', 'ice', 'glacier', 'glaciers',
  // water
  'sea', 'seas', 'ocean', 'oceans', 'beach', 'beaches', 'coast', 'shore', 'island', 'islands', 'reef', 'reefs', 'lake', 'lakes',
  'river', 'rivers', 'stream', 'streams', 'creek', 'pond', 'ponds', 'pool', 'pools', 'water', 'waters', 'waterfall',
  'waterfalls', 'cascade', 'cascades', 'surf', 'surfing', 'offshore',
  // land
  'landscape', 'landscapes', 'nature', 'scenery', 'mountain', 'mountains', 'mountainous', 'mount', 'hill', 'hills', 'hilly',
  'hillside', 'valley', 'valleys', 'ridge', 'ridges', 'plateau', 'cliff', 'cliffs', 'rock', 'rocks', 'rocky', 'stone', 'stones',
  'gravel', 'desert', 'canyon', 'terrain', 'field', 'fields', 'meadow', 'meadows', 'grass', 'grassy', 'grassland', 'lawn',
  'pasture', 'farm', 'farms', 'countryside', 'village', 'villages', 'road', 'path', 'paths', 'trail', 'trails', 'lane', 'alley',
  // plants
  'forest', 'forests', 'forested', 'rainforest', 'jungle', 'wood', 'woods', 'wooded', 'woodland', 'tree', 'trees', 'oak',
  'pine', 'leaf', 'leaves', 'foliage', 'plant', 'plants', 'bush', 'bushes', 'shrub', 'shrubs', 'hedge', 'hedges', 'moss',
  'fern', 'ferns', 'vine', 'vines', 'flower', 'flowers', 'flowering', 'garden', 'gardens', 'park', 'parks', 'vegetation',
  'lush', 'canopy', 'orchard', 'vineyard',
];

/** What a ban file may hold; the request schema has the same limits. */
export const BANNED_FILE_LIMITS = { bytes: 4 * 1024 * 1024, words: 100_000, wordLength: 200 } as const;

/**
 * Words from a word-per-line text: one word a line, blank lines and lines starting with `#` ignored,
 * surrounding spaces trimmed, duplicates dropped (first kept). `what` names the source in messages.
 */
export function parseBannedWords(text: string, what: string): string[] {
  const words: string[] = [];
  const seen = new Set<string>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/\s/.test(line)) {
      throw new EideticError('bad_file', `${what}, line ${i + 1}: ${JSON.stringify(line.slice(0, 80))} is not one word (a ban list has one word a line)`);
    }
    if (line.length > BANNED_FILE_LIMITS.wordLength) {
      throw new EideticError('bad_file', `${what}, line ${i + 1}: a word longer than ${BANNED_FILE_LIMITS.wordLength} characters`);
    }
    if (seen.has(line)) continue;
    seen.add(line);
    words.push(line);
    if (words.length > BANNED_FILE_LIMITS.words) throw new EideticError('bad_file', `${what}: more than ${BANNED_FILE_LIMITS.words} words`);
  }
  return words;
}

/**
 * Reads a word-per-line ban list (`--banned-file`), refusing with a clear message a path that does not
 * exist or is not a file, a file over 4 MiB, and a binary or non-UTF-8 file, before any work starts.
 */
export function readBannedWordsFile(file: string): string[] {
  const what = `banned-word file ${file}`;
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new EideticError('bad_file', `${what} is not a file (a ban list is a text file with one word a line)`);
    size = st.size;
  } catch (err) {
    if (err instanceof EideticError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new EideticError('not_found', `${what} does not exist`);
    throw err;
  }
  if (size > BANNED_FILE_LIMITS.bytes) throw new EideticError('bad_file', `${what} is ${size} bytes; a ban list may be at most 4 MiB`);
  const bytes = readFileSync(file);
  if (bytes.includes(0)) throw new EideticError('bad_file', `${what} is binary, not a text file with one word a line`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new EideticError('bad_file', `${what} is not UTF-8 text (a ban list is a UTF-8 text file with one word a line)`);
  }
  const words = parseBannedWords(text, what);
  if (words.length === 0) throw new EideticError('bad_file', `${what} holds no words (one word a line; # starts a comment)`);
  return words;
}
