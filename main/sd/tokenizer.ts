/**
 * CLIP tokenization through @huggingface/tokenizers (the Hugging Face tokenizers pipeline in JS), from
 * either tokenizer.json or CLIP's "slow" files (vocab.json + merges.txt, from which the same pipeline is
 * assembled). Output: 77 ids, <|startoftext|> first, <|endoftext|> after the last token, padded with
 * the pad token named in tokenizer_config.json (SD 1.x: <|endoftext|>, SD 2.x: "!").
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { EideticError } from '../util/errors.js';

export const CLIP_MAX_LENGTH = 77;

export interface TokenizedPrompt {
  ids: Int32Array;
  /** Number of real tokens including start and end (the rest is padding). */
  length: number;
  /** True when the prompt was longer than the model accepts and its tail was dropped. */
  truncated: boolean;
  droppedTokens: number;
}

/** Special tokens may be plain strings or {"__type": "AddedToken", "content": ...} objects. */
export function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new EideticError('bad_model', `${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** CLIP's pre-tokenization split, the same pattern CLIP's tokenizer.json files carry. */
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** Assembles the tokenizer.json equivalent of CLIP's vocab.json + merges.txt. */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[], specials: string[]): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials
      .filter((t) => t in vocab)
      .map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|endoftext|>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

export interface WordSpan {
  word: string;
  /** Token positions [start, end) in the encoded ids. */
  start: number;
  end: number;
  /** Number of tokens the word becomes (before truncation). */
  tokens: number;
  /** False when truncation dropped all of the word's tokens. */
  kept: boolean;
}

/** The prompt with word `index` (of its whitespace-separated words) left out: occlusion attribution's variants. */
export function withoutWord(text: string, index: number): string {
  return text.split(/\s+/).filter(Boolean).filter((_, i) => i !== index).join(' ');
}

export class ClipTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly bosId: number,
    readonly eosId: number,
    readonly padId: number,
    readonly padToken: string,
    readonly maxLength: number,
    readonly source: 'tokenizer.json' | 'vocab.json+merges.txt',
  ) {}

  static load(dir: string): ClipTokenizer {
    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readJson(configFile) : {};
    const mapFile = path.join(dir, 'special_tokens_map.json');
    const specialMap = existsSync(mapFile) ? readJson(mapFile) : {};
    const pick = (key: string, fallback: string) => specialTokenContent(config[key]) ?? specialTokenContent(specialMap[key]) ?? fallback;
    const bos = pick('bos_token', '<|startoftext|>');
    const eos = pick('eos_token', '<|endoftext|>');
    const pad = pick('pad_token', eos);
    const maxLength = typeof config.model_max_length === 'number' && config.model_max_length <= 4096 ? config.model_max_length : CLIP_MAX_LENGTH;

    let json: Record<string, unknown>;
    let source: ClipTokenizer['source'];
    const tokJson = path.join(dir, 'tokenizer.json');
    const vocabFile = path.join(dir, 'vocab.json');
    const mergesFile = path.join(dir, 'merges.txt');
    if (existsSync(tokJson)) {
      json = readJson(tokJson);
      // Truncation and padding are applied here, to CLIP's rules, not by the file's settings.
      json = { ...json, truncation: null, padding: null, post_processor: null };
      source = 'tokenizer.json';
    } else if (existsSync(vocabFile) && existsSync(mergesFile)) {
      const vocab = readJson(vocabFile) as Record<string, number>;
      const merges = readFileSync(mergesFile, 'utf8')
        .split(/\r?\n/)
        .filter((line, i) => line.trim() !== '' && !(i === 0 && line.startsWith('#version')));
      json = clipTokenizerJson(vocab, merges, [...new Set([bos, eos, pad])]);
      source = 'vocab.json+merges.txt';
    } else {
      throw new EideticError('bad_model', `${dir}: no tokenizer (neither tokenizer.json nor vocab.json + merges.txt)`);
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, { ...config, model_max_length: maxLength });
    } catch (err) {
      throw new EideticError('bad_model', `${dir}: cannot build the tokenizer (${(err as Error).message})`);
    }
    const id = (token: string, role: string) => {
      const ids = tokenizer.encode(token, { add_special_tokens: false }).ids;
      if (ids.length !== 1) throw new EideticError('bad_model', `${dir}: the ${role} token ${JSON.stringify(token)} is not in the vocabulary`);
      return Number(ids[0]);
    };
    return new ClipTokenizer(tokenizer, id(bos, 'start'), id(eos, 'end'), id(pad, 'pad'), pad, maxLength, source);
  }

  /** Ids 0 .. vocabSize - 1 exist (added tokens included). */
  get vocabSize(): number {
    return this.tokenizer.get_vocab(true).size;
  }

  /** The text one token decodes to (CLIP's end-of-word marker becomes the trailing space, trimmed). */
  tokenText(id: number): string {
    return this.tokenizer.decode([id], { skip_special_tokens: false }).trim();
  }

  /** The content tokens of `text` (no specials, no truncation). */
  contentIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number);
  }

  encode(text: string): TokenizedPrompt {
    const content = this.contentIds(text);
    const room = this.maxLength - 2;
    const kept = content.slice(0, room);
    const ids = new Int32Array(this.maxLength).fill(this.padId);
    ids[0] = this.bosId;
    ids.set(kept, 1);
    ids[kept.length + 1] = this.eosId;
    return { ids, length: kept.length + 2, truncated: content.length > room, droppedTokens: Math.max(0, content.length - room) };
  }

  /**
   * Text of a token sequence, for display: the start token is skipped and decoding stops at the first
   * end token, so padding is never shown (SD 2.x pads with "!", a real token that may also be in the prompt).
   */
  decode(ids: ArrayLike<number>): string {
    const all = Array.from(ids, Number);
    const from = all[0] === this.bosId ? 1 : 0;
    const end = all.indexOf(this.eosId, from);
    const content = all.slice(from, end < 0 ? all.length : end);
    // Specials are not skipped: SD 2.x declares "!" special, and a "!" the user typed must stay visible.
    return this.tokenizer.decode(content, { skip_special_tokens: false }).trim();
  }

  /**
   * The prompt's whitespace-separated words with the positions their tokens take in `encode(text).ids`
   * ([start, end), start >= 1 after the start token). CLIP never merges tokens across whitespace, so
   * tokenizing word by word gives exactly the tokens of the whole prompt. Words past the 77-token limit
   * get `kept: false` (their tokens were truncated away; a partly cut word keeps what fits).
   */
  wordSpans(text: string): WordSpan[] {
    const room = this.maxLength - 2;
    const spans: WordSpan[] = [];
    let at = 1;
    for (const word of text.split(/\s+/).filter(Boolean)) {
      const n = this.contentIds(word).length;
      const start = Math.min(at, room + 1);
      const end = Math.min(at + n, room + 1);
      spans.push({ word, start, end, tokens: n, kept: end > start || n === 0 });
      at += n;
    }
    return spans;
  }
}
