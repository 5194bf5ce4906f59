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

/** Per row: the position of the prompt's end token (keys after it are masked). int64 [B]. */
export const REN_END_INPUT = 'ren_end_token';
/** Per row: 1 for a conditional row (edited), 0 for an unconditional one (left as it is). float [B]. */
export const REN_ROWS_INPUT = 'ren_conditional';
/** Bumped when the edit changes, so cached models of an older edit are not reused. */
export const REN_EDIT_VERSION = 2;

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

  // Unsqueeze takes its axes as an input from opset 13 on, as an attribute before.
  const main = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = main ? Number(main.version) : 0;
  if (opset < 11) fail(file, `the model's opset ${main ? String(main.version) : '(none)'} is older than 11, which the edit needs`);

  const p = (s: string) => `ren/${s}`;
  const I64 = onnx.TensorProto.DataType.INT64;
  const F32 = onnx.TensorProto.DataType.FLOAT;
  const initializers = [
    onnx.TensorProto.create({ name: p('axis1'), dataType: I64, dims: [], int64Data: [1] }),
    onnx.TensorProto.create({ name: p('axes1'), dataType: I64, dims: [1], int64Data: [1] }),
    onnx.TensorProto.create({ name: p('minus1'), dataType: I64, dims: [1], int64Data: [-1] }),
    onnx.TensorProto.create({ name: p('zero'), dataType: I64, dims: [], int64Data: [0] }),
    onnx.TensorProto.create({ name: p('one'), dataType: I64, dims: [], int64Data: [1] }),
    onnx.TensorProto.create({ name: p('row_threshold'), dataType: F32, dims: [], floatData: [0.5] }),
    tensorOf(p('c'), elemType, [c], []),
    tensorOf(p('unit'), elemType, [1], []),
    tensorOf(p('neg_inf'), elemType, [-Infinity], []),
    tensorOf(p('nil'), elemType, [0], []),
  ];
  const attr = (name: string, value: number | number[]) =>
    Array.isArray(value)
      ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: value })
      : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
  const node = (opType: string, inputs: string[], output: string, attribute: InstanceType<typeof onnx.AttributeProto>[] = []) =>
    onnx.NodeProto.create({ opType, input: inputs, output: [output], name: p(output.replace(/^ren\//, '')), attribute });
  const unsqueeze1 = (input: string, output: string) => (opset >= 13 ? node('Unsqueeze', [input, p('axes1')], output) : node('Unsqueeze', [input], output, [attr('axes', [1])]));
  // Computed once from the inputs, shared by every layer: positions 0..seq-1 of the text tokens and the
  // per-row [B, 1, seq] scale and mask (identity on unconditional rows).
  const shared = [
    node('Shape', [context], p('ctx_shape')),
    node('Gather', [p('ctx_shape'), p('axis1')], p('seq'), [attr('axis', 0)]),
    node('Range', [p('zero'), p('seq'), p('one')], p('positions')),
    unsqueeze1(REN_END_INPUT, p('end_2d')),
    node('Greater', [p('positions'), p('end_2d')], p('after_end')),
    node('Greater', [REN_ROWS_INPUT, p('row_threshold')], p('is_conditional')),
    unsqueeze1(p('is_conditional'), p('conditional_2d')),
    node('And', [p('after_end'), p('conditional_2d')], p('masked')),
    node('Equal', [p('positions'), p('zero')], p('is_start')),
    node('And', [p('is_start'), p('conditional_2d')], p('rescaled')),
    node('Where', [p('masked'), p('neg_inf'), p('nil')], p('mask_2d')),
    node('Where', [p('rescaled'), p('c'), p('unit')], p('scale_2d')),
    unsqueeze1(p('mask_2d'), p('mask')),
    unsqueeze1(p('scale_2d'), p('scale')),
    node('Shape', [REN_ROWS_INPUT], p('batch')),
    node('Shape', [p('positions')], p('seq_1d')),
    node('Concat', [p('batch'), p('minus1'), p('seq_1d')], p('rows_shape'), [attr('axis', 0)]),
  ];
  const edits: Node[][] = [];
  cross.forEach((softmax, k) => {
    const logits = softmax.input![0];
    // [B, heads, N, seq] or [B x heads, N, seq] (batch-major either way) -> [B, heads x N, seq] and back.
    edits.push([
      node('Shape', [logits], p(`shape_${k}`)),
      node('Reshape', [logits, p('rows_shape')], p(`rows_${k}`)),
      node('Mul', [p(`rows_${k}`), p('scale')], p(`scaled_${k}`)),
      node('Add', [p(`scaled_${k}`), p('mask')], p(`masked_${k}`)),
      node('Reshape', [p(`masked_${k}`), p(`shape_${k}`)], p(`logits_${k}`)),
    ]);
    softmax.input![0] = p(`logits_${k}`);
  });
  // Topological order: the shared nodes depend on graph inputs only; each edit goes just before its Softmax.
  const ordered: Node[] = [...shared];
  for (const n of graph.node ?? []) {
    const k = cross.indexOf(n);
    if (k >= 0) ordered.push(...edits[k]);
    ordered.push(n);
  }
  graph.node = ordered;
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
  const vector = (name: string, elem: number) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: elem, shape: onnx.TensorShapeProto.create({ dim: [onnx.TensorShapeProto.Dimension.create({ dimParam: 'batch' })] }) }) }),
    });
  graph.input = [...(graph.input ?? []), vector(REN_END_INPUT, I64), vector(REN_ROWS_INPUT, F32)];
  model.producerName = `${model.producerName ?? ''}+eidetic-ren`;
  return { bytes: onnx.ModelProto.encode(model).finish(), report: { crossAttentions: cross.map((n) => n.name ?? ''), otherSoftmaxes: others } };
}
