/** Execution-provider choices; `auto` tries the platform's GPU providers and falls back to cpu. Zod-free: the renderer imports it. */
export const EXECUTION_PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type ExecutionProviderChoice = (typeof EXECUTION_PROVIDERS)[number];
