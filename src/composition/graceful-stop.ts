/**
 * A graceful stop as named steps run in order, once however often it is asked for. A step that
 * takes long is logged with its name, so a stop that runs into a supervisor's kill says what it
 * was waiting for.
 */
import type { Logger } from 'pino';

/** A step that takes this long is logged with its name. */
const SLOW_STOP_STEP_MS = 1000;

export type StopStep = readonly [name: string, run: () => Promise<unknown> | void];

export function gracefulStop(steps: readonly StopStep[], logger: Logger): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const run = async () => {
    for (const [step, action] of steps) {
      const started = performance.now();
      await action();
      const ms = Math.round(performance.now() - started);
      if (ms >= SLOW_STOP_STEP_MS) logger.warn({ step, ms }, 'graceful stop: a slow step');
    }
  };
  return () => (stopping ??= run());
}
