// One coarse timer for every connection's timeouts. Arming a timeout is then a field write
// (`item.deadline = sweeper.now + ms`) instead of a setTimeout/clearTimeout pair per request, which
// matters at tens of thousands of requests per second. Resolution is one tick (100 ms by default).

export interface Expirable {
  /** Epoch ms when the item times out; 0 = no deadline. */
  deadline: number;
  onDeadline(now: number): void;
}

export class DeadlineSweeper {
  /** A clock refreshed every tick; good enough for timeouts measured in seconds. */
  now = Date.now();
  private readonly items = new Set<Expirable>();
  private readonly timer: NodeJS.Timeout;

  constructor(tickMs = 100) {
    this.timer = setInterval(() => this.sweep(), tickMs);
    this.timer.unref();
  }

  add(item: Expirable): void {
    this.items.add(item);
  }

  delete(item: Expirable): void {
    this.items.delete(item);
  }

  after(ms: number): number {
    return this.now + ms;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sweep(): void {
    const now = (this.now = Date.now());
    for (const item of this.items) {
      if (item.deadline !== 0 && item.deadline <= now) {
        item.deadline = 0;
        item.onDeadline(now);
      }
    }
  }
}
