/**
 * An async iterator that holds only the newest value it has not delivered yet. A slow
 * subscriber therefore never builds a backlog: it skips straight to the latest stock,
 * which is all a "37 left" display needs. (Repeater-style libraries buffer every value,
 * which is the opposite of what is wanted here.)
 */
export class LatestValueStream<T> implements AsyncIterableIterator<T> {
  private latest: { value: T } | undefined;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;
  private direct: ((value: T) => boolean) | undefined;

  constructor(private readonly onClose: () => void) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * A consumer that can take a value at once, without the iterator: `deliver` returns true when
   * it has delivered the value, false to have it go through `next()` as usual. It is offered a
   * value only while the iterator's consumer waits, so everything the iterator handed out before
   * has been dealt with, and a value delivered directly is never followed by an older one.
   * Why: a hand-out to 10,000 subscribers otherwise costs a chain of promises per subscriber.
   */
  deliverDirectly(deliver: (value: T) => boolean): void {
    this.direct = deliver;
  }

  push(value: T): void {
    if (this.closed) return;
    if (this.waiting) {
      if (this.direct?.(value)) return;
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value, done: false });
    } else {
      this.latest = { value };
    }
  }

  /** Ends the stream after the value already waiting (if any) is delivered. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.latest) {
      const { value } = this.latest;
      this.latest = undefined;
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.latest = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
