import { LatestValueStream } from '../../src/live/latest-value-stream';

describe('latest-value stream', () => {
  test('a slow reader skips straight to the newest value', async () => {
    const stream = new LatestValueStream<number>(() => {});
    stream.push(1);
    stream.push(2);
    stream.push(3);
    expect(await stream.next()).toEqual({ value: 3, done: false });
  });

  test('a waiting reader gets the next value as soon as it is pushed', async () => {
    const stream = new LatestValueStream<number>(() => {});
    const next = stream.next();
    stream.push(7);
    expect(await next).toEqual({ value: 7, done: false });
  });

  test('ending delivers what is waiting, then finishes, and tells the owner once', async () => {
    const onClose = jest.fn();
    const stream = new LatestValueStream<number>(onClose);
    stream.push(1);
    stream.end();
    stream.end();
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  test('a client leaving (return) releases a waiting reader and drops pending values', async () => {
    const onClose = jest.fn();
    const stream = new LatestValueStream<number>(onClose);
    const waiting = stream.next();
    await stream.return();
    expect(await waiting).toEqual({ value: undefined, done: true });
    stream.push(5);
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  describe('direct delivery', () => {
    test('a value pushed while the reader waits is delivered directly, and the reader keeps waiting', async () => {
      const stream = new LatestValueStream<number>(() => {});
      const direct: number[] = [];
      stream.deliverDirectly((value) => direct.push(value) > 0);
      const next = stream.next();
      stream.push(1);
      stream.push(2);
      expect(direct).toEqual([1, 2]);
      stream.end();
      expect(await next).toEqual({ value: undefined, done: true });
    });

    test('a value declined directly goes to the waiting reader', async () => {
      const stream = new LatestValueStream<number>(() => {});
      stream.deliverDirectly(() => false);
      const next = stream.next();
      stream.push(5);
      expect(await next).toEqual({ value: 5, done: false });
    });

    test('while the reader is busy with a value nothing is delivered directly, so no newer value overtakes it', async () => {
      const stream = new LatestValueStream<number>(() => {});
      const direct: number[] = [];
      stream.deliverDirectly((value) => direct.push(value) > 0);
      // The first value is waiting before anyone reads (the current stock, pushed at subscribe).
      stream.push(1);
      stream.push(2);
      expect(direct).toEqual([]);
      expect(await stream.next()).toEqual({ value: 2, done: false });
      // Handed out: once the reader asks again, newer values go directly.
      const next = stream.next();
      stream.push(3);
      expect(direct).toEqual([3]);
      stream.end();
      expect(await next).toEqual({ value: undefined, done: true });
    });

    test('a closed stream delivers nothing directly', () => {
      const stream = new LatestValueStream<number>(() => {});
      const direct = jest.fn(() => true);
      stream.deliverDirectly(direct);
      void stream.next();
      stream.end();
      stream.push(1);
      expect(direct).not.toHaveBeenCalled();
    });
  });
});
