import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy, readFloatNpy, readNpy, writeNpy } from '../../main/util/npy.js';
import { float16ToFloat32, float32ToFloat16, fromHalf, toHalf } from '../../main/util/float16.js';
import { referenceDir } from '../helpers/reference.js';

const ref = referenceDir;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-npy-'));

/** A .npy file written the way numpy does, with any header dict and format version. */
function handMade(dict: string, body: Uint8Array, version = 1): Buffer {
  const prefix = version === 1 ? 10 : 12;
  const header = dict + ' '.repeat((64 - ((prefix + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(prefix);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = version;
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, version === 3 ? 'utf8' : 'latin1'), body]);
}

describe('npy', () => {
  it('reads numpy-written reference files (int64 ids, float32 embeddings)', () => {
    const ids = readNpy(path.join(ref, 'tiny-sd1', 'input_ids_0.npy'));
    expect(ids.dtype).toBe('int64');
    expect(ids.shape).toEqual([1, 77]);
    expect(Number((ids.data as BigInt64Array)[0])).toBe(49406);
    const emb = readFloatNpy(path.join(ref, 'tiny-sd1', 'text_embeds_0.npy'), [1, 77, -1]);
    expect(emb.shape).toEqual([1, 77, 32]);
    expect(emb.data).toHaveLength(77 * 32);
  });

  it('round-trips every supported dtype, with 64-byte aligned data', () => {
    const cases = [
      Float32Array.from([1.5, -2, 3.25, 0]),
      Float64Array.from([Math.PI, -1e300, 0, 7]),
      Int32Array.from([-5, 0, 2 ** 31 - 1, 9]),
      BigInt64Array.from([-(2n ** 62n), 0n, 1n, 2n ** 40n]),
      Uint8Array.from([0, 127, 200, 255]),
    ];
    for (const data of cases) {
      const buf = encodeNpy(data, [2, 2]);
      const headerLen = buf.readUInt16LE(8);
      expect((10 + headerLen) % 64).toBe(0);
      const back = parseNpy(buf, 'mem');
      expect(back.shape).toEqual([2, 2]);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
    }
  });

  it('writes float16 on request and reads it back widened to float32', async () => {
    const file = path.join(tmp, 'half.npy');
    await writeNpy(file, Float32Array.from([0.1, -65504, 1 / 3, 2 ** -20]), [4], 'float16');
    const back = readNpy(file);
    expect(back.dtype).toBe('float16');
    expect(readFileSync(file).toString('latin1')).toContain("'descr': '<f2'");
    const expected = float16ToFloat32(float32ToFloat16([0.1, -65504, 1 / 3, 2 ** -20]));
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(expected));
  });

  it('writes scalar and 1-D shapes the way numpy spells them', () => {
    expect(encodeNpy(Float32Array.from([1, 2, 3]), [3]).toString('latin1')).toContain("'shape': (3,)");
    const scalar = parseNpy(encodeNpy(Float32Array.from([4]), []), 'mem');
    expect(scalar.shape).toEqual([]);
    expect(scalar.data[0]).toBe(4);
  });

  it('reads format versions 2 and 3 headers', () => {
    const body = new Uint8Array(Float32Array.from([1, 2]).buffer);
    for (const v of [2, 3]) {
      const a = parseNpy(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", body, v), `v${v}`);
      expect(Array.from(a.data as Float32Array)).toEqual([1, 2]);
    }
  });

  it('refuses big-endian, Fortran order, unknown dtypes and truncation, naming the file', () => {
    const body = new Uint8Array(8);
    const bad = (dict: string, b = body) => {
      const file = path.join(tmp, 'bad.npy');
      writeFileSync(file, handMade(dict, b));
      return () => readNpy(file);
    };
    expect(bad("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }")).toThrow(/bad\.npy: big-endian arrays \('>f4'\) are not supported/);
    expect(bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }")).toThrow(/bad\.npy: Fortran-ordered arrays are not supported/);
    expect(bad("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }")).toThrow(/bad\.npy: dtype '<c8' is not supported/);
    expect(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")).toThrow(/bad\.npy: truncated \(8 data bytes, 12 expected/);
    expect(() => parseNpy(Buffer.from('hello world'), 'x.npy')).toThrow(/x\.npy: not a \.npy file/);
    expect(() => readNpy(path.join(tmp, 'missing.npy'))).toThrow(/missing\.npy: cannot be read \(ENOENT\)/);
  });

  it('refuses a shape that does not match the data', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 2])).toThrow(/holds 4 values, data has 5/);
  });
});

describe('float16', () => {
  it('rounds to nearest even and handles subnormals, infinities and NaN', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65520)).toBe(0x7c00); // rounds up to infinity
    expect(toHalf(-0)).toBe(0x8000);
    expect(toHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(Number.isNaN(fromHalf(toHalf(NaN)))).toBe(true);
    expect(fromHalf(0xfc00)).toBe(-Infinity);
    for (let h = 0; h < 0x7c00; h += 37) expect(toHalf(fromHalf(h))).toBe(h); // exact round trip
  });
});
