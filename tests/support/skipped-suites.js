/**
 * The end of every Jest run lists the suites skipped (or, with CI=true, failed) for want of a
 * program from a Debian package, one line each, so that no suite is ever skipped silently.
 * Suites leave their lines in a directory made for the run (tests/support/required-tools.ts);
 * Jest's globalSetup makes it, before any test worker starts, and its globalTeardown, which runs
 * after Jest's summary, prints the lines. Plain JavaScript, loaded by Jest itself.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SKIPS_DIR_VARIABLE = 'COUPON_TEST_SKIPS_DIR';

/** Makes the run's directory; workers inherit the variable naming it. */
function startRun() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coupon-test-skips-'));
  process.env[SKIPS_DIR_VARIABLE] = dir;
  return dir;
}

/** The recorded lines, sorted, without repeats. */
function recordedLines(dir) {
  let names = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const lines = names.map((name) => fs.readFileSync(path.join(dir, name), 'utf8').trim()).filter(Boolean);
  return [...new Set(lines)].sort();
}

/** Prints the lines after everything else and removes the directory. */
function endRun(dir = process.env[SKIPS_DIR_VARIABLE], out = process.stderr) {
  if (!dir) return;
  const lines = recordedLines(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  if (lines.length > 0) out.write(`\n${lines.join('\n')}\n`);
}

module.exports = { SKIPS_DIR_VARIABLE, startRun, endRun, recordedLines };
