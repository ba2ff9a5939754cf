/**
 * Runs one Artillery scenario from load/scenarios against a service started by these scripts:
 * the coupon id and the service's JWT secret go to the processor through the environment,
 * telemetry is off, and the run is killed if it outlives its bound.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ServiceProcess } from './service-process';

export const LOAD_DIR = path.join(__dirname, '..');

export interface ArtilleryRun {
  /** File name under load/scenarios, e.g. 'spike.yml'. */
  scenario: string;
  service: ServiceProcess;
  couponId: string;
  /** JSON report written here; Artillery's console output next to it (.log). */
  output: string;
  /** Artillery --overrides, e.g. { config: { phases: [...] } }. */
  overrides?: object;
  /** Hard limit for the whole run. */
  limitSeconds: number;
}

export function runArtillery(run: ArtilleryRun): Promise<string> {
  const logFile = run.output.replace(/\.json$/, '.log');
  const log = fs.openSync(logFile, 'w');
  const args = ['run', '--target', run.service.url, '--output', run.output];
  if (run.overrides) args.push('--overrides', JSON.stringify(run.overrides));
  const child = spawn(path.join(LOAD_DIR, 'node_modules', '.bin', 'artillery'), [...args, path.join('scenarios', run.scenario)], {
    cwd: LOAD_DIR,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      COUPON_ID: run.couponId,
      JWT_SECRET: run.service.jwtSecret,
      LOAD_EPOCH_MS: String(Date.now()),
      ARTILLERY_DISABLE_TELEMETRY: 'true',
    },
  });
  fs.closeSync(log);
  return new Promise((resolve, reject) => {
    const limit = setTimeout(() => child.kill('SIGKILL'), run.limitSeconds * 1000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(limit);
      if (code === 0) resolve(run.output);
      else reject(new Error(`artillery ${signal ? `killed (${signal})` : `exited with ${code}`}; see ${logFile}`));
    });
  });
}
