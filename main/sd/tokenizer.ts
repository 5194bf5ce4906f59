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

  decode(ids: ArrayLike<number>): string {
    const content = Array.from(ids).filter((i) => i !== this.bosId && i !== this.eosId && i !== this.padId);
    return this.tokenizer.decode(content, { skip_special_tokens: true }).trim();
  }
}
