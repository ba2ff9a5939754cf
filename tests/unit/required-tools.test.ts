/**
 * The rule for suites that need a program from a Debian package: present → the suite runs;
 * missing → it is skipped and the run ends with a line naming the package and the install
 * command; missing with CI=true → the suite fails, naming the package.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decideTool, recordSkip } from '../support/required-tools';

// Plain JavaScript, as Jest loads its global set-up and tear-down.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const skippedSuites = require('../support/skipped-suites.js') as { startRun(): string; endRun(dir: string, out: { write(text: string): void }): void };

let binDir: string;
let emptyDir: string;

beforeAll(() => {
  binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tools-bin-'));
  emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tools-empty-'));
  fs.writeFileSync(path.join(binDir, 'promtool'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(binDir, 'not-executable'), '', { mode: 0o644 });
});

afterAll(() => {
  for (const dir of [binDir, emptyDir]) fs.rmSync(dir, { recursive: true, force: true });
});

const suite = 'tests/unit/prometheus-rules.test.ts';

describe('whether a suite needing a Debian package runs', () => {
  test('a tool on the PATH lets the suite run, with its path', () => {
    const pathVariable = [emptyDir, binDir].join(path.delimiter);
    expect(decideTool('promtool', 'prometheus', { pathVariable, ci: undefined, suite })).toEqual({ action: 'run', path: path.join(binDir, 'promtool') });
    expect(decideTool('promtool', 'prometheus', { pathVariable, ci: 'true', suite })).toEqual({ action: 'run', path: path.join(binDir, 'promtool') });
  });

  test('a missing tool skips the suite with one line naming the suite, the tool and the install command', () => {
    expect(decideTool('promtool', 'prometheus', { pathVariable: emptyDir, ci: undefined, suite })).toEqual({
      action: 'skip',
      line: 'skipped tests/unit/prometheus-rules.test.ts: needs promtool — apt-get install -y prometheus',
    });
    expect(decideTool('promtool', 'prometheus', { pathVariable: '', ci: 'false', suite }).action).toBe('skip');
  });

  test('a file of that name that is not executable does not count as the tool', () => {
    expect(decideTool('not-executable', 'some-package', { pathVariable: binDir, ci: undefined, suite }).action).toBe('skip');
  });

  test('with CI=true a missing tool fails the suite, naming the package and the install command', () => {
    const decision = decideTool('prometheus', 'prometheus', { pathVariable: emptyDir, ci: 'true', suite });
    expect(decision.action).toBe('fail');
    expect(decision).toMatchObject({ message: expect.stringContaining('needs prometheus — apt-get install -y prometheus') });
    expect(decision).toMatchObject({ message: expect.stringContaining('Debian package prometheus') });
  });
});

describe('the closing lines of a run', () => {
  test('the end of the run prints every recorded line once, sorted, and removes the directory', () => {
    const previous = process.env.COUPON_TEST_SKIPS_DIR;
    const dir = skippedSuites.startRun();
    process.env.COUPON_TEST_SKIPS_DIR = previous;
    recordSkip('skipped b.test.ts: needs promtool — apt-get install -y prometheus', dir);
    recordSkip('skipped a.test.ts: needs prometheus — apt-get install -y prometheus', dir);
    recordSkip('skipped a.test.ts: needs prometheus — apt-get install -y prometheus', dir);
    let written = '';
    skippedSuites.endRun(dir, { write: (text) => (written += text) });
    expect(written).toBe(
      '\nskipped a.test.ts: needs prometheus — apt-get install -y prometheus\nskipped b.test.ts: needs promtool — apt-get install -y prometheus\n',
    );
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('a run with nothing skipped prints nothing', () => {
    const previous = process.env.COUPON_TEST_SKIPS_DIR;
    const dir = skippedSuites.startRun();
    process.env.COUPON_TEST_SKIPS_DIR = previous;
    let written = '';
    skippedSuites.endRun(dir, { write: (text) => (written += text) });
    expect(written).toBe('');
  });
});
