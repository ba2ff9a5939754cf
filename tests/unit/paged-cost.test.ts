import { buildASTSchema, concatAST, parse, type OperationDefinitionNode } from 'graphql';
import { hasPageArguments, operationCost, REQUEST_LIMITS } from '../../src/http/request-limits';
import { typeDefs } from '../../src/schema';

const schema = buildASTSchema(concatAST(typeDefs.map((sdl) => parse(sdl))));
const cost = (source: string, variables: Record<string, unknown> = {}) => {
  const document = parse(source);
  return operationCost(schema, document, document.definitions[0] as OperationDefinitionNode, variables);
};
const COUPON_NODE = 'id name totalQuantity remaining issuedCount status startsAt endsAt redeemBy';

describe('cost by viewer', () => {
  test('a page counts as many times as its first, whether a literal, a variable or the default', () => {
    const literal = cost(`{ coupons(first: 50) { edges { node { ${COUPON_NODE} } } } }`);
    expect(cost(`query($n: Int) { coupons(first: $n) { edges { node { ${COUPON_NODE} } } } }`, { n: 50 })).toBe(literal);
    expect(cost(`{ coupons { edges { node { ${COUPON_NODE} } } } }`)).toBe(cost(`{ coupons(first: 20) { edges { node { ${COUPON_NODE} } } } }`));
    expect(literal).toBeGreaterThan(REQUEST_LIMITS.maxCost);
  });

  test("the largest admin page fits the admin bound, and a claim stays far below everyone's", () => {
    const page = `query($c: ID!) { couponIssuances(couponId: $c, first: 1000) { edges { cursor node { id couponId userId sequence issuedAt status redeemedAt orderId cancelledAt coupon { ${COUPON_NODE} } } } pageInfo { hasNextPage endCursor } } }`;
    expect(cost(page, { c: 'x' })).toBeLessThanOrEqual(REQUEST_LIMITS.adminMaxCost);
    expect(cost('mutation($c: ID!) { claimCoupon(couponId: $c) { status remaining issuance { id sequence issuedAt } } }')).toBeLessThan(100);
  });

  test('fragments are counted where they are spread', () => {
    const spread = cost(`query { coupons(first: 10) { edges { node { ...C } } } } fragment C on Coupon { ${COUPON_NODE} }`);
    const inline = cost(`query { coupons(first: 10) { edges { node { ${COUPON_NODE} } } } }`);
    expect(spread).toBe(inline);
  });

  test('documents that page a list are told apart, so they are never compiled', () => {
    expect(hasPageArguments(parse('{ coupons { edges { cursor } } }'))).toBe(false);
    expect(hasPageArguments(parse('query($n: Int) { coupons(first: $n) { edges { cursor } } }'))).toBe(true);
    expect(hasPageArguments(parse('{ coupon(id: "x") { id } }'))).toBe(false);
  });
});
