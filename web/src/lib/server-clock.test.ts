import { describe, expect, test } from 'vitest';
import { formatRemaining, ServerClock } from './server-clock';

describe('the server clock estimate', () => {
  test('follows the server, not the local clock: a phone 5 minutes slow counts down on server time', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    const server = local + 5 * 60_000;
    clock.observe(new Date(server - 40).toISOString(), local); // sent 40 ms before it arrived
    expect(clock.synced).toBe(true);
    local += 1000;
    expect(clock.now()).toBe(server - 40 + 1000);
  });

  test('keeps the sample with the shortest trip, which is the closest to the true offset', () => {
    const clock = new ServerClock(() => 0);
    clock.observe(new Date(10_000 - 300).toISOString(), 0); // 300 ms on the way
    clock.observe(new Date(10_000 - 20).toISOString(), 0); // 20 ms
    clock.observe(new Date(10_000 - 150).toISOString(), 0);
    expect(clock.offsetMs).toBe(10_000 - 20);
  });

  test('forgets old samples, so a drifting clock is followed', () => {
    const clock = new ServerClock(() => 0, 3);
    clock.observe(new Date(5000).toISOString(), 0);
    for (let i = 0; i < 3; i++) clock.observe(new Date(1000).toISOString(), 0);
    expect(clock.offsetMs).toBe(1000);
  });

  test('uses the local clock until the first update, and ignores an unreadable time', () => {
    const clock = new ServerClock(() => 42);
    clock.observe('not a date');
    expect(clock.synced).toBe(false);
    expect(clock.now()).toBe(42);
  });

  test('the countdown reads as people read time', () => {
    expect(formatRemaining(12_000)).toBe('12 s');
    expect(formatRemaining(11_001)).toBe('12 s');
    expect(formatRemaining(247_000)).toBe('4:07');
    expect(formatRemaining(7_509_000)).toBe('2:05:09');
    expect(formatRemaining(-5)).toBe('0 s');
  });
});
