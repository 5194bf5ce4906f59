/**
 * Reverse-mode differentiation of an ONNX graph. Given a model, the tensors to differentiate (graph
 * inputs or intermediate values, e.g. a text encoder's token embeddings) and a scalar loss built from
 * one output, it emits a model that returns the loss (per batch item and summed) and the gradient of the
 * summed loss with respect to each of those tensors, using one vector-Jacobian rule per operator
 * (rules.ts) written as ONNX nodes appended to the forward graph.
 *
 * - Only the part of the graph between the differentiated tensors and the loss gets backward nodes:
 *   paths through Shape, integer tensors or inputs that are not differentiated (a UNet's timestep
 *   embedding) carry no gradient and are pruned.
 * - Backward nodes read the forward activations they need and nothing else; nodes that feed neither the
 *   loss, the gradients nor a kept output are removed, so the runtime keeps only those activations.
 * - Ranks, data types and broadcast patterns come from one probe run of the forward graph on small
 *   inputs; sizes that vary between runs (batch, tokens, latent size) are read in-graph with Shape.
 *
 * The result is an ordinary ONNX model: it runs on any execution provider that runs the forward one.
 */
import * as ort from 'onnxruntime-node';
import { EideticError } from '../util/errors.js';
import {
  FLOAT_TYPES, GraphBuilder, ONNX_TYPE, type ModelProto, type NodeProto, type TensorProto,
  attrTensor, decodeModel, encodeModel, externalDataFiles, isExternal, num, opsetOf, readExternalData, tensorValues, valueInfo,
} from './onnx-graph.js';
import { NON_DIFFERENTIABLE, RULES, type RuleContext, type TensorInfo } from './rules.js';

/** Bumped whenever the emitted graph changes, so cached gradient models are rebuilt. */
export const TRANSFORM_VERSION = 2;

/**
 * The scalar loss, built from one output `output` (O):
 * - `sum`: sum(O);
 * - `dot`: sum(O * W), W a new input named `weight` shaped like O (a vector-Jacobian product);
 * - `squared-distance`: sum((O - T)^2), T a new input named `target` shaped like O.
 * `loss_per_item` sums over every axis but the first (the batch).
 */
export type LossSpec = { kind: 'sum' | 'dot' | 'squared-distance'; output: string };

export interface GradientSpec {
  /** Tensors to differentiate: graph inputs or intermediate values (float). */
  wrt: string[];
  loss: LossSpec;
  /** Original outputs to keep beside the loss and the gradients. */
  keepOutputs?: string[];
  /**
   * Inputs for the probe run: small sizes, but every size that varies between runs at least 2 everywhere
   * in the graph (a batch of 2; latents large enough that the lowest UNet level is not 1x1), so that
   * broadcasting is told apart from equal sizes. Every graph input must be given.
   */
  probe: Record<string, ort.Tensor>;
  /**
   * The folder of a model whose weights are in external data files (models over 2 GB): the probe and the
   * constants read them from there. The gradient model keeps the same relative locations: open it with
   * this folder as its external-data folder (main/sd/onnx-session.ts), wherever it is stored.
   */
  modelDir?: string;
}

export interface GradientModel {
  bytes: Uint8Array;
  /** Inputs of the gradient model: the forward inputs that are still used, plus `weight`/`target`. */
  inputs: string[];
  /** Output names: `loss` (scalar), `loss_per_item` ([batch]) and the gradient of each `wrt` tensor. */
  loss: string;
  lossPerItem: string;
  gradients: Record<string, string>;
  /** Operators that received a vector-Jacobian rule, with counts. */
  differentiated: Record<string, number>;
}

export const LOSS_OUTPUT = 'loss';
export const LOSS_PER_ITEM_OUTPUT = 'loss_per_item';
export const gradientName = (tensor: string) => `grad__${tensor.replace(/[^A-Za-z0-9_]/g, '_')}`;

