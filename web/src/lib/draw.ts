/**
 * Where a coupon with an opening draw stands, on the server's clock (lib/server-clock.ts).
 *
 * Derived here rather than pushed by the stock subscription: the window is fixed once the coupon
 * opens (`openingDrawMs` changes only while SCHEDULED, and the page re-reads the coupon), so
 * `startsAt + openingDrawMs` on the server's clock says when it closes as precisely as a push
 * would, without a second status timer per coupon on the server or a field every watcher of every
 * coupon pays for. What the page cannot know from the clock, the seed, it reads from the coupon
 * once the window has closed.
 */
export type DrawPhase =
  /** No draw: first come, first served from startsAt. */
  | 'none'
  /** Before startsAt: entries are not open yet. */
  | 'before'
  /** [startsAt, startsAt + openingDrawMs): a claim now is an entry, held until the draw. */
  | 'open'
  /** From startsAt + openingDrawMs: the draw is done or being done; first come, first served after it. */
  | 'closed';

export function drawPhase(startsAt: number, openingDrawMs: number, now: number): DrawPhase {
  if (!(openingDrawMs > 0)) return 'none';
  if (now < startsAt) return 'before';
  if (now < startsAt + openingDrawMs) return 'open';
  return 'closed';
}

/** "the first 800 ms", "the first 2 seconds": the window in words. */
export function windowWords(openingDrawMs: number): string {
  if (openingDrawMs >= 1000 && openingDrawMs % 1000 === 0) return `the first ${openingDrawMs / 1000} second${openingDrawMs === 1000 ? '' : 's'}`;
  return `the first ${openingDrawMs} ms`;
}
