/**
 * ONNX protobuf plumbing for graph transforms, on the onnx-proto package (protobufjs over ONNX's own
 * schema): decode/encode models, read attributes, and a builder that appends uniquely named nodes and
 * initializers to a graph. No hand-written protobuf bytes.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import op from 'onnx-proto';

export const onnx = op.onnx;
export type ModelProto = op.onnx.ModelProto;
export type GraphProto = op.onnx.IGraphProto;
export type NodeProto = op.onnx.INodeProto;
export type TensorProto = op.onnx.ITensorProto;
export type AttributeProto = op.onnx.IAttributeProto;

/** TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16 } as const;
export const FLOAT_TYPES: ReadonlySet<number> = new Set([DT.FLOAT, DT.FLOAT16, DT.DOUBLE, DT.BFLOAT16]);

/** ORT's tensor type names by ONNX data type. */
export const ORT_TYPE: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };
export const ONNX_TYPE: Record<string, number> = Object.fromEntries(Object.entries(ORT_TYPE).map(([k, v]) => [v, Number(k)]));

/** protobufjs gives int64 fields as Long objects (or numbers when they fit): a plain number. */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  if (v && typeof (v as { toNumber?: () => number }).toNumber === 'function') return (v as { toNumber: () => number }).toNumber();
  throw new Error(`not an integer: ${String(v)}`);
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: op.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** The default-domain opset version a model imports. */
export function opsetOf(model: op.onnx.IModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!entry) throw new Error('model imports no default-domain opset');
  return num(entry.version);
}

// --- attributes ---------------------------------------------------------------------------------

const AT = op.onnx.AttributeProto.AttributeType;
export type Attr =
  | { kind: 'i'; v: number }
  | { kind: 'f'; v: number }
  | { kind: 's'; v: string }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 't'; v: TensorProto };
export const A = {
  i: (v: number): Attr => ({ kind: 'i', v }),
  f: (v: number): Attr => ({ kind: 'f', v }),
  s: (v: string): Attr => ({ kind: 's', v }),
  ints: (v: number[]): Attr => ({ kind: 'ints', v }),
  floats: (v: number[]): Attr => ({ kind: 'floats', v }),
  t: (v: TensorProto): Attr => ({ kind: 't', v }),
};

function encodeAttr(name: string, a: Attr): AttributeProto {
  switch (a.kind) {
    case 'i': return { name, type: AT.INT, i: a.v };
    case 'f': return { name, type: AT.FLOAT, f: a.v };
    case 's': return { name, type: AT.STRING, s: new TextEncoder().encode(a.v) };
    case 'ints': return { name, type: AT.INTS, ints: a.v };
    case 'floats': return { name, type: AT.FLOATS, floats: a.v };
    case 't': return { name, type: AT.TENSOR, t: a.v };
  }
}

function attrOf(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attrOf(node, name);
  return a ? num(a.i) : fallback;
}
export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attrOf(node, name);
  return a ? Number(a.f) : fallback;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attrOf(node, name);
  return a ? (a.ints ?? []).map(num) : undefined;
}
export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = attrOf(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}
export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return attrOf(node, name)?.t ?? undefined;
}

// --- tensors ------------------------------------------------------------------------------------

/** A tensor's values as numbers (int64, int32, float, double), from raw data or the typed fields. */
export function tensorValues(t: TensorProto): number[] {
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (raw) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    if (dt === DT.INT64) return Array.from(new BigInt64Array(buf), Number);
    if (dt === DT.INT32) return Array.from(new Int32Array(buf));
    if (dt === DT.FLOAT) return Array.from(new Float32Array(buf));
    if (dt === DT.DOUBLE) return Array.from(new Float64Array(buf));
    throw new Error(`tensor ${t.name ?? ''}: data type ${dt} cannot be read as numbers`);
  }
  if (dt === DT.INT64) return (t.int64Data ?? []).map(num);
  if (dt === DT.INT32) return (t.int32Data ?? []).map(Number);
  if (dt === DT.FLOAT) return (t.floatData ?? []).map(Number);
  if (dt === DT.DOUBLE) return (t.doubleData ?? []).map(Number);
  throw new Error(`tensor ${t.name ?? ''}: data type ${dt} cannot be read as numbers`);
}

/** Whether a tensor's data lives in an external file (models over 2 GB) rather than in the model. */
export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
}

/** External-data files a model's initializers point to, as recorded (relative to the model's folder). */
export function externalDataFiles(model: op.onnx.IModelProto): string[] {
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (!isExternal(t)) continue;
    const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
    if (loc) files.add(loc);
  }
  return [...files];
}