/** Runs the forward graph once with every intermediate value as an output: ranks, types, shapes. */
async function probe(modelBytes: Uint8Array, feeds: Record<string, ort.Tensor>, modelDir?: string): Promise<Map<string, TensorInfo>> {
  const model = decodeModel(modelBytes);
  const graph = model.graph!;
  const outputs = new Set((graph.output ?? []).map((o) => o.name!));
  const extra: string[] = [];
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o && !outputs.has(o)) { outputs.add(o); extra.push(o); }
  graph.output = [...(graph.output ?? []), ...extra.map((name) => ({ name }))];
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 };
  // A model with external data is given as bytes with the folder its weights are in: no file is written.
  const session = await ort.InferenceSession.create(encodeModel(model), {
    ...options,
    ...(modelDir ? { extra: { session: { model_external_initializers_file_folder_path: modelDir } } } : {}),
  });
  try {
    const result = await session.run(feeds);
    const info = new Map<string, TensorInfo>();
    for (const [name, t] of Object.entries(result)) info.set(name, { dataType: ONNX_TYPE[t.type] ?? 0, dims: [...t.dims] });
    for (const [name, t] of Object.entries(feeds)) info.set(name, { dataType: ONNX_TYPE[t.type] ?? 0, dims: [...t.dims] });
    for (const init of graph.initializer ?? []) info.set(init.name!, { dataType: init.dataType ?? 0, dims: (init.dims ?? []).map(num) });
    return info;
  } finally {
    await session.release();
  }
}

