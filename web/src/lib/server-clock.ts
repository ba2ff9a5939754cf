/**
 * The server's clock, estimated from StockUpdate.serverTime. A phone's own clock is often minutes
 * off, so the countdown and the button's opening use this, never Date.now() alone.
 *
 * Each update gives serverTime - (local time at receipt) = offset - network delay; the delay is
 * never negative, so the largest of the recent samples is the closest to the true offset. Local
 * time is monotonic (performance.now), so a user changing the phone's clock changes nothing here.
 */
export class ServerClock {
  private readonly samples: number[] = [];

  constructor(
    /** Milliseconds on a clock that never jumps (performance.timeOrigin + performance.now()). */
    private readonly localNow: () => number = () => performance.timeOrigin + performance.now(),
    /** Samples kept: enough to find a fast one, few enough to follow a drifting clock. */
    private readonly window = 20,
  ) {}

  /** An update carrying `serverTime` arrived now (or at `receivedAt`, local ms). */
  observe(serverTime: string, receivedAt: number = this.localNow()): void {
    const server = Date.parse(serverTime);
    if (Number.isNaN(server)) return;
    this.samples.push(server - receivedAt);
    if (this.samples.length > this.window) this.samples.shift();
  }

  /** server time - local time, in ms; undefined before the first update. */
  get offsetMs(): number | undefined {
    return this.samples.length ? Math.max(...this.samples) : undefined;
  }

  get synced(): boolean {
    return this.samples.length > 0;
  }

  /** The server's time now, in ms since the epoch (the local clock until synced). */
  now(): number {
    return this.localNow() + (this.offsetMs ?? 0);
  }
}

/** "2:05:09", "4:07", "12 s": the time left until an instant, for the countdown. */
export function formatRemaining(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (hours > 0) return `${hours}:${two(minutes)}:${two(seconds)}`;
  if (minutes > 0) return `${minutes}:${two(seconds)}`;
  return `${seconds} s`;
}
