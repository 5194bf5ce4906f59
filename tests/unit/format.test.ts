// The renderer's text helpers that turn engine output into something an auditor can read.
import { describe, expect, it } from 'vitest';
import { INTEGER_TICK_STEPS, integerTickLabels, providerErrorLine } from '../../renderer/src/lib/format.js';

describe('providerErrorLine', () => {
  it('keeps the reason of a C++ WebGPU error: first line, no source path or signature', () => {
    const raw =
      '[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:67 void onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuBufferCacheConfig&, int) Failed to get a WebGPU adapter.\n' +
      'Stacktrace:\n  /onnxruntime_src/onnxruntime/core/session/inference_session.cc:1234 onnxruntime::InferenceSession::Initialize()';
    expect(providerErrorLine(raw)).toBe('Failed to get a WebGPU adapter.');
  });
  it('leaves a plain message alone and names a missing one', () => {
    expect(providerErrorLine('CUDA is not available in this build of ONNX Runtime')).toBe('CUDA is not available in this build of ONNX Runtime');
    expect(providerErrorLine('\n  backend not found: dml  \nmore')).toBe('backend not found: dml');
    expect(providerErrorLine(null)).toBe('no reason given');
  });
});

describe('the search chart\'s iteration axis', () => {
  it('steps by whole numbers only and labels only whole ticks', () => {
    expect(INTEGER_TICK_STEPS.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
    expect(integerTickLabels([0, 2.5, 5])).toEqual(['0', '', '5']);
  });
});
