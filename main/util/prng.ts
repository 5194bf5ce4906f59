/**
 * The one seeded random-number module: the same numbers on every platform (Linux, macOS, Windows, CPU
 * or GPU), so the same seed gives the same latents, the same image, the same SolidMark key and the same
 * search chain everywhere.
 *
 * - `splitmix64`: mixes a 64-bit value; used for seeding and for forking streams.
 * - `Xoshiro128`: xoshiro128** on 32-bit integer arithmetic (Math.imul, >>> 0), seeded through
 *   SplitMix64. Its whole state is four 32-bit words (`state()` / `Xoshiro128.fromState`), so a search
 *   chain can be saved after any iteration and resumed with exactly the same continuation.
 * - `GaussianRng`: the same generator plus standard normals (Box–Muller in float64, both values of a
 *   pair used, rounded to float32 by `randn`).
 * - Stream forking: `forkStream(seed, index, family)`, with `forkSeed` (per-item noise and keys),
 *   `chainStream` (search chains) and `searchNoiseSeed` (the search energy's noise of one chain at one
 *   iteration) as the families' short forms.
 *
 * Nothing here may change its output: goldens, stored SolidMark keys and resumable searches depend on
 * every value (tests/unit/prng-streams.test.ts pins them).
 */

const MASK64 = (1n << 64n) - 1n;

export type Seed = number | bigint | string;

/** SplitMix64 step: a well-mixed 64-bit value from a counter; used for seeding and stream forking. */
export function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** A seed as the unsigned 64-bit value the generators use; refuses negative and non-integer seeds. */
function toSeed(seed: Seed): bigint {
  const s = typeof seed === 'bigint' ? seed : BigInt(seed);
  if (s < 0n) throw new Error(`seed must be a non-negative integer (got ${seed})`);
  return s & MASK64;
}

/**
 * Stream families: each forks a run seed into independent per-index streams with its own constant.
 * `item` and `chain` come from the two generator modules that used to exist, and stored results depend
 * on both: `item` streams give the per-image noise and the per-entry SolidMark keys (goldens, keyed
 * datasets), `chain` streams give the Gibbs search chains (saved, resumable runs). `searchNoise` gives the
 * search energy's noise x_T per (chain, iteration) (see `searchNoiseSeed`); `sample` streams draw which
 * items a job queries (SolidMark's query sample).
 * Never change a constant; add a family for a new purpose instead.
 */
export const STREAM_FAMILIES = {
  /** Item k of a job: image k of a prompt, key of dataset entry k (searches saved before `searchNoise` drew iteration k's noise here). */
  item: 0x632be59bd9b4e019n,
  /** Chain c of a trigger-prompt search. */
  chain: 0x5851f42d4c957f2dn,
  /** The noise of chain c at iteration i of a trigger-prompt search: forked twice, by c then by i. */
  searchNoise: 0x3c6ef372fe94f82bn,
  /** Which items a job draws from a list (SolidMark's seeded query sample). */
  sample: 0xd1b54a32d192ed03n,
  /** The random draws of a mitigation for prompt p of a benchmark (inserted numbers and tokens, embedding noise). */
  mitigation: 0x2545f4914f6cdd1dn,
} as const;
export type StreamFamily = keyof typeof STREAM_FAMILIES;

/** The seed of stream `index` of family `family` in a run seeded with `seed`: independent, reproducible. */
export function forkStream(seed: Seed, index: number, family: StreamFamily): bigint {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`stream index must be a non-negative integer (got ${index})`);
  return splitmix64(toSeed(seed) ^ splitmix64(BigInt(index) + STREAM_FAMILIES[family]));
}

/** An independent seed for item `index` of a job seeded with `seed` (image k of a prompt, key of entry i). */
export function forkSeed(seed: Seed, index: number): bigint {
  return forkStream(seed, index, 'item');
}

/** The generator of chain `index` of a search seeded with `seed`. */
export function chainStream(seed: Seed, index: number): Xoshiro128 {
  return new Xoshiro128(forkStream(seed, index, 'chain'));
}

/**
 * The seed of the search energy's noise x_T for chain `chain` at iteration `iteration` of a search seeded
 * with `seed`: forkStream(forkStream(seed, chain, 'searchNoise'), iteration, 'searchNoise'). Every chain and
 * every iteration draws its own noise (MemBench does; one noise shared by all chains correlates them), and
 * it depends on nothing else, so a resumed search sees exactly the noise an uninterrupted one would.
 */
export function searchNoiseSeed(seed: Seed, chain: number, iteration: number): bigint {
  return forkStream(forkStream(seed, chain, 'searchNoise'), iteration, 'searchNoise');
}

/** The generator that draws a seeded sample of items for a job seeded with `seed` (stream `index`). */
export function sampleStream(seed: Seed, index: number): Xoshiro128 {
  return new Xoshiro128(forkStream(seed, index, 'sample'));
}

/** The generator of a mitigation's draws for prompt `index` of a benchmark seeded with `seed`. */
export function mitigationStream(seed: Seed, index: number): GaussianRng {
  return new GaussianRng(forkStream(seed, index, 'mitigation'));
}

/** The serialisable state: four unsigned 32-bit words, not all zero. */
export type PrngState = [number, number, number, number];

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** xoshiro128** seeded through SplitMix64. */
export class Xoshiro128 {
  protected readonly s = new Uint32Array(4);

  constructor(seed: Seed) {
    let x = toSeed(seed);
    for (let i = 0; i < 2; i++) {
      x = splitmix64(x + BigInt(i));
      this.s[2 * i] = Number(x & 0xffffffffn);
      this.s[2 * i + 1] = Number(x >> 32n);
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // the all-zero state is a fixed point
  }

  static fromSeed(seed: Seed): Xoshiro128 {
    return new Xoshiro128(seed);
  }

  /** A generator continuing from a saved `state()`; refuses a damaged state. */
  static fromState(state: readonly number[]): Xoshiro128 {
    const rng = new Xoshiro128(0);
    rng.setState(state);
    return rng;
  }

  state(): PrngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new Error(`PRNG state must be four unsigned 32-bit integers (got ${JSON.stringify(state)})`);
    }
    if (state.every((w) => w === 0)) throw new Error('PRNG state must not be all zero');
    this.s.set(state);
  }

  /** xoshiro128**: the next 32-bit output. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (rejection on the top of the 32-bit range). */
  nextBelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new Error(`nextBelow needs an integer in [1, 2^32] (got ${n})`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** `n` values of `nextDouble()`, in draw order. */
  uniform(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextDouble();
    return out;
  }
}

/** Seeded standard normals (a scheduler's NoiseSource): xoshiro128** plus Box–Muller with the spare kept. */
export class GaussianRng extends Xoshiro128 {
  private spare: number | null = null;

  /** One standard normal value (Box–Muller; both values of a pair are used). */
  nextGaussian(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.nextDouble(); // log(0) guard
    const v = this.nextDouble();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  randn(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextGaussian();
    return out;
  }

  /** The full generator state including the unused Box–Muller value, for resumable jobs. */
  getState(): { s: PrngState; spare: number | null } {
    return { s: this.state(), spare: this.spare };
  }

  restoreState(state: { s: readonly number[]; spare: number | null }): void {
    this.setState(state.s);
    this.spare = state.spare;
  }
}
