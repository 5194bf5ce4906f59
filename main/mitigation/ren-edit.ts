/**
 * Ren et al.'s cross-attention mitigation as an edit of a UNet's ONNX graph (onnx-proto's protobuf
 * schema; nothing hand-encoded). In every cross-attention, before the Softmax over the text tokens:
 *
 *   logits' = logits * scale + mask,   scale[j] = c if j = 0 (the start token) else 1,
 *                                      mask[j]  = -inf if j > end else 0
 *
 * where `end` is the position of the prompt's end token. `end` is a new model input, `ren_end_token`
 * (int64 [1]), set per prompt from the tokenizer: one edited model (cached per model hash and c, c being
 * an initializer) serves every prompt, and the [77] vectors are computed once in the graph, shared by all
 * layers. The vectors broadcast over the logits' last axis, whatever their rank ([B, heads, N, 77] or
 * diffusers' [B x heads, N, 77]).
 *
 * A cross-attention is a Softmax whose logits come (through scaling, casts and adds) from a MatMul one of
 * whose operands is the key projection of `encoder_hidden_states` (reached through reshapes, transposes,
 * casts, scalings and the projection itself, never through a normalisation or another attention).
 * Self-attention's keys come from the image features and are left alone.
 */
import op from 'onnx-proto';
import { EideticError } from '../util/errors.js';
import { toHalf } from '../util/float16.js';

const onnx = op.onnx;
type Model = InstanceType<typeof onnx.ModelProto>;
type Node = op.onnx.INodeProto;

export const REN_END_INPUT = 'ren_end_token';
/** Bumped when the edit changes, so cached models of an older edit are not reused. */
export const REN_EDIT_VERSION = 1;

/** Operators that compute a whole attention in one node: their logits are out of reach. */
const FUSED_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'PackedAttention', 'PackedMultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention', 'SparseAttention']);
/** Ops between the QK^T product and the Softmax (scaling, masks, casts), followed through their first input. */
const LOGIT_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Cast', 'Identity']);
/** Ops on the key path from encoder_hidden_states to the QK^T product, followed through their first input. */
const KEY_PATH_OPS = new Set(['Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Mul', 'Div', 'Add', 'MatMul', 'Gemm']);

export interface RenEditReport {
  /** Names of the edited Softmax nodes (the cross-attentions). */
  crossAttentions: string[];
  /** Softmax nodes left alone (self-attentions). */
  otherSoftmaxes: number;
}

function fail(file: string, problem: string): never {
  throw new EideticError('bad_model', `${file}: cannot apply Ren's mitigation: ${problem}`);
}

/** The UNet's context input (encoder_hidden_states) and its element type (float or float16). */
function contextInput(model: Model, file: string): { name: string; elemType: number } {
  const input = model.graph?.input?.find((i) => i.name === 'encoder_hidden_states');
  if (!input) fail(file, 'the UNet has no encoder_hidden_states input');
  const elemType = input.type?.tensorType?.elemType ?? 0;
  if (elemType !== onnx.TensorProto.DataType.FLOAT && elemType !== onnx.TensorProto.DataType.FLOAT16) fail(file, `encoder_hidden_states has element type ${elemType}; float32 or float16 is needed`);
  return { name: input.name!, elemType };
}

/** Finds the cross-attention Softmax nodes; refuses fused attention and a graph with none. */
export function findCrossAttentionSoftmaxes(model: Model, file: string): { cross: Node[]; others: number } {
  const graph = model.graph;
  if (!graph) fail(file, 'the model has no graph');
  const nodes = graph.node ?? [];
  const fused = nodes.filter((n) => FUSED_ATTENTION.has(n.opType ?? ''));
  if (fused.length > 0) {
    const n = fused[0];
    fail(file, `its attention is fused into single operators (${fused.length} x ${n.domain ? `${n.domain}.` : ''}${n.opType}, e.g. "${n.name}"), so the pre-softmax logits do not exist in the graph; use an export without attention fusion (e.g. optimum's plain ONNX export, not an optimised one)`);
  }
  const context = contextInput(model, file).name;
  const producer = new Map<string, Node>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);

  const reachesContext = (start: string): boolean => {
    let name = start;
    for (let depth = 0; depth < 32; depth++) {
      if (name === context) return true;
      const p = producer.get(name);
      if (!p || !KEY_PATH_OPS.has(p.opType ?? '')) return false;
      name = p.input?.[0] ?? '';
    }
    return false;
  };

  const cross: Node[] = [];
  let others = 0;
  for (const n of nodes) {
    if (n.opType !== 'Softmax') continue;
    let name = n.input?.[0] ?? '';
    let product: Node | undefined;
    for (let depth = 0; depth < 16; depth++) {
      const p = producer.get(name);
      if (!p) break;
      if (p.opType === 'MatMul' || p.opType === 'Einsum') {
        product = p;
        break;
      }
      if (!LOGIT_OPS.has(p.opType ?? '')) break;
      name = p.input?.[0] ?? '';
    }
    if (product && (product.input ?? []).some((operand) => reachesContext(operand))) cross.push(n);
    else others++;
  }
  if (cross.length === 0) fail(file, 'no cross-attention Softmax over the text tokens was found (no Softmax whose logits come from a product with the key projection of encoder_hidden_states)');
  return { cross, others };
}

