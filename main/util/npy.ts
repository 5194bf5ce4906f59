/**
 * numpy .npy files (format versions 1–3, little-endian, C order): reading reference data and user
 * latents, writing images as float32 HxWx3. Anything else is refused with a message naming the file.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import { EideticError } from './errors.js';
import { float16ToFloat32 } from './float16.js';

export type NpyDtype = 'float32' | 'float64' | 'float16' | 'int32' | 'int64' | 'uint8';

export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  /** float16 data is widened to float32; int64 stays BigInt64Array. */
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
}

const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<f2': 'float16', '<i4': 'int32', '<i8': 'int64', '|u1': 'uint8', '<u1': 'uint8' };
const BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, float16: 2, int32: 4, int64: 8, uint8: 1 };

export function parseNpy(buf: Buffer, label: string): NpyArray {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new EideticError('bad_file', `${label}: not a .npy file (bad magic)`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (![1, 2, 3].includes(major)) throw new EideticError('bad_file', `${label}: unsupported .npy version ${major}`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new EideticError('bad_file', `${label}: malformed .npy header`);
  if (fortran === 'True') throw new EideticError('bad_file', `${label}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const dtype = DESCR[descr];
  if (!dtype) throw new EideticError('bad_file', `${label}: dtype '${descr}' is not supported (little-endian float16/32/64, int32/64 or uint8)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const bytes = count * BYTES[dtype];
  if (buf.length - offset < bytes) throw new EideticError('bad_file', `${label}: truncated (${buf.length - offset} data bytes, ${bytes} expected for shape [${shape.join(', ')}])`);
  const body = buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + bytes);
  const data =
    dtype === 'float32' ? new Float32Array(body)
    : dtype === 'float64' ? new Float64Array(body)
    : dtype === 'float16' ? float16ToFloat32(new Uint16Array(body))
    : dtype === 'int32' ? new Int32Array(body)
    : dtype === 'int64' ? new BigInt64Array(body)
    : new Uint8Array(body);
  return { shape, dtype, data };
}

export function readNpy(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new EideticError('not_found', `${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseNpy(buf, file);
}

/** Reads a float array (float16/32/64) of an exact shape; `expected` may use -1 for any size. */
export function readFloatNpy(file: string, expected?: number[]): { data: Float32Array; shape: number[] } {
  const a = readNpy(file);
  if (a.dtype !== 'float32' && a.dtype !== 'float64' && a.dtype !== 'float16') throw new EideticError('bad_file', `${file}: dtype ${a.dtype}, a float array is expected`);
  if (expected && (expected.length !== a.shape.length || expected.some((d, i) => d !== -1 && d !== a.shape[i]))) {
    throw new EideticError('bad_file', `${file}: shape [${a.shape.join(', ')}], expected [${expected.map((d) => (d === -1 ? 'any' : d)).join(', ')}]`);
  }
  const data = a.data instanceof Float32Array ? a.data : Float32Array.from(a.data as Float64Array);
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new EideticError('bad_file', `${file}: contains NaN or infinite values`);
  return { data, shape: a.shape };
}

export function encodeNpy(data: Float32Array, shape: number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export async function writeNpy(file: string, data: Float32Array, shape: number[]): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape));
}
