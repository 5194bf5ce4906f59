/**
 * A small PRNG whose whole state is four 32-bit words, so a search chain can be saved after any
 * iteration and resumed with exactly the same continuation. xoshiro128** on 32-bit integer arithmetic
 * (Math.imul, >>> 0): the same numbers on every platform. Seeded through SplitMix64.
 */

const MASK64 = (1n << 64n) - 1n;

function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The serialisable state: four unsigned 32-bit words, not all zero. */
export type PrngState = [number, number, number, number];

export class Xoshiro128 {
  private readonly s = new Uint32Array(4);

  private constructor() {}

  static fromSeed(seed: number | bigint | string): Xoshiro128 {
    const s = typeof seed === 'bigint' ? seed : BigInt(seed);
    if (s < 0n) throw new Error(`seed must be a non-negative integer (got ${seed})`);
    const rng = new Xoshiro128();
    let x = s & MASK64;
    for (let i = 0; i < 2; i++) {
      x = splitmix64(x + BigInt(i));
      rng.s[2 * i] = Number(x & 0xffffffffn);
      rng.s[2 * i + 1] = Number(x >> 32n);
    }
    if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) === 0) rng.s[0] = 1; // all-zero is a fixed point
    return rng;
  }

  /** Stream `index` of a run seeded with `seed` (chain c of a search): independent, reproducible. */
  static forStream(seed: number | bigint | string, index: number): Xoshiro128 {
    if (!Number.isInteger(index) || index < 0) throw new Error(`stream index must be a non-negative integer (got ${index})`);
    const s = typeof seed === 'bigint' ? seed : BigInt(seed);
    if (s < 0n) throw new Error(`seed must be a non-negative integer (got ${seed})`);
    return Xoshiro128.fromSeed(splitmix64((s & MASK64) ^ splitmix64(BigInt(index) + 0x5851f42d4c957f2dn)));
  }

  static fromState(state: readonly number[]): Xoshiro128 {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new Error(`PRNG state must be four unsigned 32-bit integers (got ${JSON.stringify(state)})`);
    }
    if (state.every((w) => w === 0)) throw new Error('PRNG state must not be all zero');
    const rng = new Xoshiro128();
    rng.s.set(state);
    return rng;
  }

  state(): PrngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

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
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
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
}
