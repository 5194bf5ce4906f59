/**
 * numpy .npy files (format versions 1–3, little-endian, C order): reading reference data and user
 * latents, writing images and arrays. Anything else is refused with a message naming the file.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import { EideticError } from './errors.js';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';

export type NpyDtype = 'float32' | 'float64' | 'float16' | 'int32' | 'int64' | 'uint8';

export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  /** float16 data is widened to float32; int64 stays BigInt64Array. */
  data: NpyData;
}

const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<f8': 'float64', '<f2': 'float16', '<i4': 'int32', '<i8': 'int64', '|u1': 'uint8', '<u1': 'uint8' };
const DESCR_OF: Record<NpyDtype, string> = { float32: '<f4', float64: '<f8', float16: '<f2', int32: '<i4', int64: '<i8', uint8: '|u1' };
const BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, float16: 2, int32: 4, int64: 8, uint8: 1 };
const MAGIC = '\x93NUMPY';

export function parseNpy(buf: Buffer, label: string): NpyArray {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== MAGIC) throw new EideticError('bad_file', `${label}: not a .npy file (bad magic)`);
  const major = buf[6];
  if (![1, 2, 3].includes(major)) throw new EideticError('bad_file', `${label}: unsupported .npy format version ${major}`);
  // Version 1 has a 2-byte header length; 2 and 3 a 4-byte one (3 also allows a UTF-8 header).
  if (major > 1 && buf.length < 12) throw new EideticError('bad_file', `${label}: truncated .npy header`);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start + headerLen) throw new EideticError('bad_file', `${label}: truncated .npy header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new EideticError('bad_file', `${label}: malformed .npy header`);
  if (fortran === 'True') throw new EideticError('bad_file', `${label}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  if (descr.startsWith('>') && DESCR['<' + descr.slice(1)]) {
    throw new EideticError('bad_file', `${label}: big-endian arrays ('${descr}') are not supported (convert with arr.astype(arr.dtype.newbyteorder('<')))`);
  }
  const dtype = DESCR[descr];
  if (!dtype) throw new EideticError('bad_file', `${label}: dtype '${descr}' is not supported (little-endian float16/32/64, int32/64 or uint8)`);
  const dims = shapeText.split(',').map((s) => s.trim()).filter(Boolean);
  const shape = dims.map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new EideticError('bad_file', `${label}: malformed shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const bytes = count * BYTES[dtype];
  if (buf.length - offset < bytes) throw new EideticError('bad_file', `${label}: truncated (${buf.length - offset} data bytes, ${bytes} expected for shape [${shape.join(', ')}])`);
  // A copy, so the typed array is aligned whatever the header length was.
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

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

/**
 * Serialises a C-ordered array. The dtype follows the typed array; `as: 'float16'` stores a
 * Float32Array as half precision. The header grows to format 2 only when version 1 cannot hold it.
 */
export function encodeNpy(data: NpyData, shape: number[], as?: 'float16'): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape [${shape.join(', ')}] holds ${count} values, data has ${data.length}`);
  if (as === 'float16' && !(data instanceof Float32Array)) throw new Error('encodeNpy: float16 output needs Float32Array data');
  const dtype: NpyDtype = as ?? dtypeOf(data);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The data starts on a 64-byte boundary; the header ends with '\n'.
  const version = dict.length + 11 > 0xffff ? 2 : 1;
  const prefix = version === 1 ? 10 : 12;
  const header = dict + ' '.repeat((64 - ((prefix + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(prefix);
  head.write(MAGIC, 0, 'latin1');
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  const body = dtype === 'float16' ? float32ToFloat16(data as Float32Array) : data;
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
}

export async function writeNpy(file: string, data: NpyData, shape: number[], as?: 'float16'): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape, as));
}
