import { expect, test } from 'vitest';
import { drawPhase, windowWords } from './draw';

const startsAt = Date.parse('2026-12-04T18:00:00.000Z');

test('a coupon without a draw has no draw phase at any time', () => {
  for (const now of [startsAt - 1, startsAt, startsAt + 5000]) expect(drawPhase(startsAt, 0, now)).toBe('none');
});

test('entries open at startsAt (inclusive) and close at startsAt + openingDrawMs (exclusive)', () => {
  expect(drawPhase(startsAt, 800, startsAt - 1)).toBe('before');
  expect(drawPhase(startsAt, 800, startsAt)).toBe('open');
  expect(drawPhase(startsAt, 800, startsAt + 799)).toBe('open');
  expect(drawPhase(startsAt, 800, startsAt + 800)).toBe('closed');
  expect(drawPhase(startsAt, 800, startsAt + 60_000)).toBe('closed');
});

test('the window is said in words a person reads', () => {
  expect(windowWords(800)).toBe('the first 800 ms');
  expect(windowWords(1000)).toBe('the first 1 second');
  expect(windowWords(2000)).toBe('the first 2 seconds');
  expect(windowWords(1500)).toBe('the first 1500 ms');
});
