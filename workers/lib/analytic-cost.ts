// What a model costs per token, counted from its configuration instead of timed: prefill FLOPs
// per prompt token at a stated sequence length, and the bytes of state one sequence carries while
// decoding. Timings on shared CPUs are noise; these counts are the same on every machine, so a
// Pareto frontier drawn on them does not move between runs. Pure: the report, the dashboard and
// the unit tests (test/unit/analytic-cost.test.ts, hand counts) share them.

import { z } from 'zod';

/** The catalog entry fields the counts read (inference/catalog/models.json). A view of a full
 * entry, so the entry's other fields pass by; the ones read here are checked. */
export const CostEntry = z.object({
  family: z.string().min(1),
  dtype: z.string().min(1),
  config: z.record(z.string(), z.unknown()).optional(),
  nominalParams: z.number().int().positive().optional(),
});
export type CostEntry = z.infer<typeof CostEntry>;

/** What a finished cell's provenance recorded from the loaded model, when it did. */
export interface RecordedModel {
  parameters: number | null;
  /** state after the cell's longest prompt (grows with it for attention, fixed for recurrent) */
  stateBytes: number | null;
}

export interface AnalyticCost {
  /** prefill FLOPs per prompt token at `seqLen` (2 per weight, plus sequence mixing) */
  flopsPerToken: number | null;
  /** bytes of decoding state per sequence after `seqLen` tokens */
  stateBytes: number | null;
  /** where each figure came from, for the chart and report to say */
  parametersFrom: 'recorded' | 'catalog' | null;
  stateFrom: 'recorded' | 'config' | null;
  /** true when the config says how the layers mix the sequence; false: weights only */
  mixingCounted: boolean;
}

const ELEMENT_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

/**
 * One layer's sequence mixing. attention: keys and values of the last `window` tokens (all of
 * them when null); recurrent: a state of fixed size, `stateElements` numbers of `elementBytes`,
 * updated and read once per token; conv: a short convolution over `width` channels.
 */
type Mixer =
  | { kind: 'attention'; width: number; window: number | null }
  | { kind: 'recurrent'; stateElements: number; elementBytes: number }
  | { kind: 'conv'; width: number; kernel: number };