export async function buildGradientModel(modelBytes: Uint8Array, spec: GradientSpec): Promise<GradientModel> {
  const model = decodeModel(modelBytes);
  const graph = model.graph!;
  const opset = opsetOf(model);
  if (opset < 13) throw new EideticError('unsupported', `the model imports opset ${opset}; gradients are built for opset 13 or later`);
  const nodes: NodeProto[] = graph.node ?? [];
  const graphInputs = (graph.input ?? []).map((i) => i.name!);
  for (const name of graphInputs) {
    if (!(name in spec.probe) && !(graph.initializer ?? []).some((t) => t.name === name)) throw new EideticError('invalid_input', `probe inputs: ${name} is missing`);
  }
  if (!spec.modelDir && externalDataFiles(model).length) {
    throw new EideticError('invalid_input', `the model keeps its weights in external data (${externalDataFiles(model).join(', ')}): give the folder they are in (modelDir)`);
  }
  const info = await probe(modelBytes, spec.probe, spec.modelDir);
  const infoOf = (name: string): TensorInfo => {
    const i = info.get(name);
    if (!i) throw new Error(`no probe information for tensor ${name}`);
    return i;
  };

  const producers = new Map<string, number>();
  nodes.forEach((n, k) => n.output!.forEach((o) => o && producers.set(o, k)));
  const initializers = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  const constValues = (name: string): number[] | undefined => {
    const t = initializers.get(name);
    if (t && isExternal(t)) return tensorValues({ ...t, dataLocation: 0, rawData: readExternalData(t, spec.modelDir!) });
    if (t) return tensorValues(t);
    const k = producers.get(name);
    if (k !== undefined && nodes[k].opType === 'Constant') {
      const v = attrTensor(nodes[k], 'value');
      return v ? tensorValues(v) : undefined;
    }
    return undefined;
  };

  for (const w of spec.wrt) {
    if (!info.has(w)) throw new EideticError('invalid_input', `cannot differentiate with respect to ${w}: no such tensor in the model`);
    if (!FLOAT_TYPES.has(infoOf(w).dataType)) throw new EideticError('invalid_input', `cannot differentiate with respect to ${w}: it is not a floating-point tensor`);
  }
  const lossOut = spec.loss.output;
  if (!(graph.output ?? []).some((o) => o.name === lossOut) && !producers.has(lossOut)) throw new EideticError('invalid_input', `loss: the model has no output ${lossOut}`);

  // Forward activity: tensors that depend differentiably on a `wrt` tensor.
  const active = new Set(spec.wrt);
  for (const n of nodes) {
    const op = n.opType!;
    const inputsActive = n.input!.map((x) => !!x && active.has(x));
    if (!inputsActive.some(Boolean) || NON_DIFFERENTIABLE.has(op)) continue;
    const rule = RULES[op];
    if (!rule) throw new EideticError('unsupported', `operator ${op} (node ${n.name}) has no gradient rule; differentiable operators: ${Object.keys(RULES).sort().join(', ')}`);
    if (!rule.differentiable(n).some((i) => inputsActive[i])) continue;
    for (const o of n.output!) if (o && FLOAT_TYPES.has(info.get(o)?.dataType ?? 0)) active.add(o);
  }
  // Every name in the graph, so new ones never collide.
  const taken = new Set<string>([...info.keys(), ...graphInputs, ...nodes.flatMap((n) => [...n.output!, n.name ?? ''])]);
  const b = new GraphBuilder(opset, 'ad/', taken);
  const outInfo = infoOf(lossOut);
  const dt = outInfo.dataType;
  const outRank = outInfo.dims.length;
  const perItemAxes = Array.from({ length: outRank - 1 }, (_, i) => i + 1);
  const newInputs: { name: string; dataType: number; rank: number }[] = [];
  let perItem: string;
  let seed: string;
  if (spec.loss.kind === 'sum') {
    perItem = perItemAxes.length ? b.reduceSum(lossOut, perItemAxes, false) : lossOut;
    seed = b.node('Expand', [b.scalar(dt, 1), b.shape(lossOut)]);
  } else if (spec.loss.kind === 'dot') {
    newInputs.push({ name: 'weight', dataType: dt, rank: outRank });
    const prod = b.node('Mul', [lossOut, 'weight']);
    perItem = perItemAxes.length ? b.reduceSum(prod, perItemAxes, false) : prod;
    seed = 'weight';
  } else {
    newInputs.push({ name: 'target', dataType: dt, rank: outRank });
    const diff = b.node('Sub', [lossOut, 'target']);
    const sq = b.node('Mul', [diff, diff]);
    perItem = perItemAxes.length ? b.reduceSum(sq, perItemAxes, false) : sq;
    seed = b.node('Mul', [diff, b.scalar(dt, 2)]);
  }
  b.nodes.push({ opType: 'Identity', name: 'ad/loss_per_item', input: [perItem], output: [LOSS_PER_ITEM_OUTPUT] });
  b.nodes.push({ opType: 'ReduceSum', name: 'ad/loss', input: [perItem, b.ints([0])], output: [LOSS_OUTPUT], attribute: [{ name: 'keepdims', type: 2, i: 0 }] });

  // Backward: gradient contributions per tensor, summed when first read.
  const contributions = new Map<string, string[]>();
  const add = (name: string, g: string) => contributions.set(name, [...(contributions.get(name) ?? []), g]);
  const summed = new Map<string, string>();
  const gradOf = (name: string): string | undefined => {
    const parts = contributions.get(name);
    if (!parts) return undefined;
    const s = summed.get(name);
    if (s) return s;
    // Pairwise Add rather than one Sum: ONNX Runtime's WebGPU provider has no Sum kernel, and a Sum would
    // send the gradient to the CPU and back at every tensor read by several nodes.
    const g = parts.slice(1).reduce((acc, p) => b.node('Add', [acc, p]), parts[0]);
    summed.set(name, g);
    return g;
  };
  add(lossOut, seed);

  const unbroadcast = (g: string, x: string, out: string): string => {
    const xd = infoOf(x).dims;
    const od = infoOf(out).dims;
    if (xd.length === od.length && xd.every((d, i) => d === od[i])) return g;
    const lead = od.length - xd.length;
    // Axes where x was broadcast in the probe (size 1 in x, not in the output). An axis of size 1 in
    // both is left alone: if it grows at run time in the output only, the final Reshape fails loudly.
    const axes = [...Array.from({ length: lead }, (_, i) => i), ...xd.flatMap((d, i) => (d === 1 && od[lead + i] !== 1 ? [lead + i] : []))];
    const reduced = axes.length ? b.reduceSum(g, axes, true) : g;
    return b.node('Reshape', [reduced, b.shape(x)]);
  };

  const differentiated: Record<string, number> = {};
  const wrtSet = new Set(spec.wrt);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    const op = n.opType!;
    if (NON_DIFFERENTIABLE.has(op)) continue;
    if (!n.output!.some((o) => contributions.has(o))) continue;
    const rule = RULES[op];
    const wants = (i: number) => {
      const x = n.input![i];
      return !!x && active.has(x) && rule.differentiable(n).includes(i);
    };
    if (!n.input!.some((_, i) => wants(i))) continue;
    const ctx: RuleContext = { node: n, b, gy: (i) => gradOf(n.output![i]), wants, info: infoOf, constValues, unbroadcast };
    let grads: (string | undefined)[];
    try {
      grads = rule.vjp(ctx);
    } catch (err) {
      throw new EideticError('unsupported', `gradient of ${op} node ${n.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    differentiated[op] = (differentiated[op] ?? 0) + 1;
    grads.forEach((g, i) => {
      if (g && wants(i)) add(n.input![i], g);
    });
  }

  const gradients: Record<string, string> = {};
  for (const w of wrtSet) {
    const name = gradientName(w);
    const g = gradOf(w) ?? b.zerosLike(w, infoOf(w).dataType);
    b.nodes.push({ opType: 'Identity', name: `ad/${name}`, input: [g], output: [name] });
    gradients[w] = name;
  }

  // Outputs: loss, per-item loss, gradients and the kept originals; then prune what feeds none of them.
  const keep = spec.keepOutputs ?? [];
  const outputs = [
    valueInfo(LOSS_OUTPUT, dt, []),
    valueInfo(LOSS_PER_ITEM_OUTPUT, dt),
    ...Object.entries(gradients).map(([w, name]) => valueInfo(name, infoOf(w).dataType)),
    ...keep.map((o) => (graph.output ?? []).find((v) => v.name === o) ?? valueInfo(o, infoOf(o).dataType)),
  ];
  const allNodes = [...nodes, ...b.nodes];
  const needed = new Set(outputs.map((o) => o.name!));
  const kept: NodeProto[] = [];
  for (let k = allNodes.length - 1; k >= 0; k--) {
    const n = allNodes[k];
    if (!n.output!.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const x of n.input!) if (x) needed.add(x);
  }
  kept.reverse();
  graph.node = kept;
  graph.initializer = [...(graph.initializer ?? []).filter((t) => needed.has(t.name!)), ...b.initializers];
  graph.input = [
    ...(graph.input ?? []).filter((i) => needed.has(i.name!)),
    ...newInputs.map((i) => valueInfo(i.name, i.dataType, Array.from({ length: i.rank }, (_, d) => `${i.name}_${d}`))),
  ];
  graph.output = outputs;
  // Value infos of removed tensors would only confuse readers of the model.
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => needed.has(v.name!));
  model.producerName = `${model.producerName ?? ''} + eidetic gradients v${TRANSFORM_VERSION}`;

  return {
    bytes: encodeModel(model),
    inputs: graph.input.map((i) => i.name!),
    loss: LOSS_OUTPUT,
    lossPerItem: LOSS_PER_ITEM_OUTPUT,
    gradients,
    differentiated,
  };
}

/**
 * The output of a model's embedding lookup for `input` (a text encoder's token embeddings): the Gather
 * whose table is a 2-D initializer and whose indices come from `input`, through shape-only ops.
 */
export function embeddingLookupOutput(model: ModelProto, input: string): string {
  const graph = model.graph!;
  const tables = new Map((graph.initializer ?? []).filter((t) => (t.dims ?? []).length === 2).map((t) => [t.name!, t]));
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producers.set(o, n);
  const fromInput = (name: string, depth = 0): boolean => {
    if (name === input) return true;
    const p = producers.get(name);
    if (!p || depth > 8 || !['Cast', 'Reshape', 'Flatten', 'Unsqueeze', 'Squeeze', 'Identity'].includes(p.opType!)) return false;
    return fromInput(p.input![0], depth + 1);
  };
  const hit = (graph.node ?? []).find((n) => n.opType === 'Gather' && tables.has(n.input![0]) && fromInput(n.input![1]));
  if (!hit) throw new EideticError('unsupported', `the model has no embedding lookup (Gather of a 2-D table by ${input}); token-embedding gradients need one`);
  return hit.output![0];
}
