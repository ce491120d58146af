// The progress line's time left: examples left over a smoothed rate of the model now running.
// Rates differ by orders of magnitude between models (a tiny zoo model vs a 1B checkpoint), so
// each model keeps its own; a rate is only trusted after some examples, and the text is always a
// duration or "-", never NaN or Infinity.
const HALF_LIFE_SECONDS = 30;
const MIN_EXAMPLES = 2;

export class EtaEstimator {
  private readonly rates = new Map<string, number>();
  private last: { at: number; done: number; model: string | null } | null = null;
  private seen = new Map<string, number>();

  /** Records progress at time `at` (ms); returns the estimated seconds left, or null. */
  update(at: number, done: number, total: number, model: string | null): number | null {
    const prev = this.last;
    this.last = { at, done, model };
    if (prev && model && prev.model === model && done > prev.done && at > prev.at) {
      const dt = (at - prev.at) / 1000;
      const rate = (done - prev.done) / dt;
      const old = this.rates.get(model);
      // exponential smoothing by elapsed time, so polling frequency does not change the weight
      const keep = old === undefined ? 0 : Math.pow(0.5, dt / HALF_LIFE_SECONDS);
      this.rates.set(model, old === undefined ? rate : keep * old + (1 - keep) * rate);
      this.seen.set(model, (this.seen.get(model) ?? 0) + (done - prev.done));
    }
    const rate = model ? this.rates.get(model) : undefined;
    if (rate === undefined || !(rate > 0) || (this.seen.get(model!) ?? 0) < MIN_EXAMPLES) return null;
    const left = Math.max(0, total - done) / rate;
    return Number.isFinite(left) ? left : null;
  }
}

/** 0:42 -> "42s", "12m05s", "3h07m"; null or a non-number -> "-". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, '0')}m`;
}
