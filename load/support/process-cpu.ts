/** CPU time of a process the benches started, read from /proc (Linux). */
import fs from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on Linux x86-64). */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds used so far by a process and all its descendants (a service's workers), from
 * /proc, in user space and in the kernel: unlike throughput, what one claim costs the server does
 * not depend on who else shares the cores. The split is the reliable one: a CPU profile can put
 * user-space time on `writev` (the floor made to spin 60 µs in JavaScript per request showed
 * 64 µs per request in `writev` instead of 14).
 */
export function cpuSecondsOfTree(pid: number): { user: number; system: number } {
  const ticks = { user: 0, system: 0 };
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks.user = Number(fields[11]);
    ticks.system = Number(fields[12]);
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const child of children ? children.split(' ') : []) {
      const seconds = cpuSecondsOfTree(Number(child));
      ticks.user += seconds.user * TICKS_PER_SECOND;
      ticks.system += seconds.system * TICKS_PER_SECOND;
    }
  } catch {
    // The process ended between listing and reading.
  }
  return { user: ticks.user / TICKS_PER_SECOND, system: ticks.system / TICKS_PER_SECOND };
}

/** CPU seconds a process tree used between two readings of `cpuSecondsOfTree`: in all, and in the kernel. */
export function cpuSecondsBetween(before: { user: number; system: number }, after: { user: number; system: number }): { total: number; kernel: number } {
  return { total: after.user + after.system - (before.user + before.system), kernel: after.system - before.system };
}