const int = (config: Record<string, unknown>, field: string): number => {
  const v = config[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new Error(`model config field "${field}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
};
const intList = (config: Record<string, unknown>, field: string): number[] => {
  const v = config[field];
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x)))
    throw new Error(`model config field "${field}" must be a list of layer indices, got ${JSON.stringify(v)}`);
  return v as number[];
};

/**
 * The layers' mixers, for the families whose layout the config spells out: Transformer++ (every
 * layer full attention) and Based (Taylor linear attention, sliding-window attention and BaseConv
 * layers, as inference/twice_inference/models/based.py builds them). Other families: null.
 */
export function mixers(entry: CostEntry): Mixer[] | null {
  const config = entry.config ?? {};
  if (entry.family === 'transformer') {
    return Array.from({ length: int(config, 'n_layers') }, () => ({ kind: 'attention' as const, width: int(config, 'd_model'), window: null }));
  }
  if (entry.family === 'based') {
    const d = int(config, 'd_model');
    const linear = new Set(intList(config, 'linear_attn_layers'));
    const sliding = new Set(intList(config, 'sliding_window_layers'));
    const heads = int(config, 'la_heads');
    const f = int(config, 'feature_dim');
    // Taylor feature map: 1 + f + f^2 features; per head a (features x value_dim) sum and a
    // normaliser of `features`, kept in float32 whatever the weights are
    const features = 1 + f + f * f;
    const valueDim = d / heads;
    return Array.from({ length: int(config, 'n_layers') }, (_, i): Mixer => {
      if (linear.has(i)) return { kind: 'recurrent', stateElements: heads * features * (valueDim + 1), elementBytes: 4 };
      if (sliding.has(i)) return { kind: 'attention', width: d, window: int(config, 'window') };
      return { kind: 'conv', width: (int(config, 'conv_expand') * d) / 2, kernel: int(config, 'conv_kernel') };
    });
  }
  return null;
}

/**
 * Families whose layers the counts do not spell out but whose decoding state is known not to grow
 * with the sequence: Mamba and GLA are recurrent throughout, JRT-RNN mixes linear and windowed
 * attention, Mamba-2 unless its config places attention layers (attn_layer_idx).
 */
function fixedState(entry: CostEntry): boolean {
  if (entry.family === 'mamba2') {
    const attn = entry.config?.attn_layer_idx;
    return attn === undefined || (Array.isArray(attn) && attn.length === 0);
  }
  return ['mamba', 'gla', 'jrt_rnn'].includes(entry.family);
}

/** Mean number of earlier tokens (itself included) a token attends to over a causal prefill of L. */
export function meanContext(seqLen: number, window: number | null): number {
  const w = window === null ? seqLen : Math.min(window, seqLen);
  // tokens 1..w see themselves and everything before; the rest see exactly w
  return (w * (w + 1)) / 2 / seqLen + ((seqLen - w) * w) / seqLen;
}

/**
 * FLOPs per prompt token of a prefill of `seqLen` tokens: 2 per weight (a multiply and an add),
 * plus per attention layer QK^T and AV over the mean causal context (4 x width per context
 * token), per recurrent layer 4 per state number (a multiply-add to update it, one to read it
 * out), per short convolution 2 x kernel per channel. Norms, activations and the softmax are
 * left out: they are linear in width and small beside the matmuls.
 */
export function analyticCost(entry: CostEntry, recorded: RecordedModel, seqLen: number): AnalyticCost {
  if (!Number.isInteger(seqLen) || seqLen <= 0) throw new Error(`sequence length must be a positive integer, got ${seqLen}`);
  const layers = mixers(entry);
  const elementBytes = ELEMENT_BYTES[entry.dtype];
  const parameters = recorded.parameters ?? entry.nominalParams ?? null;
  const parametersFrom = recorded.parameters !== null ? 'recorded' : (entry.nominalParams ?? null) !== null ? 'catalog' : null;
  let mixingFlops = 0;
  let configState: number | null = layers && elementBytes !== undefined ? 0 : null;
  for (const m of layers ?? []) {
    if (m.kind === 'attention') {
      mixingFlops += 4 * m.width * meanContext(seqLen, m.window);
      if (configState !== null) configState += 2 * m.width * Math.min(seqLen, m.window ?? seqLen) * elementBytes!;
    } else if (m.kind === 'recurrent') {
      mixingFlops += 4 * m.stateElements;
      if (configState !== null) configState += m.stateElements * m.elementBytes;
    } else {
      mixingFlops += 2 * m.kernel * m.width;
      if (configState !== null) configState += m.width * (m.kernel - 1) * elementBytes!;
    }
  }
  // the recorded state was taken at the cell's own prompt length: it holds at every length only
  // when nothing in the model grows with the sequence (no attention without a window)
  const grows = layers === null ? !fixedState(entry) : layers.some((m) => m.kind === 'attention' && m.window === null);
  const useRecorded = recorded.stateBytes !== null && !grows;
  return {
    flopsPerToken: parameters === null ? null : 2 * parameters + mixingFlops,
    stateBytes: useRecorded ? recorded.stateBytes : configState,
    parametersFrom,
    stateFrom: useRecorded ? 'recorded' : configState === null ? null : 'config',
    mixingCounted: layers !== null,
  };
}

/**
 * How many times a strategy makes the model read the prompt: JRT-Prompt and JRT's question-first
 * layout read the context `repeats` times (2 unless set). Prompt cost is charged per original
 * prompt token, so a strategy that reads twice costs twice the tokens, each at the longer length.
 */
export function readsOfPrompt(strategy: string, params: Record<string, unknown> | undefined): number {
  if (strategy !== 'jrt_prompt' && strategy !== 'jrt_question_first') return 1;
  const repeats = params?.repeats;
  return typeof repeats === 'number' && Number.isInteger(repeats) && repeats > 0 ? repeats : 2;
}

/** A strategy's cost per original prompt token of length `seqLen`: `reads` passes at reads x seqLen. */
export function strategyCost(entry: CostEntry, recorded: RecordedModel, seqLen: number, reads: number): AnalyticCost {
  const cost = analyticCost(entry, recorded, seqLen * reads);
  return { ...cost, flopsPerToken: cost.flopsPerToken === null ? null : cost.flopsPerToken * reads };
}
