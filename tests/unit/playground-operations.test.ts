/**
 * The playground decides how to send an operation (HTTP, or WebSocket for a subscription) from
 * the editor's current text, not GraphiQL's parsed document, which lags the editor.
 */
import { BOOT_SCRIPT, OPERATIONS_SCANNER } from '../../src/playground/client';

type Operation = { type: string; name?: string };
const operationsIn = new Function(`${OPERATIONS_SCANNER}; return operationsIn;`)() as (text: string) => Operation[];

describe("the playground's reading of the editor's text", () => {
  test('finds each operation with its type and name, and an anonymous query', () => {
    expect(operationsIn('mutation Create { createCoupon(input: {name: "x", totalQuantity: 1}) { id } }\nsubscription Stock { stockChanged(couponId: "1") { remaining } }\n{ coupon(id: "1") { id } }')).toEqual([
      { type: 'mutation', name: 'Create' },
      { type: 'subscription', name: 'Stock' },
      { type: 'query' },
    ]);
  });

  test('is not fooled by comments, strings, variables with object defaults, or fragments', () => {
    const text = [
      '# subscription Fake { x }',
      'query Q($input: CreateCouponInput = { name: "subscription S {" }) { coupon(id: "{") { ...F } }',
      '"""a description with subscription Nope { }"""',
      'fragment F on Coupon { id }',
      'subscription Real($id: ID!) { stockChanged(couponId: $id) { remaining } }',
    ].join('\n');
    expect(operationsIn(text)).toEqual([
      { type: 'query', name: 'Q' },
      { type: 'subscription', name: 'Real' },
    ]);
  });

  test('is part of the boot script the page loads', () => {
    expect(BOOT_SCRIPT).toContain(OPERATIONS_SCANNER.trim());
    expect(() => new Function(BOOT_SCRIPT)).not.toThrow();
  });
});
