import pino from 'pino';
import { PeriodicTask } from '../../src/support/periodic-task';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a periodic background pass', () => {
  test('stopping ends the pass in progress at its next safe point, not after all its work', async () => {
    const done: number[] = [];
    const task = new PeriodicTask(
      async (signal) => {
        for (let item = 0; item < 50; item++) {
          if (signal.aborted) return;
          await pause(20);
          done.push(item);
        }
      },
      pino({ level: 'silent' }),
      'pass failed',
    );
    task.start(1000);
    await pause(70);
    const stopping = performance.now();
    await task.stop();
    expect(performance.now() - stopping).toBeLessThan(200);
    expect(done.length).toBeGreaterThan(0);
    expect(done.length).toBeLessThan(10);
    const after = done.length;
    await pause(100);
    expect(done).toHaveLength(after);
  });

  test('a started task runs again after a stop, with a fresh signal', async () => {
    const signals: boolean[] = [];
    const task = new PeriodicTask(async (signal) => void signals.push(signal.aborted), pino({ level: 'silent' }), 'pass failed');
    task.start(1000);
    await pause(20);
    await task.stop();
    task.start(1000);
    await pause(20);
    await task.stop();
    expect(signals).toEqual([false, false]);
  });
});
