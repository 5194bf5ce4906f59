/**
 * A masked language model in BERT's ONNX layout (model.onnx, vocab.txt, tokenizer_config.json) as the
 * proposal source of the trigger-prompt search: for a masked slot it returns the LM's top-Q tokens,
 * after the spec's bans (bans.ts: MemBench's token classes, i.e. bracketed specials, non-ASCII tokens,
 * number tokens and punctuation with the full stop only in the last slot; then a configurable list of
 * generic words). Function words are never banned by rule. WordPiece tokenization runs in
 * @huggingface/tokenizers; without a tokenizer.json the BERT pipeline is assembled from vocab.txt.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { EideticError } from '../util/errors.js';
import { inputInfo, intTensor, openSession, readFloat, type InputInfo } from '../sd/onnx-session.js';
import { specialTokenContent } from '../sd/tokenizer.js';
import { DEFAULT_CONTEXT_PREFIX, type ProposalOptions, type ProposalRequest, type ProposalSource } from './gibbs.js';
import { tokenBanClass } from './bans.js';

/** The default generic-word list lives with the class rules in bans.ts; re-exported for callers of this module. */
export { DEFAULT_GENERIC_WORDS } from './bans.js';

const MLM_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;

/**
 * Plain text from word pieces (specials already removed): "##" pieces glue to the previous piece, and
 * spaces before punctuation go, as BERT's decoder with clean_up_tokenization_spaces does.
 */
export function decodeWordPieces(tokens: readonly string[]): string {
  let text = '';
  for (const t of tokens) {
    if (t.startsWith('##')) text += t.slice(2);
    else text += (text === '' ? '' : ' ') + t;
  }
  return text
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}

/** BERT's tokenizer.json, assembled from vocab.txt (the layout most ONNX BERT exports ship). */
function bertTokenizerJson(vocab: Record<string, number>, specials: string[], lowercase: boolean, unk: string): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

function readJson(file: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new EideticError('bad_model', `${what}: ${path.basename(file)} is not valid JSON (${(err as Error).message})`);
  }
}

/** Indices of the k largest allowed values of row[0..n), largest first, ties to the lower id. */
function topAllowed(row: Float32Array, k: number, allowed: (id: number) => boolean): number[] {
  if (k <= 0) return [];
  // A min-heap of the best k so far: O(V log k) instead of sorting the whole vocabulary.
  const heap: number[] = [];
  const worse = (a: number, b: number) => row[a] < row[b] || (row[a] === row[b] && a > b);
  const siftUp = (i: number) => {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!worse(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  };
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l], heap[m])) m = l;
      if (r < heap.length && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let id = 0; id < row.length; id++) {
    if (!allowed(id)) continue;
    if (heap.length < k) {
      heap.push(id);
      siftUp(heap.length - 1);
    } else if (worse(heap[0], id)) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}

/** BERT's position limit: config.json's max_position_embeddings, else the tokenizer's, else 512. */
function maxSequenceLength(dir: string, tokenizerConfig: Record<string, unknown>): number {
  const configFile = path.join(dir, 'config.json');
  const model = existsSync(configFile) ? readJson(configFile, `mlm folder ${dir}`) : {};
  const candidates = [model.max_position_embeddings, tokenizerConfig.model_max_length];
  const found = candidates.find((v): v is number => typeof v === 'number' && Number.isInteger(v) && v > 2 && v <= 100_000);
  return found ?? 512;
}

export interface MaskedLmOptions {
  /** ONNX Runtime execution provider; the LM is small, so cpu keeps the GPU for the UNet. */
  executionProvider?: string;
}

export class MaskedLm implements ProposalSource {
  readonly vocabSize: number;
  readonly maskId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly fullStopId: number | undefined;
  /** 1 where a token may never be proposed: its class is banned (bans.ts); the full stop is decided per slot. */
  private readonly alwaysBanned: Uint8Array;
  private readonly specialIds: Set<number>;
  private readonly prefixCache = new Map<string, number[]>();

  private constructor(
    readonly dir: string,
    private readonly session: ort.InferenceSession,
    private readonly inputs: InputInfo[],
    private readonly logitsName: string,
    private readonly tokenizer: Tokenizer,
    private readonly vocab: string[],
    specials: Record<'pad' | 'unk' | 'cls' | 'sep' | 'mask', number>,
    readonly provider: string,
    /** Longest token row the model accepts ([CLS] and [SEP] included). */
    readonly maxLength: number,
  ) {
    this.vocabSize = vocab.length;
    this.maskId = specials.mask;
    this.clsId = specials.cls;
    this.sepId = specials.sep;
    this.padId = specials.pad;
    this.unkId = specials.unk;
    this.specialIds = new Set(Object.values(specials));
    this.fullStopId = vocab.indexOf('.') >= 0 ? vocab.indexOf('.') : undefined;
    this.alwaysBanned = new Uint8Array(vocab.length);
    vocab.forEach((token, id) => {
      if (this.isAlwaysBanned(token, id)) this.alwaysBanned[id] = 1;
    });
  }

