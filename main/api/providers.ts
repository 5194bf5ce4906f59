/** Execution-provider choices; `auto` tries the platform's GPU providers and falls back to cpu. Zod-free: the renderer imports it. */
export const EXECUTION_PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type ExecutionProviderChoice = (typeof EXECUTION_PROVIDERS)[number];

/**
 * One readable line from an execution provider's error: its first line, without ONNX Runtime's
 * "[ONNXRuntimeError] : 1 : FAIL :" prefix and the C++ source locations and signatures that
 * precede the reason ("/onnxruntime_src/.../webgpu_context.cc:52 void onnxruntime::...() ").
 */
export function providerErrorLine(error: string | null | undefined): string {
  const first = (error ?? '').split('\n').map((l) => l.trim()).find(Boolean) ?? '';
  const line = first
    .replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/g, '')
    .replace(/(?:[A-Za-z]:)?[\w./\\-]*\.(?:cc|cpp|cxx|c|h|hpp|cu|mm)(?::\d+)?(?:\s+[\w:<>,*&~ ]*?[\w~]+::[\w~]+\([^()]*(?:\([^()]*\)[^()]*)*\)(?:\s*const)?)?\s*/g, '')
    .replace(/\s+/g, ' ')
    .replace(/^[\s:;,-]+|[\s:;,-]+$/g, '')
    .trim();
  return line || 'no reason given';
}

/** What the system probe found for one provider. */
export interface ProbedProvider {
  name: string;
  available: boolean;
  adapter: string | null;
  error: string | null;
  callsPerSecond: number | null;
}

/**
 * A provider named with what the latest probe found on this machine, as the app's pickers and the CLI's
 * `probe` show it: "cuda (NVIDIA H200, 2150 calls/s measured)", "webgpu (unavailable: …)".
 * `probed` false: no probe has run yet. `reasonChars`: a picker's option keeps the reason short; the CLI prints it whole.
 */
export function describeProvider(name: ExecutionProviderChoice | string, found: ProbedProvider | undefined, probed: boolean, reasonChars = 60): string {
  if (name === 'auto') return 'auto (best available GPU, else cpu)';
  if (!found) return `${name}${probed ? ' (not probed)' : ''}`;
  if (!found.available) return `${name} (unavailable: ${providerErrorLine(found.error).slice(0, reasonChars)})`;
  const speed = found.callsPerSecond !== null ? `, ${found.callsPerSecond.toFixed(0)} calls/s measured` : '';
  return `${name} (${found.adapter ?? 'available'}${speed})`;
}
