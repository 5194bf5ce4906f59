/** Validation of job parameters inside the engine: a clear message before any work starts. */
import { z } from 'zod';
import { EideticError } from '../../util/errors.js';
import { SCHEDULER_NAMES } from '../../sd/schedulers/index.js';
import { EXECUTION_PROVIDERS } from '../../sd/onnx-session.js';

export const generateParams = z.object({
  model: z.string().min(1),
  prompts: z.array(z.string().max(4000)).min(1).max(100_000),
  promptIds: z.array(z.number().int().nullable()).optional(),
  negativePrompt: z.string().max(4000).default(''),
  scheduler: z.enum(SCHEDULER_NAMES as [string, ...string[]]).optional(),
  steps: z.number().int().min(1).max(1000).default(50),
  guidance: z.number().min(0).max(50).default(7.5),
  width: z.number().int().min(8).max(4096).optional(),
  height: z.number().int().min(8).max(4096).optional(),
  n: z.number().int().min(1).max(1000).default(1),
  seed: z.union([z.number().int().min(0), z.string().regex(/^\d+$/)]).default(0),
  latentsFile: z.string().optional(),
  ep: z.enum(EXECUTION_PROVIDERS).default('auto'),
});
export type GenerateParams = z.infer<typeof generateParams>;

export const detectParams = z.object({
  model: z.string().min(1),
  prompts: z.array(z.string().max(4000)).min(1).max(1_000_000),
  noises: z.number().int().min(1).max(64).default(4),
  noiseFile: z.string().optional(),
  steps: z.number().int().min(1).max(50).default(1),
  seed: z.number().int().min(0).default(0),
  size: z.number().int().min(8).max(4096).optional(),
  batchSize: z.number().int().min(1).max(1024).default(8),
  attribution: z.boolean().default(false),
  ep: z.enum(EXECUTION_PROVIDERS).default('auto'),
});
export type DetectParams = z.infer<typeof detectParams>;

export function parseParams<T>(schema: z.ZodType<T>, params: unknown, job: string): T {
  const r = schema.safeParse(params);
  if (!r.success) {
    throw new EideticError('invalid_input', `${job}: ${r.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}
