/**
 * What every vector-Jacobian rule module shares: the rule and context types and small helpers for
 * emitting backward nodes (rules.ts gathers the rules of every module into one table).
 */
import { A, DT, type GraphBuilder, type NodeProto } from './onnx-graph.js';

export interface TensorInfo {
  dataType: number;
  /** Dimensions in the probe run (ranks and broadcast patterns hold for every run of the model). */
  dims: number[];
}

export interface RuleContext {
  node: NodeProto;
  b: GraphBuilder;
  /** Gradient of output i (undefined: that output does not reach the loss). */
  gy: (i: number) => string | undefined;
  /** Whether input i needs its gradient. */
  wants: (i: number) => boolean;
  info: (name: string) => TensorInfo;
  /** Values of a constant input (initializer or Constant node), or undefined. */
  constValues: (name: string) => number[] | undefined;
  /** Sums `g` (shaped like the node's output) down to input `x`'s shape, undoing broadcasting. */
  unbroadcast: (g: string, x: string, out: string) => string;
}

export interface Rule {
  /** Indices of the inputs a gradient can flow into. */
  differentiable: (node: NodeProto) => number[];
  /** Input gradients by index (only for indices `wants` says yes to; others may be undefined). */
  vjp: (c: RuleContext) => (string | undefined)[];
}

export const x0 = (n: NodeProto) => n.input![0];
export const y0 = (n: NodeProto) => n.output![0];
export const first = () => [0];
export const firstTwo = () => [0, 1];

/** Unary rules of the form dx = g * f(x, y). */
export function unary(f: (c: RuleContext, g: string, x: string, y: string) => string): Rule {
  return { differentiable: first, vjp: (c) => [f(c, c.gy(0)!, x0(c.node), y0(c.node))] };
}

export function dtypeOf(c: RuleContext, name: string): number {
  return c.info(name).dataType;
}

export function rankOf(c: RuleContext, name: string): number {
  return c.info(name).dims.length;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function lastTwoSwapped(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** The error a rule raises for a sub-case it does not cover (the transform adds the node's name). */
export function notCovered(c: RuleContext, what: string): Error {
  return new Error(`${c.node.opType} ${c.node.name}: ${what}`);
}

/**
 * Gradient of an operator that only moves or copies elements (Slice with steps, Pad in edge/reflect
 * mode, Tile): the same operator applied to a tensor holding each element's flat index in X says where
 * every output element came from; g is scatter-added there. `forward` re-emits the node on that index
 * tensor (int64). `unique`: each X element is read at most once (a plain scatter, any opset); otherwise
 * ScatterElements with reduction `add` sums the copies (opset 16).
 */
export function scatterThroughIndexMap(c: RuleContext, x: string, g: string, forward: (indices: string) => string, unique: boolean): string {
  const { b } = c;
  if (!unique && b.opset < 16) throw notCovered(c, `its gradient sums copies with ScatterElements reduction add, which needs opset 16 (the model has ${b.opset})`);
  const size = b.node('Size', [x]);
  const flat = b.node('Range', [b.constant(DT.INT64, [], [0]), size, b.constant(DT.INT64, [], [1])]);
  const source = forward(b.node('Reshape', [flat, b.shape(x)]));
  const flatOf = (t: string) => b.node('Reshape', [t, b.ints([-1])]);
  const zeros = b.filled(b.node('Reshape', [size, b.ints([1])]), dtypeOf(c, x), 0);
  const scattered = b.node('ScatterElements', [zeros, flatOf(source), flatOf(g)], unique ? { axis: A.i(0) } : { axis: A.i(0), reduction: A.s('add') });
  return b.node('Reshape', [scattered, b.shape(x)]);
}

