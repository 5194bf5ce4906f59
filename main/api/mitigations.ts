/**
 * The inference-time mitigations MemBench compares (spec section 6), as a catalogue: each method's
 * name, its one parameter with its range, what it changes (the prompt, the text embeddings, the UNet) and
 * whether this build can run it. Parsing a method list (`none,rna:1,rna:4,...`) lives here, zod-free, so
 * the CLI, the API's schemas and the renderer's form refuse the same inputs with the same words.
 * Adding a method is one entry in MITIGATION_METHODS (and its transform in main/mitigation/).
 */

export type MitigationTarget = 'none' | 'prompt' | 'embedding' | 'unet';

export interface MitigationParam {
  name: string;
  /** What the parameter means, for help texts. */
  meaning: string;
  min: number;
  max: number;
  integer: boolean;
  default: number;
}

export interface MitigationMethod {
  id: string;
  /** As MemBench's Table 3 names it. */
  label: string;
  description: string;
  target: MitigationTarget;
  param: MitigationParam | null;
  /** null when this build runs it; else why not. */
  unavailable: string | null;
}

export const MITIGATION_METHODS: readonly MitigationMethod[] = [
  { id: 'none', label: 'none', description: 'no mitigation (the baseline)', target: 'none', param: null, unavailable: null },
  {
    id: 'rna',
    label: 'RNA',
    description: 'random number addition: n random integers in [0, 99999] inserted at random word positions',
    target: 'prompt',
    param: { name: 'n', meaning: 'numbers inserted', min: 1, max: 16, integer: true, default: 1 },
    unavailable: null,
  },
  {
    id: 'rta',
    label: 'RTA',
    description: "random token addition: n random tokens of the model's CLIP vocabulary inserted at random word positions",
    target: 'prompt',
    param: { name: 'n', meaning: 'tokens inserted', min: 1, max: 16, integer: true, default: 1 },
    unavailable: null,
  },
  {
    id: 'cwr',
    label: 'CWR',
    description: 'caption word repetition: a word of the prompt inserted again at a random word position, n times',
    target: 'prompt',
    param: { name: 'n', meaning: 'words repeated', min: 1, max: 16, integer: true, default: 1 },
    unavailable: null,
  },
  {
    id: 'gni',
    label: 'GNI',
    description: 'Gaussian noise injection: lambda x N(0, I) added to both text embeddings (conditional and unconditional)',
    target: 'embedding',
    param: { name: 'lambda', meaning: 'noise scale', min: 0, max: 10, integer: false, default: 0.1 },
    unavailable: null,
  },
  {
    id: 'wen',
    label: 'Wen',
    description:
      "Wen et al.'s prompt-embedding optimisation: AdamW (lr 0.05, at most 10 updates) on the text embedding until the detection norm ||eps_c - eps_u|| at the first step, mean over the prompt's images, is below l. MemBench uses l = 7 and l = 3 (SD 1 scale); on the demo model detection norms are about 1, so l = 7 or 3 makes no update there (use the demo's scale, e.g. 0.453 or 0.352)",
    target: 'embedding',
    param: { name: 'l', meaning: 'target detection norm (MemBench: 7 or 3; the demo model: about 0.3 to 0.5)', min: 0.001, max: 100, integer: false, default: 7 },
    unavailable: null,
  },
  {
    id: 'ren',
    label: 'Ren',
    description: "cross-attention rescaling: keys after the prompt's end token masked and the start token's pre-softmax logit multiplied by c, conditional branch only",
    target: 'unet',
    param: { name: 'c', meaning: 'start-token logit scale', min: 1, max: 2, integer: false, default: 1.0 },
    unavailable: null,
  },
];

/** One method with its parameter: what a benchmark row is. */
export interface MitigationSetting {
  method: string;
  /** null for a method without a parameter. */
  param: number | null;
}

/**
 * MemBench's Table 3 for SD 1, the default list. Wen (wen:7, wen:3) is left out of the default: it costs
 * up to 10 UNet forward and backward passes per prompt, and its l is on SD 1's scale (a no-op on the demo).
 */
export const MEMBENCH_METHODS = 'none,rna:1,rna:4,rta:1,rta:4,cwr,gni:0.1,ren:1.0,ren:1.3';

export function mitigationMethod(id: string): MitigationMethod | undefined {
  return MITIGATION_METHODS.find((m) => m.id === id);
}

/** `rna:4`, `none`, `gni:0.1`: the canonical text of a setting (stored with every generation). */
export function settingKey(s: MitigationSetting): string {
  return s.param === null ? s.method : `${s.method}:${s.param}`;
}

/** How a table row names a setting: `RNA n=4`. */
export function settingLabel(s: MitigationSetting): string {
  const m = mitigationMethod(s.method);
  if (!m) return settingKey(s);
  return m.param && s.param !== null ? `${m.label} ${m.param.name}=${s.param}` : m.label;
}

export type ParseResult = { ok: true; settings: MitigationSetting[] } | { ok: false; error: string };

/**
 * Parses a comma-separated method list. Every problem is reported with the item it is about: an unknown
 * method (with the known ones), a parameter that is not a number or out of range, a method this build
 * cannot run (with why), a parameter given to a method without one, a setting listed twice.
 */
export function parseMitigations(spec: string): ParseResult {
  const items = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) return { ok: false, error: 'no mitigation methods given (e.g. none,rna:1,ren:1.3)' };
  const settings: MitigationSetting[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const [name, value, ...rest] = item.split(':');
    const id = name.trim().toLowerCase();
    const method = mitigationMethod(id);
    if (!method) return { ok: false, error: `"${item}": unknown mitigation method "${name}"; known: ${MITIGATION_METHODS.map((m) => m.id).join(', ')}` };
    if (method.unavailable) return { ok: false, error: `"${item}": ${method.label} is not available: ${method.unavailable}` };
    if (rest.length > 0) return { ok: false, error: `"${item}": one parameter at most (method:value)` };
    let param: number | null = null;
    if (method.param) {
      const p = method.param;
      if (value === undefined || value.trim() === '') param = p.default;
      else {
        const text = value.trim();
        const v = Number(text);
        if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) || !Number.isFinite(v)) return { ok: false, error: `"${item}": ${method.label}'s ${p.name} must be a number (got "${value}")` };
        if (p.integer && !Number.isInteger(v)) return { ok: false, error: `"${item}": ${method.label}'s ${p.name} must be a whole number (got ${text})` };
        if (v < p.min || v > p.max) return { ok: false, error: `"${item}": ${method.label}'s ${p.name} must be in [${p.min}, ${p.max}] (got ${text})` };
        param = v;
      }
    } else if (value !== undefined) {
      return { ok: false, error: `"${item}": ${method.label} takes no parameter` };
    }
    const setting = { method: method.id, param };
    const key = settingKey(setting);
    if (seen.has(key)) return { ok: false, error: `"${item}": ${key} is listed twice` };
    seen.add(key);
    settings.push(setting);
  }
  return { ok: true, settings };
}