function tensorOf(name: string, elemType: number, values: number[], dims: number[]) {
  if (elemType === onnx.TensorProto.DataType.FLOAT16) {
    const raw = new Uint8Array(values.length * 2);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setUint16(i * 2, toHalf(v), true));
    return onnx.TensorProto.create({ name, dataType: elemType, dims, rawData: raw });
  }
  return onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, floatData: values });
}

/**
 * Edits the UNet model (its serialised bytes) in place of its protobuf: returns the edited bytes and
 * what was edited. `c` multiplies the start token's pre-softmax logit.
 */
export function applyRenEdit(bytes: Uint8Array, c: number, file: string): { bytes: Uint8Array; report: RenEditReport } {
  if (!(Number.isFinite(c) && c > 0)) throw new EideticError('invalid_input', `Ren's c must be a positive number (got ${c})`);
  let model: Model;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    fail(file, `not a readable ONNX model (${(err as Error).message})`);
  }
  const graph = model.graph!;
  if ((graph.input ?? []).some((i) => i.name === REN_END_INPUT)) fail(file, `the model already has a ${REN_END_INPUT} input (an edited model given again)`);
  const { cross, others } = findCrossAttentionSoftmaxes(model, file);
  const { name: context, elemType } = contextInput(model, file);

  const p = (s: string) => `ren/${s}`;
  const I64 = onnx.TensorProto.DataType.INT64;
  const initializers = [
    onnx.TensorProto.create({ name: p('axis1'), dataType: I64, dims: [], int64Data: [1] }),
    onnx.TensorProto.create({ name: p('zero'), dataType: I64, dims: [], int64Data: [0] }),
    onnx.TensorProto.create({ name: p('one'), dataType: I64, dims: [], int64Data: [1] }),
    tensorOf(p('c'), elemType, [c], []),
    tensorOf(p('unit'), elemType, [1], []),
    tensorOf(p('neg_inf'), elemType, [-Infinity], []),
    tensorOf(p('nil'), elemType, [0], []),
  ];
  const node = (opType: string, inputs: string[], output: string, attribute: InstanceType<typeof onnx.AttributeProto>[] = []) =>
    onnx.NodeProto.create({ opType, input: inputs, output: [output], name: p(output.replace(/^ren\//, '')), attribute });
  // positions 0..seq-1 of the text tokens, from the context's shape; the [seq] scale and mask vectors.
  const shared = [
    node('Shape', [context], p('ctx_shape')),
    node('Gather', [p('ctx_shape'), p('axis1')], p('seq'), [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 })]),
    node('Range', [p('zero'), p('seq'), p('one')], p('positions')),
    node('Greater', [p('positions'), REN_END_INPUT], p('after_end')),
    node('Equal', [p('positions'), p('zero')], p('is_start')),
    node('Where', [p('after_end'), p('neg_inf'), p('nil')], p('mask')),
    node('Where', [p('is_start'), p('c'), p('unit')], p('scale')),
  ];
  const edits: Node[] = [];
  cross.forEach((softmax, k) => {
    const logits = softmax.input![0];
    const scaled = p(`scaled_${k}`);
    const masked = p(`masked_${k}`);
    edits.push(node('Mul', [logits, p('scale')], scaled), node('Add', [scaled, p('mask')], masked));
    softmax.input![0] = masked;
  });
  // Topological order: the shared nodes depend on graph inputs only; each Mul/Add goes just before its Softmax.
  const ordered: Node[] = [...shared];
  for (const n of graph.node ?? []) {
    const k = cross.indexOf(n);
    if (k >= 0) ordered.push(edits[2 * k], edits[2 * k + 1]);
    ordered.push(n);
  }
  graph.node = ordered;
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
  graph.input = [
    ...(graph.input ?? []),
    onnx.ValueInfoProto.create({
      name: REN_END_INPUT,
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: I64, shape: onnx.TensorShapeProto.create({ dim: [onnx.TensorShapeProto.Dimension.create({ dimValue: 1 })] }) }) }),
    }),
  ];
  // Range, Greater and Where need opset 11 at least (Range is new there).
  const main = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!main || Number(main.version) < 11) fail(file, `the model's opset ${main ? String(main.version) : '(none)'} is older than 11, which the edit needs`);
  model.producerName = `${model.producerName ?? ''}+eidetic-ren`;
  return { bytes: onnx.ModelProto.encode(model).finish(), report: { crossAttentions: cross.map((n) => n.name ?? ''), otherSoftmaxes: others } };
}

/** External-data files a model's initializers point to (they must travel with an edited copy). */
export function externalDataFiles(bytes: Uint8Array): string[] {
  const model = onnx.ModelProto.decode(bytes);
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
      if (loc) files.add(loc);
    }
  }
  return [...files];
}
