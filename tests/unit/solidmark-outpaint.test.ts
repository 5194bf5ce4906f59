// The SolidMark query with a stand-in pipeline that records what it is given: the encoder must never see
// the key (the border it encodes is the same mid grey whatever the keyed file's border), and the error is
// measured against the key actually written into the 8-bit file, round(255 k) / 255.
import { describe, expect, it } from 'vitest';
import type { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { NEUTRAL_BORDER, outpaintBorder } from '../../main/solidmark/outpaint.js';

const W = 32;
const B = 8;

/** A 32x32 keyed image: interior a gradient, border the key's 8-bit level. */
function keyed(key: number): Float32Array {
  const px = new Float32Array(W * W * 3);
  for (let y = 0; y < W; y++) {
    for (let x = 0; x < W; x++) {
      const border = y < B || y >= W - B || x < B || x >= W - B;
      px.fill(border ? Math.round(key * 255) / 255 : (x + 2 * y) / (3 * W), (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
  }
  return px;
}

/** A pipeline that records the encoder's input and generates an image whose border is `border`. */
function stubPipe(border: number) {
  const encoded: Float32Array[] = [];
  const pipe = {
    latentChannels: 4,
    vaeScaleFactor: async () => 8,
    encodeImage: async (px: Float32Array, w: number, h: number) => {
      encoded.push(Float32Array.from(px));
      return new Float32Array(4 * (w / 8) * (h / 8)).fill(0.25);
    },
    scheduler: () => ({ timesteps: [900, 500, 100], setTimesteps: () => {}, addNoise: (x0: Float32Array) => x0 }),
    generate: async (o: { width: number; height: number; initialHook?: (l: Float32Array) => unknown; stepHook?: (i: number, t: number | null, l: Float32Array) => unknown }) => {
      const latents = new Float32Array(4 * (o.width / 8) * (o.height / 8));
      o.initialHook?.(latents);
      o.stepHook?.(0, 500, latents);
      o.stepHook?.(1, null, latents);
      const pixels = keyed(0).fill(0.3);
      for (let y = 0; y < o.height; y++) for (let x = 0; x < o.width; x++) if (y < B || y >= o.height - B || x < B || x >= o.width - B) pixels.fill(border, (y * o.width + x) * 3, (y * o.width + x) * 3 + 3);
      return { images: [{ pixels }] };
    },
  };
  return { pipe: pipe as unknown as StableDiffusionPipeline, encoded };
}

describe('SolidMark query', () => {
  it('encodes the clean interior padded with mid grey: the same input whatever the border key', async () => {
    const inputs: Float32Array[] = [];
    for (const key of [0.1, 0.9, 0.5]) {
      const { pipe, encoded } = stubPipe(0.5);
      await outpaintBorder(pipe, { pixels: keyed(key), width: W, height: W, border: B, caption: 'x', keys: [key] }, { seed: 1, steps: 3 });
      expect(encoded).toHaveLength(1);
      inputs.push(encoded[0]);
    }
    expect(inputs[1]).toEqual(inputs[0]);
    expect(inputs[2]).toEqual(inputs[0]);
    const at = (px: Float32Array, x: number, y: number) => px[(y * W + x) * 3];
    expect(at(inputs[0], 0, 0)).toBe(NEUTRAL_BORDER);
    expect(at(inputs[0], W - 1, B)).toBe(NEUTRAL_BORDER);
    // The interior is the keyed image's, untouched.
    expect(at(inputs[0], B, B)).toBeCloseTo(at(keyed(0.1), B, B), 7);
    expect(at(inputs[0], 20, 12)).toBeCloseTo((20 + 24) / 96, 6);
  });

  it('scores against the key written into the file, round(255 k) / 255, the nearest of the copies', async () => {
    // Key 0.5 was written as 128/255 = 0.50196: a border of exactly that level is a perfect prediction.
    const { pipe } = stubPipe(128 / 255);
    const r = await outpaintBorder(pipe, { pixels: keyed(0.5), width: W, height: W, border: B, caption: 'x', keys: [0.5] }, { seed: 1, steps: 3 });
    expect(r.predictedKey).toBeCloseTo(128 / 255, 6);
    expect(r.error).toBeLessThan(1e-6);
    expect(r.trueKeys).toEqual([128 / 255]);
    const two = await outpaintBorder(stubPipe(0.7).pipe, { pixels: keyed(0.2), width: W, height: W, border: B, caption: 'x', keys: [0.2, 0.69] }, { seed: 1, steps: 3 });
    expect(two.error).toBeCloseTo(Math.abs(0.7 - Math.round(0.69 * 255) / 255), 6);
  });
});
