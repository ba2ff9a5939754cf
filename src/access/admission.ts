/**
 * Bounded admission for GraphQL requests, so that a burst far beyond capacity is answered in
 * time: the requests that get in finish quickly, the rest hear SERVICE_UNAVAILABLE at once.
 * Two signals, because a backlog can sit where a queue of ours cannot see it:
 * - concurrency: at most `maxConcurrent` run at once; the others wait in arrival order, each for
 *   at most `maxWaitMs`, and are refused when that passes or when `maxQueued` already wait;
 * - event-loop lag: thousands of requests already written to their connections wait in the
 *   kernel, unseen, until the loop reads them; the loop running late is the sign. Above
 *   `maxLoopLagMs` a share of new requests is refused, all of them at twice that lag (the policy
 *   of toobusy-js, on Node's own timers).
 * A request meets it twice: on arrival (refusesNow), so a request refused under overload costs
 * no reading; and once its body is complete (enter), so a client trickling a body holds no slot.
 *
 * While an opening draw's window is open on this instance (`surgeExpected`), every request is let
 * in at once, without a slot. The burst at that instant is the draw's entrants. Refusing one
 * costs about as much as entering it (it is read, parsed and answered either way) and it comes
 * back a second later, so refusals add work and keep entrants out of the draw. Slots would bound
 * entries to a few hundred per turn of the event loop, while that loop reads thousands of
 * requests per turn. An entrant costs a token check, an HMAC and one Redis command, then waits
 * without working until the draw, whose own deadline still answers it in time
 * (src/draw/opening-draw.ts). A window lasts 2 s at most.
 */

export type ShedReason = 'queue_full' | 'waited_too_long' | 'event_loop_lag';

export interface AdmissionOptions {
  /** Requests running at once; 0 turns admission off (everything runs at once). */
  maxConcurrent: number;
  /** Longest a request waits for a slot before it is refused. */
  maxWaitMs: number;
  /** Requests allowed to wait; beyond it a request is refused without waiting. */
  maxQueued: number;
  /** Event-loop lag from which requests are refused; 0 turns this signal off. */
  maxLoopLagMs: number;
  /** The event loop's current lag in ms (LoopLag#current). */
  loopLag?: () => number;
  onShed?: (reason: ShedReason) => void;
  /** True while an opening draw's window is open on this instance: everything is let in then. */
  surgeExpected?: () => boolean;
  /** Draws the share refused under lag; replaceable in tests. */
  random?: () => number;
}

/**
 * How late a timer fires, i.e. how long anything queued on the event loop waits now. Sampled
 * every `everyMs`; a rise counts at once, a fall over a few samples, so one quick sample in the
 * middle of a backlog does not reopen the gate.
 */
export class LoopLag {
  private lag = 0;
  private lastSample = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs = 50) {}

  start(): void {
    this.lastSample = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const sample = Math.max(0, now - this.lastSample - this.everyMs);
      this.lastSample = now;
      this.lag = sample >= this.lag ? sample : (this.lag + sample) / 2;
    }, this.everyMs).unref();
  }

  /** Also counts a sample that is overdue right now: the loop may be in a long turn at this very moment. */
  current(): number {
    return Math.max(this.lag, performance.now() - this.lastSample - this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Frees the slot; safe to call more than once. */
export type Release = () => void;
/** What a request let in without a slot releases. */
const NO_SLOT: Release = () => {};

interface Waiter {
  admit: (release: Release) => void;
  timer?: NodeJS.Timeout;
  /** Refused after waiting too long; left in the queue and skipped. */
  gaveUp: boolean;
}

export class Admission {
  private running = 0;
  /** A FIFO of waiters; `head` avoids Array#shift on a queue of thousands. */
  private waiting: Waiter[] = [];
  private head = 0;
  private queued = 0;

  constructor(private readonly options: AdmissionOptions) {}

  /**
   * Whether a request arriving now is refused at once (event-loop lag, or the queue full), before
   * anything of it is read; counted as shed when it is. A request that passes reads its body and
   * then calls enter() with `lagChecked`, so the lag is not drawn against it twice.
   */
  refusesNow(): boolean {
    if (this.options.surgeExpected?.()) return false;
    if (this.tooLate()) {
      this.options.onShed?.('event_loop_lag');
      return true;
    }
    if (this.options.maxConcurrent > 0 && this.queued >= this.options.maxQueued && !(this.running < this.options.maxConcurrent && this.queued === 0)) {
      this.options.onShed?.('queue_full');
      return true;
    }
    return false;
  }

  /** Resolves with a release function once admitted, or with null when refused. */
  enter(options: { lagChecked?: boolean } = {}): Promise<Release | null> {
    if (this.options.surgeExpected?.()) return Promise.resolve(NO_SLOT);
    if (!options.lagChecked && this.tooLate()) {
      this.options.onShed?.('event_loop_lag');
      return Promise.resolve(null);
    }
    if (this.options.maxConcurrent === 0) return Promise.resolve(NO_SLOT);
    if (this.running < this.options.maxConcurrent && this.queued === 0) return Promise.resolve(this.occupy());
    if (this.queued >= this.options.maxQueued) {
      this.options.onShed?.('queue_full');
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { admit: resolve, gaveUp: false };
      waiter.timer = setTimeout(() => {
        waiter.gaveUp = true;
        this.queued -= 1;
        this.options.onShed?.('waited_too_long');
        resolve(null);
      }, this.options.maxWaitMs);
      this.waiting.push(waiter);
      this.queued += 1;
    });
  }

  get inFlight(): number {
    return this.running;
  }

  private tooLate(): boolean {
    const { maxLoopLagMs, loopLag } = this.options;
    if (maxLoopLagMs === 0 || !loopLag) return false;
    const excess = (loopLag() - maxLoopLagMs) / maxLoopLagMs;
    return excess > 0 && (this.options.random ?? Math.random)() < excess;
  }

  private occupy(): Release {
    this.running += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running -= 1;
      this.admitNext();
    };
  }

  private admitNext(): void {
    while (this.running < this.options.maxConcurrent && this.head < this.waiting.length) {
      const waiter = this.waiting[this.head]!;
      this.head += 1;
      if (waiter.gaveUp) continue;
      clearTimeout(waiter.timer);
      this.queued -= 1;
      waiter.admit(this.occupy());
    }
    // Compact once the consumed prefix dominates, so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}