/** The bytes of an external tensor, read from `baseDir` (its location, offset and length as recorded). */
export function readExternalData(t: TensorProto, baseDir: string): Uint8Array {
  const entry = (key: string) => (t.externalData ?? []).find((e) => e.key === key)?.value ?? undefined;
  const location = entry('location');
  if (!location) throw new Error(`tensor ${t.name ?? ''}: external data without a location`);
  const offset = Number(entry('offset') ?? 0);
  const file = path.resolve(baseDir, location);
  const length = entry('length') !== undefined ? Number(entry('length')) : statSync(file).size - offset;
  const out = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    let read = 0;
    while (read < length) {
      const n = readSync(fd, out, read, length - read, offset + read);
      if (n === 0) throw new Error(`${file}: ends before the ${length} bytes of tensor ${t.name ?? ''} at offset ${offset}`);
      read += n;
    }
  } finally {
    closeSync(fd);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** A tensor of `dataType` holding `values` (little-endian raw data). */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorProto {
  let raw: Uint8Array;
  if (dataType === DT.INT64) raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else if (dataType === DT.INT32) raw = new Uint8Array(Int32Array.from(values).buffer);
  else if (dataType === DT.FLOAT) raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dataType === DT.DOUBLE) raw = new Uint8Array(Float64Array.from(values).buffer);
  else if (dataType === DT.BOOL || dataType === DT.UINT8) raw = Uint8Array.from(values);
  else if (dataType === DT.FLOAT16) raw = new Uint8Array(Uint16Array.from(values, float16Bits).buffer);
  else throw new Error(`cannot write a tensor of data type ${dataType}`);
  return { name, dataType, dims, rawData: raw };
}

function float16Bits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | (mant >>> 13);
}

export function valueInfo(name: string, elemType: number, dims?: (number | string)[]): op.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
      },
    },
  };
}

// --- building -----------------------------------------------------------------------------------

/**
 * Appends nodes and initializers with fresh names under a prefix. Reductions and (un)squeezes are
 * emitted in the form the model's opset defines (axes as inputs from opset 13, ReduceMean's from 18).
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private readonly consts = new Map<string, string>();

  constructor(
    readonly opset: number,
    private readonly prefix: string,
    private readonly taken: Set<string>,
  ) {}

  fresh(hint: string): string {
    for (;;) {
      const name = `${this.prefix}${hint}_${this.counter++}`;
      if (!this.taken.has(name)) {
        this.taken.add(name);
        return name;
      }
    }
  }

  /** Appends a node; returns its output names. */
  nodeN(opType: string, inputs: (string | undefined)[], outputs: number, attrs: Record<string, Attr> = {}): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      name: this.fresh(`${opType}_node`),
      input: inputs.map((i) => i ?? ''),
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => encodeAttr(k, v)),
    });
    return outs;
  }

  node(opType: string, inputs: (string | undefined)[], attrs: Record<string, Attr> = {}): string {
    return this.nodeN(opType, inputs, 1, attrs)[0];
  }

  /** A constant initializer (shared when the same values are asked for twice). */
  constant(dataType: number, dims: number[], values: ArrayLike<number>): string {
    const key = `${dataType}|${dims.join(',')}|${Array.from(values).join(',')}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push(makeTensor(name, dataType, dims, values));
    this.consts.set(key, name);
    return name;
  }
  scalar(dataType: number, value: number): string {
    return this.constant(dataType, [], [value]);
  }
  ints(values: number[]): string {
    return this.constant(DT.INT64, [values.length], values);
  }

  reduceSum(x: string, axes: number[] | string, keepdims: boolean): string {
    return this.node('ReduceSum', [x, typeof axes === 'string' ? axes : this.ints(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
  }
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.node('ReduceMean', [x, this.ints(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
    return this.node('ReduceMean', [x], { axes: A.ints(axes), keepdims: A.i(keepdims ? 1 : 0) });
  }
  unsqueeze(x: string, axes: number[]): string {
    return this.node('Unsqueeze', [x, this.ints(axes)]);
  }
  shape(x: string): string {
    return this.node('Shape', [x]);
  }
  /** Zeros shaped like `like`, of `dataType`. */
  zerosLike(like: string, dataType: number): string {
    return this.filled(this.shape(like), dataType, 0);
  }
  /**
   * A tensor of `shape` (a 1-D int64 tensor) filled with `value`: a scalar expanded, not ConstantOfShape,
   * which ONNX Runtime's WebGPU provider does not run (its float output would be made on the CPU and copied).
   */
  filled(shape: string, dataType: number, value: number): string {
    return this.node('Expand', [this.scalar(dataType, value), shape]);
  }
}
