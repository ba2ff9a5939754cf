import { loweringSellOuts, sellOuts, totalAt } from '../../src/events/event-model';

const fixed = (total: number) => totalAt(total, []);

const at = (ms: number) => new Date(1_700_000_000_000 + ms);
const win = (id: string, issuedMs: number, cancelledMs?: number) => ({ id, issuedAt: at(issuedMs), cancelledAt: cancelledMs === undefined ? null : at(cancelledMs) });

describe('sell-outs replayed from the issuances', () => {
  it('finds the first sell-out even when the relay reads it after a cancel and a new win', () => {
    // Three units: sold out at 30, a cancel at 40, sold out again at 50; the relay sees all of it at once.
    const issuances = [win('a', 10, 40), win('b', 20), win('c', 30), win('d', 50)];
    expect(sellOuts(issuances, fixed(3), new Set(['a', 'b', 'c', 'd']))).toEqual([
      { at: at(30), cancelledBefore: 0, totalQuantity: 3 },
      { at: at(50), cancelledBefore: 1, totalQuantity: 3 },
    ]);
  });

  it('reports only the sell-outs caused by the wins of this batch', () => {
    const issuances = [win('a', 10, 40), win('b', 20), win('c', 30), win('d', 50)];
    expect(sellOuts(issuances, fixed(3), new Set(['d']))).toEqual([{ at: at(50), cancelledBefore: 1, totalQuantity: 3 }]);
  });

  it('finds none while a unit is still free, and counts a cancel at the instant of a win before it', () => {
    expect(sellOuts([win('a', 10), win('b', 20)], fixed(3), new Set(['a', 'b']))).toEqual([]);
    expect(sellOuts([win('a', 10, 30), win('b', 20), win('c', 30)], fixed(2), new Set(['c']))).toEqual([{ at: at(30), cancelledBefore: 1, totalQuantity: 2 }]);
  });

  it('judges a win by the total in force at that moment, not by a total raised since', () => {
    // Sold out at 20 with a total of 2; the total was raised to 5 at 25; nothing more was won.
    const totals = totalAt(5, [{ at: at(25), from: 2, to: 5 }]);
    expect(sellOuts([win('a', 10), win('b', 20)], totals, new Set(['a', 'b']))).toEqual([{ at: at(20), cancelledBefore: 0, totalQuantity: 2 }]);
    // Raised before the second win: no sell-out at 20.
    expect(sellOuts([win('a', 10), win('b', 20)], totalAt(5, [{ at: at(15), from: 2, to: 5 }]), new Set(['a', 'b']))).toEqual([]);
  });

  it('follows the gate where a raise reached MongoDB before Redis: the win the gate answered with nothing remaining is a sell-out', () => {
    // nemesis seed 3000: the raise from 2 to 3 was stored at 15, applied to Redis after the win at 20,
    // so the gate answered that win remaining 0 while MongoDB's times say a unit was still free.
    const raised = totalAt(3, [{ at: at(15), from: 2, to: 3 }]);
    expect(sellOuts([win('a', 10), { ...win('b', 20), lastUnit: true }], raised, new Set(['b']))).toEqual([{ at: at(20), cancelledBefore: 0, totalQuantity: 2 }]);
    // Without the gate's word, the replay alone finds none.
    expect(sellOuts([win('a', 10), win('b', 20)], raised, new Set(['b']))).toEqual([]);
  });
});

describe('sell-outs by a lowered total', () => {
  const lowered = (ms: number, from: number, to: number) => ({ key: `r${ms}`, at: at(ms), from, to });

  it('a total lowered onto the live issuances is a sell-out at the change', () => {
    const issuances = [win('a', 10), win('b', 20), win('c', 25, 28)];
    expect(loweringSellOuts(issuances, [lowered(30, 5, 2)], 'all')).toEqual([{ at: at(30), key: 'r30', totalQuantity: 2 }]);
    // Lowered to more than is live: units stay free.
    expect(loweringSellOuts(issuances, [lowered(30, 5, 3)], 'all')).toEqual([]);
    // A raise is never one; a win after the change does not count for it.
    expect(loweringSellOuts([win('a', 10), win('b', 40)], [lowered(30, 1, 5), lowered(35, 5, 2)], 'all')).toEqual([]);
  });

  it('a batch finds it only through a win the change counts: the one whose write came after the change was first looked at', () => {
    const issuances = [win('a', 10), win('b', 20), win('late', 40)];
    expect(loweringSellOuts(issuances, [lowered(30, 5, 2)], new Set(['b']))).toEqual([{ at: at(30), key: 'r30', totalQuantity: 2 }]);
    expect(loweringSellOuts(issuances, [lowered(30, 5, 2)], new Set(['late']))).toEqual([]);
  });
});