  private isAlwaysBanned(token: string, id: number): boolean {
    if (this.specialIds.has(id)) return true;
    if (id === this.fullStopId) return false; // allowed in the last slot only: decided per request
    return tokenBanClass(token) !== null; // [unusedN], non-ASCII, digits, punctuation (bans.ts)
  }

  /** Loads and validates the folder; every problem message starts with "mlm folder <dir>:". */
  static async load(dir: string, options: MaskedLmOptions = {}): Promise<MaskedLm> {
    const what = `mlm folder ${dir}`;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new EideticError('bad_model', `${what}: not a folder`);
    const modelFile = path.join(dir, 'model.onnx');
    const vocabFile = path.join(dir, 'vocab.txt');
    const layout = 'a BERT-layout masked LM needs model.onnx, vocab.txt and tokenizer_config.json';
    if (!existsSync(vocabFile)) throw new EideticError('bad_model', `${what}: vocab.txt is missing (${layout})`);
    if (!existsSync(modelFile)) throw new EideticError('bad_model', `${what}: model.onnx is missing (${layout})`);

    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readJson(configFile, what) : {};
    const lowercase = config.do_lower_case === undefined ? true : config.do_lower_case === true;

    const lines = readFileSync(vocabFile, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop(); // the trailing newline ends the last entry
    const vocab = lines.map((l) => l.replace(/\r$/, ''));
    if (vocab.length === 0) throw new EideticError('bad_model', `${what}: vocab.txt is empty`);
    const vocabMap: Record<string, number> = {};
    vocab.forEach((t, i) => {
      if (!(t in vocabMap)) vocabMap[t] = i;
    });

    const specialName = (key: string, fallback: string) => specialTokenContent(config[key]) ?? fallback;
    const names = {
      pad: specialName('pad_token', '[PAD]'),
      unk: specialName('unk_token', '[UNK]'),
      cls: specialName('cls_token', '[CLS]'),
      sep: specialName('sep_token', '[SEP]'),
      mask: specialName('mask_token', '[MASK]'),
    };
    const missing = Object.values(names).filter((t) => !(t in vocabMap));
    if (missing.length > 0) {
      throw new EideticError('bad_model', `${what}: vocab.txt lacks the special token${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
    }
    const specials = {
      pad: vocabMap[names.pad],
      unk: vocabMap[names.unk],
      cls: vocabMap[names.cls],
      sep: vocabMap[names.sep],
      mask: vocabMap[names.mask],
    };

    let tokenizer: Tokenizer;
    try {
      const tokJson = path.join(dir, 'tokenizer.json');
      const json = existsSync(tokJson)
        ? { ...readJson(tokJson, what), truncation: null, padding: null, post_processor: null }
        : bertTokenizerJson(vocabMap, Object.values(names), lowercase, names.unk);
      tokenizer = new Tokenizer(json, config);
    } catch (err) {
      if (err instanceof EideticError) throw err;
      throw new EideticError('bad_model', `${what}: cannot build the WordPiece tokenizer (${(err as Error).message})`);
    }

    const { session, provider } = await openSession(modelFile, options.executionProvider ?? 'cpu');
    const expected = `a BERT-layout masked LM takes int64 input_ids, attention_mask and token_type_ids [batch, sequence]`;
    const inputNames = [...session.inputNames];
    const unknown = inputNames.filter((n) => !(MLM_INPUTS as readonly string[]).includes(n));
    const absent = ['input_ids', 'attention_mask'].filter((n) => !inputNames.includes(n));
    if (unknown.length > 0 || absent.length > 0) {
      await session.release();
      throw new EideticError('bad_model', `${what}: model.onnx's inputs are ${inputNames.join(', ')}, but ${expected}`);
    }
    const inputs = inputNames.map((n) => inputInfo(session, n, modelFile));
    const badInput = inputs.find((i) => (i.type !== 'int64' && i.type !== 'int32') || i.rank !== 2);
    if (badInput) {
      await session.release();
      throw new EideticError('bad_model', `${what}: model.onnx's input ${badInput.name} is ${badInput.type} of rank ${badInput.rank}, but ${expected}`);
    }
    const logitsName = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];

    const lm = new MaskedLm(dir, session, inputs, logitsName, tokenizer, vocab, specials, provider, maxSequenceLength(dir, config));
    // One real inference checks that the logits cover exactly the vocabulary.
    const dims = await lm.logitDims([[specials.cls, specials.mask, specials.sep]]).catch(async (err: unknown) => {
      await session.release();
      throw err instanceof EideticError ? err : new EideticError('bad_model', `${what}: model.onnx fails on a 3-token input (${(err as Error).message})`);
    });
    if (dims.length !== 3 || dims[0] !== 1 || dims[1] !== 3) {
      await session.release();
      throw new EideticError('bad_model', `${what}: model.onnx's ${logitsName} have shape [${dims.join(', ')}] for a [1, 3] input; expected [batch, sequence, vocabulary]`);
    }
    if (dims[2] !== vocab.length) {
      await session.release();
      throw new EideticError('bad_model', `${what}: vocab.txt has ${vocab.length} entries but model.onnx's logits have ${dims[2]}`);
    }
    return lm;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private feeds(rows: readonly number[][]): { feeds: Record<string, ort.Tensor>; length: number } {
    const length = Math.max(...rows.map((r) => r.length));
    const ids = new Array<number>(rows.length * length).fill(this.padId);
    const mask = new Array<number>(rows.length * length).fill(0);
    rows.forEach((r, b) => {
      r.forEach((id, s) => {
        ids[b * length + s] = id;
        mask[b * length + s] = 1;
      });
    });
    const dims = [rows.length, length];
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of this.inputs) {
      const data = input.name === 'input_ids' ? ids : input.name === 'attention_mask' ? mask : new Array<number>(ids.length).fill(0);
      feeds[input.name] = intTensor(input.type, data, dims);
    }
    return { feeds, length };
  }

  private async logitDims(rows: number[][]): Promise<readonly number[]> {
    const out = await this.session.run(this.feeds(rows).feeds);
    return out[this.logitsName].dims;
  }

  /** Logits [rows, length, V] for token rows (padded to the longest with attention 0). */
  private async logits(rows: number[][]): Promise<{ data: Float32Array; length: number }> {
    const { feeds, length } = this.feeds(rows);
    const out = await this.session.run(feeds);
    return { data: readFloat(out[this.logitsName], `masked LM ${this.dir}`), length };
  }

  /** Word pieces of `text` as the LM tokenizes it (lower-cased for uncased models). */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(text, { add_special_tokens: false });
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number);
  }

  idToToken(id: number): string {
    const t = this.vocab[id];
    if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    return t;
  }

  decode(slots: readonly number[]): string {
    return decodeWordPieces(slots.filter((id) => !this.specialIds.has(id)).map((id) => this.idToToken(id)));
  }

  tokenIds(words: readonly string[]): Set<number> {
    const ids = new Set<number>();
    for (const w of words) {
      const pieces = this.encode(w);
      if (pieces.length === 1 && pieces[0] !== this.unkId) ids.add(pieces[0]);
    }
    return ids;
  }

  maxSlots(contextPrefix: string): number {
    return Math.max(0, this.maxLength - 2 - this.prefixIds(contextPrefix).length);
  }

  private prefixIds(prefix: string): number[] {
    let ids = this.prefixCache.get(prefix);
    if (!ids) {
      ids = this.encode(prefix);
      this.prefixCache.set(prefix, ids);
    }
    return ids;
  }

  /** The LM's top-q candidates for one masked slot, "keep" and [MASK] always among them. */
  async proposeTokens(
    slots: readonly number[],
    slotIndex: number,
    q: number,
    banned: ReadonlySet<number> = new Set(),
    contextPrefix: string = DEFAULT_CONTEXT_PREFIX,
    include: readonly number[] = [slots[slotIndex], this.maskId],
  ): Promise<number[]> {
    const [ids] = await this.propose([{ slots, slotIndex, include }], q, { banned, contextPrefix });
    return ids;
  }

  /** All requests in one LM call: `[CLS] <prefix> <slots, this one masked> [SEP]` per row. */
  async propose(requests: readonly ProposalRequest[], q: number, options: ProposalOptions): Promise<number[][]> {
    if (requests.length === 0) return [];
    const prefix = this.prefixIds(options.contextPrefix);
    const rows = requests.map((r) => {
      if (!Number.isInteger(r.slotIndex) || r.slotIndex < 0 || r.slotIndex >= r.slots.length) {
        throw new RangeError(`slot ${r.slotIndex} is outside 0..${r.slots.length - 1}`);
      }
      const slots = r.slots.map((id, i) => (i === r.slotIndex ? this.maskId : id));
      return [this.clsId, ...prefix, ...slots, this.sepId];
    });
    const { data, length } = await this.logits(rows);
    const V = this.vocabSize;
    return requests.map((r, b) => {
      const include = [...new Set(r.include)];
      const taken = new Set(include);
      const lastSlot = r.slotIndex === r.slots.length - 1;
      const position = 1 + prefix.length + r.slotIndex;
      const row = data.subarray((b * length + position) * V, (b * length + position + 1) * V);
      const allowed = (id: number) =>
        !taken.has(id) && !options.banned.has(id) && (id === this.fullStopId ? lastSlot : this.alwaysBanned[id] === 0);
      return [...include, ...topAllowed(row, Math.max(0, q - include.length), allowed)];
    });
  }
}
