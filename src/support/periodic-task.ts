/**
 * Runs a background pass now and then every interval, one pass at a time, until stopped.
 * A failed pass is logged and the next one runs on schedule. Stopping tells the pass in progress
 * through its signal and waits for it: a pass should end at its next safe point, so a graceful
 * stop is not held up by a whole pass (over every coupon, on a slow MongoDB).
 */
import type { Logger } from 'pino';

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = new AbortController();

  constructor(
    private readonly pass: (signal: AbortSignal) => Promise<void>,
    private readonly logger: Logger,
    /** Logged when a pass fails, e.g. 'reconciliation pass failed; will retry'. */
    private readonly failureMessage: string,
  ) {}

  start(intervalMs: number): void {
    this.stopping = new AbortController();
    const tick = () => {
      this.running = this.pass(this.stopping.signal)
        .catch((error: Error) => this.logger.warn({ err: error.message }, this.failureMessage))
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
