/**
 * Envoy-style retry budget: retries may add at most `ratio` of the live request rate (plus a small
 * floor so a quiet LB can still retry), so a failing target cannot turn into a retry storm.
 * Counts are kept over a sliding pair of one-second windows.
 */
export class RetryBudget {
  private windowStart = 0;
  private requests = 0;
  private retries = 0;
  private prevRequests = 0;
  private prevRetries = 0;
  /** Retries refused for lack of budget (exported as a metric). */
  exhausted = 0;

  constructor(
    readonly ratio = 0.2,
    readonly minPerSecond = 10,
  ) {}

  recordRequest(now: number): void {
    this.roll(now);
    this.requests++;
  }

  /** Takes one retry from the budget if any is left. */
  tryRetry(now: number): boolean {
    this.roll(now);
    const requests = this.requests + this.prevRequests;
    const retries = this.retries + this.prevRetries;
    if (retries >= Math.max(this.minPerSecond, requests * this.ratio)) {
      this.exhausted++;
      return false;
    }
    this.retries++;
    return true;
  }

  /** The retries left in the current window, for metrics. */
  remaining(now: number): number {
    this.roll(now);
    const allowed = Math.max(this.minPerSecond, (this.requests + this.prevRequests) * this.ratio);
    return Math.max(0, Math.floor(allowed - this.retries - this.prevRetries));
  }

  private roll(now: number): void {
    if (now - this.windowStart < 1000) return;
    const stale = now - this.windowStart >= 2000;
    this.prevRequests = stale ? 0 : this.requests;
    this.prevRetries = stale ? 0 : this.retries;
    this.requests = 0;
    this.retries = 0;
    this.windowStart = now;
  }
}
