/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query DropCoupon($id: ID!) {\n    coupon(id: $id) {\n      id\n      name\n      totalQuantity\n      remaining\n      status\n      startsAt\n      endsAt\n      openingDrawMs\n      drawCommitment\n      drawSeed\n      drawEntrants\n    }\n  }\n": typeof types.DropCouponDocument,
    "\n  subscription DropStock($couponId: ID!) {\n    stockChanged(couponId: $couponId) {\n      couponId\n      remaining\n      totalQuantity\n      status\n      serverTime\n    }\n  }\n": typeof types.DropStockDocument,
    "\n  mutation DropClaim($couponId: ID!) {\n    claimCoupon(couponId: $couponId) {\n      status\n      remaining\n      issuance {\n        id\n        sequence\n        issuedAt\n      }\n    }\n  }\n": typeof types.DropClaimDocument,
    "\n  query MyCoupons {\n    myIssuances {\n      id\n      sequence\n      issuedAt\n      status\n      redeemedAt\n      cancelledAt\n      coupon {\n        id\n        name\n        status\n        endsAt\n      }\n    }\n  }\n": typeof types.MyCouponsDocument,
    "\n  mutation CreateDemoCoupon($input: CreateCouponInput!) {\n    createCoupon(input: $input) {\n      id\n    }\n  }\n": typeof types.CreateDemoCouponDocument,
};
const documents: Documents = {
    "\n  query DropCoupon($id: ID!) {\n    coupon(id: $id) {\n      id\n      name\n      totalQuantity\n      remaining\n      status\n      startsAt\n      endsAt\n      openingDrawMs\n      drawCommitment\n      drawSeed\n      drawEntrants\n    }\n  }\n": types.DropCouponDocument,
    "\n  subscription DropStock($couponId: ID!) {\n    stockChanged(couponId: $couponId) {\n      couponId\n      remaining\n      totalQuantity\n      status\n      serverTime\n    }\n  }\n": types.DropStockDocument,
    "\n  mutation DropClaim($couponId: ID!) {\n    claimCoupon(couponId: $couponId) {\n      status\n      remaining\n      issuance {\n        id\n        sequence\n        issuedAt\n      }\n    }\n  }\n": types.DropClaimDocument,
    "\n  query MyCoupons {\n    myIssuances {\n      id\n      sequence\n      issuedAt\n      status\n      redeemedAt\n      cancelledAt\n      coupon {\n        id\n        name\n        status\n        endsAt\n      }\n    }\n  }\n": types.MyCouponsDocument,
    "\n  mutation CreateDemoCoupon($input: CreateCouponInput!) {\n    createCoupon(input: $input) {\n      id\n    }\n  }\n": types.CreateDemoCouponDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DropCoupon($id: ID!) {\n    coupon(id: $id) {\n      id\n      name\n      totalQuantity\n      remaining\n      status\n      startsAt\n      endsAt\n      openingDrawMs\n      drawCommitment\n      drawSeed\n      drawEntrants\n    }\n  }\n"): (typeof documents)["\n  query DropCoupon($id: ID!) {\n    coupon(id: $id) {\n      id\n      name\n      totalQuantity\n      remaining\n      status\n      startsAt\n      endsAt\n      openingDrawMs\n      drawCommitment\n      drawSeed\n      drawEntrants\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription DropStock($couponId: ID!) {\n    stockChanged(couponId: $couponId) {\n      couponId\n      remaining\n      totalQuantity\n      status\n      serverTime\n    }\n  }\n"): (typeof documents)["\n  subscription DropStock($couponId: ID!) {\n    stockChanged(couponId: $couponId) {\n      couponId\n      remaining\n      totalQuantity\n      status\n      serverTime\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DropClaim($couponId: ID!) {\n    claimCoupon(couponId: $couponId) {\n      status\n      remaining\n      issuance {\n        id\n        sequence\n        issuedAt\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation DropClaim($couponId: ID!) {\n    claimCoupon(couponId: $couponId) {\n      status\n      remaining\n      issuance {\n        id\n        sequence\n        issuedAt\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query MyCoupons {\n    myIssuances {\n      id\n      sequence\n      issuedAt\n      status\n      redeemedAt\n      cancelledAt\n      coupon {\n        id\n        name\n        status\n        endsAt\n      }\n    }\n  }\n"): (typeof documents)["\n  query MyCoupons {\n    myIssuances {\n      id\n      sequence\n      issuedAt\n      status\n      redeemedAt\n      cancelledAt\n      coupon {\n        id\n        name\n        status\n        endsAt\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateDemoCoupon($input: CreateCouponInput!) {\n    createCoupon(input: $input) {\n      id\n    }\n  }\n"): (typeof documents)["\n  mutation CreateDemoCoupon($input: CreateCouponInput!) {\n    createCoupon(input: $input) {\n      id\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;