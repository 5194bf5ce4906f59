/**
 * How many samples one UNet call may take: generation, detection and the search energy all batch their
 * UNet calls by a memory budget, so `--n 1000` (2000 rows with classifier-free guidance) runs as many
 * bounded calls instead of one that exhausts memory. Results never depend on the batch size (every
 * image, noise and candidate has its own seeded stream), so the budget only trades speed for memory.
 *
 * The estimate is deliberately conservative (it assumes SD 1.x's widths whatever the model, and float32):
 *
 *   bytes per sample = 4 B × ( 2 × 8 × T²          the largest self-attention: 8 heads' T×T scores and
 *                                                  their softmax, alive together
 *                            + 64 × 320 × T )      about 64 live feature maps of the first block's 320
 *                                                  channels (convolutions, norms, residuals, skips)
 *
 * with T = h·w latent cells. SD 1.x at 512×512 (T = 4096): 1.07 GB + 0.34 GB ≈ 1.4 GB a sample, the
 * order diffusers needs per sample without attention slicing. The tiny test and demo models
 * (8×8 latents) come out at about 5.5 MB.
 *
 * The budget is the smaller of UNET_BATCH_BUDGET_BYTES (larger batches hardly run faster on a CPU, and
 * 4 GiB fits a GPU's memory next to SD's weights) and FREE_MEMORY_FRACTION of the memory free when the
 * batch is planned (os.freemem()). An explicit batch size is an upper bound under the same budget.
 */
import os from 'node:os';

export const UNET_BATCH_BUDGET_BYTES = 4 * 2 ** 30;
export const FREE_MEMORY_FRACTION = 0.5;

const BYTES_PER_VALUE = 4;
const ATTENTION_HEADS = 8;
const LIVE_FEATURE_MAPS = 64;
const FIRST_BLOCK_CHANNELS = 320;

/** Estimated activation memory of one sample (one row of the batch) in a UNet call on h×w latents. */
export function unetBytesPerSample(latentHeight: number, latentWidth: number): number {
  const tokens = latentHeight * latentWidth;
  return BYTES_PER_VALUE * (2 * ATTENTION_HEADS * tokens * tokens + LIVE_FEATURE_MAPS * FIRST_BLOCK_CHANNELS * tokens);
}

/** Bytes the UNet's batches may take now: the fixed budget or the free-memory share, whichever is smaller. */
export function unetBatchBudget(freeBytes: number = os.freemem()): number {
  return Math.min(UNET_BATCH_BUDGET_BYTES, FREE_MEMORY_FRACTION * freeBytes);
}

/**
 * Units (images, prompt-noise pairs, candidates) per UNet call: as many as the budget allows when each
 * unit takes `rowsPerUnit` batch rows (2 with classifier-free guidance), at least 1, at most `max`.
 */
export function unitsPerUnetCall(
  latentHeight: number,
  latentWidth: number,
  options: { rowsPerUnit?: number; max?: number; budgetBytes?: number } = {},
): number {
  const rows = Math.max(1, options.rowsPerUnit ?? 1);
  const budget = options.budgetBytes ?? unetBatchBudget();
  const fit = Math.floor(budget / (unetBytesPerSample(latentHeight, latentWidth) * rows));
  const max = options.max ?? Number.POSITIVE_INFINITY;
  return Math.max(1, Math.min(max, fit));
}
