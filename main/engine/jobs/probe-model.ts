/**
 * A small ONNX model built in memory (no file on disk): x [1, W] -> relu(x · A) · B -> y [1, W].
 * Execution providers are tried on it, because ONNX Runtime throws instead of falling back when a
 * provider cannot initialise. Encoded by hand with the few protobuf fields ONNX needs.
 */

class ProtoWriter {
  private bytes: number[] = [];

  private varint(value: number): void {
    let v = value;
    while (v > 0x7f) {
      this.bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.bytes.push(v);
  }

  private key(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  int(field: number, value: number): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  raw(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.raw(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.raw(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const FLOAT = 1;

function valueInfo(w: ProtoWriter, name: string, dims: number[]): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) => tensor.int(1, FLOAT).message(2, (shape) => dims.forEach((d) => shape.message(1, (dim) => dim.int(1, d))))),
  );
}

/** Deterministic weights (a scaled sine pattern) so every provider must produce the same output. */
function weights(rows: number, cols: number, phase: number): Uint8Array {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + phase) / Math.sqrt(rows);
  return new Uint8Array(data.buffer);
}

export function buildProbeModel(width = 256): Uint8Array {
  const model = new ProtoWriter();
  model.int(1, 8); // ir_version
  model.string(2, 'eidetic-probe');
  model.message(8, (opset) => opset.string(1, '').int(2, 17));
  model.message(7, (graph) => {
    graph.message(1, (n) => n.string(1, 'x').string(1, 'A').string(2, 'h').string(3, 'matmul_a').string(4, 'MatMul'));
    graph.message(1, (n) => n.string(1, 'h').string(2, 'r').string(3, 'relu').string(4, 'Relu'));
    graph.message(1, (n) => n.string(1, 'r').string(1, 'B').string(2, 'y').string(3, 'matmul_b').string(4, 'MatMul'));
    graph.string(2, 'probe');
    for (const [name, phase] of [
      ['A', 0.1],
      ['B', 1.3],
    ] as const) {
      graph.message(5, (t) => t.int(1, width).int(1, width).int(2, FLOAT).string(8, name).raw(9, weights(width, width, phase)));
    }
    graph.message(11, (v) => valueInfo(v, 'x', [1, width]));
    graph.message(12, (v) => valueInfo(v, 'y', [1, width]));
  });
  return model.finish();
}
