/**
 * Runs a background pass now and then every interval, one pass at a time, until stopped.
 * A failed pass is logged and the next one runs on schedule; stopping waits for a pass in progress.
 */
import type { Logger } from 'pino';

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly logger: Logger,
    /** Logged when a pass fails, e.g. 'reconciliation pass failed; will retry'. */
    private readonly failureMessage: string,
  ) {}

  start(intervalMs: number): void {
    const tick = () => {
      this.running = this.pass()
        .catch((error: Error) => this.logger.warn({ err: error.message }, this.failureMessage))
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
