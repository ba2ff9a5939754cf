import { Admission, LoopLag } from '../../src/access/admission';

const shed: string[] = [];
const admission = (maxConcurrent: number, maxQueued = 10, maxWaitMs = 1000) =>
  new Admission({ maxConcurrent, maxQueued, maxWaitMs, maxLoopLagMs: 0, onShed: (reason) => shed.push(reason) });

beforeEach(() => {
  shed.length = 0;
  jest.useFakeTimers();
});
afterEach(() => jest.useRealTimers());

describe('bounded admission', () => {
  test('requests within the limit are admitted at once', async () => {
    const gate = admission(2);
    expect(await gate.enter()).toEqual(expect.any(Function));
    expect(await gate.enter()).toEqual(expect.any(Function));
    expect(gate.inFlight).toBe(2);
  });

  test('a waiting request is admitted in arrival order when a slot frees', async () => {
    const gate = admission(1);
    const first = (await gate.enter())!;
    const order: string[] = [];
    const second = gate.enter().then((release) => (order.push('second'), release));
    const third = gate.enter().then((release) => (order.push('third'), release));
    first();
    (await second)!();
    await third;
    expect(order).toEqual(['second', 'third']);
    expect(gate.inFlight).toBe(1);
  });

  test('a request that waits longer than the limit is refused, and its place is not given a slot later', async () => {
    const gate = admission(1, 10, 1000);
    const first = (await gate.enter())!;
    const waiting = gate.enter();
    jest.advanceTimersByTime(1000);
    expect(await waiting).toBeNull();
    expect(shed).toEqual(['waited_too_long']);
    first();
    expect(gate.inFlight).toBe(0);
  });

  test('beyond the queue limit a request is refused without waiting', async () => {
    const gate = admission(1, 1);
    await gate.enter();
    void gate.enter();
    expect(await gate.enter()).toBeNull();
    expect(shed).toEqual(['queue_full']);
  });

  test('releasing twice frees one slot only', async () => {
    const gate = admission(1);
    const release = (await gate.enter())!;
    release();
    release();
    expect(gate.inFlight).toBe(0);
    await gate.enter();
    expect(gate.inFlight).toBe(1);
  });

  test('a request arriving to a full queue is refused before it is read; one with a slot or a place in the queue is not', async () => {
    const gate = admission(1, 1);
    expect(gate.refusesNow()).toBe(false);
    await gate.enter();
    expect(gate.refusesNow()).toBe(false);
    void gate.enter();
    expect(gate.refusesNow()).toBe(true);
    expect(shed).toEqual(['queue_full']);
    expect(admission(0, 0).refusesNow()).toBe(false);
  });

  test('a limit of 0 admits everything', async () => {
    const gate = admission(0, 0);
    const admitted = await Promise.all(Array.from({ length: 100 }, () => gate.enter()));
    expect(admitted.every((release) => typeof release === 'function')).toBe(true);
  });
});

describe('shedding on event-loop lag', () => {
  const lagging = (lagMs: number, draw: number) =>
    new Admission({ maxConcurrent: 0, maxQueued: 0, maxWaitMs: 0, maxLoopLagMs: 200, loopLag: () => lagMs, random: () => draw, onShed: (reason) => shed.push(reason) });

  test('below the lag limit every request is admitted', async () => {
    expect(await lagging(199, 0).enter()).toEqual(expect.any(Function));
  });

  test('above it a share grows with the lag: half the requests at 1.5 times the limit', async () => {
    expect(await lagging(300, 0.49).enter()).toBeNull();
    expect(await lagging(300, 0.51).enter()).toEqual(expect.any(Function));
    expect(shed).toEqual(['event_loop_lag']);
  });

  test('at twice the limit every request is refused', async () => {
    expect(await lagging(400, 0.999).enter()).toBeNull();
  });

  test('the lag is drawn once per request: at arrival, not again once its body is read', async () => {
    const gate = lagging(300, 0.49);
    expect(gate.refusesNow()).toBe(true);
    expect(await gate.enter({ lagChecked: true })).toEqual(expect.any(Function));
    expect(shed).toEqual(['event_loop_lag']);
  });
});

describe('while an opening draw window is open', () => {
  let windowOpen = true;
  const surging = () =>
    new Admission({ maxConcurrent: 1, maxQueued: 1, maxWaitMs: 1000, maxLoopLagMs: 200, loopLag: () => 1000, random: () => 0.999, surgeExpected: () => windowOpen, onShed: (reason) => shed.push(reason) });
  beforeEach(() => (windowOpen = true));

  test('a burst far beyond the slots and the queue is let in at once, with the loop late', async () => {
    const gate = surging();
    for (let i = 0; i < 50; i++) expect(gate.refusesNow()).toBe(false);
    const admitted = await Promise.all(Array.from({ length: 50 }, () => gate.enter()));
    expect(admitted.every((release) => typeof release === 'function')).toBe(true);
    expect(shed).toEqual([]);
  });

  test('what was let in holds no slot, and the limits apply again once the window is over', async () => {
    const gate = surging();
    const inWindow = (await gate.enter())!;
    expect(gate.inFlight).toBe(0);
    windowOpen = false;
    expect(gate.refusesNow()).toBe(true);
    expect(await gate.enter({ lagChecked: true })).toEqual(expect.any(Function));
    expect(gate.inFlight).toBe(1);
    inWindow();
    expect(gate.inFlight).toBe(1);
    expect(shed).toEqual(['event_loop_lag']);
  });
});

describe('measuring event-loop lag', () => {
  test('a loop blocked past the sampling period shows as lag at once, before the overdue sample runs', () => {
    jest.useRealTimers();
    const lag = new LoopLag(20);
    lag.start();
    const until = performance.now() + 150;
    while (performance.now() < until);
    expect(lag.current()).toBeGreaterThanOrEqual(100);
    lag.stop();
  });
});
