/**
 * Seeded noise that is the same on every platform: xoshiro128** on 32-bit integer arithmetic
 * (Math.imul, >>> 0), seeded through SplitMix64, and Box–Muller in float64 rounded to float32.
 * Same seed, same latents, same image — on Linux, macOS and Windows, CPU or GPU.
 */
import type { NoiseSource } from './schedulers/types.js';

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 step: a well-mixed 64-bit value from a counter; used for seeding and stream forking. */
function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function toSeed(seed: number | bigint | string): bigint {
  const s = typeof seed === 'bigint' ? seed : BigInt(seed);
  if (s < 0n) throw new Error(`seed must be non-negative (got ${seed})`);
  return s & MASK64;
}

/** An independent seed for item `index` of a job seeded with `seed` (image k of a prompt, key of entry i). */
export function forkSeed(seed: number | bigint | string, index: number): bigint {
  return splitmix64(toSeed(seed) ^ splitmix64(BigInt(index) + 0x632be59bd9b4e019n));
}

export class GaussianRng implements NoiseSource {
  private readonly s = new Uint32Array(4);
  private spare: number | null = null;

  constructor(seed: number | bigint | string) {
    let x = toSeed(seed);
    for (let i = 0; i < 2; i++) {
      x = splitmix64(x + BigInt(i));
      this.s[2 * i] = Number(x & 0xffffffffn);
      this.s[2 * i + 1] = Number(x >> 32n);
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // the all-zero state is a fixed point
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

  uniform(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextDouble();
    return out;
  }

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

  /** The full generator state, for resumable jobs. */
  getState(): { s: number[]; spare: number | null } {
    return { s: Array.from(this.s), spare: this.spare };
  }

  setState(state: { s: number[]; spare: number | null }): void {
    this.s.set(state.s);
    this.spare = state.spare;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
