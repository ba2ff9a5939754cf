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
});
