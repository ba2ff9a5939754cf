/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
/** What a claim ended in. Business outcomes are these values, never errors. */
export type ClaimStatus =
  /** This user already holds an issuance of this coupon: the same one is returned, nothing new is issued. */
  | 'ALREADY_ISSUED'
  /** At or after the coupon's endsAt. */
  | 'ENDED'
  /** Won by this claim; the issuance was already stored in MongoDB when this answer was sent. */
  | 'ISSUED'
  /** Before the coupon's startsAt. */
  | 'NOT_STARTED'
  /** No stock left. */
  | 'SOLD_OUT';

/** Where a coupon stands, derived when it is read, in this order: SCHEDULED, ENDED, SOLD_OUT, ACTIVE. */
export type CouponStatus =
  /** Claims are open and stock is left. */
  | 'ACTIVE'
  /** endsAt has passed: claims answer ENDED. */
  | 'ENDED'
  /** Before startsAt: claims answer NOT_STARTED. */
  | 'SCHEDULED'
  /** Open, but remaining is 0: claims answer SOLD_OUT. */
  | 'SOLD_OUT';

/** A new coupon. Out-of-range values are BAD_USER_INPUT, with the field named in extensions.field. */
export type CreateCouponInput = {
  /** Optional; must be after startsAt. */
  endsAt?: string | null | undefined;
  /** 1..200 characters after trimming. */
  name: string;
  /** 0..2000 ms; default 0 (first come, first served). */
  openingDrawMs?: number | null | undefined;
  /** Optional; must be after startsAt. Null: issuances can be redeemed at any time. */
  redeemBy?: string | null | undefined;
  /** Default: now. */
  startsAt?: string | null | undefined;
  /** 1..10000000. */
  totalQuantity: number;
};

/** Where an issuance stands in its lifecycle. Stored issuances without a status (written before version 2) are ACTIVE. */
export type IssuanceStatus =
  /** Held by its winner; can be redeemed (before the coupon's redeemBy) or cancelled. */
  | 'ACTIVE'
  /** Given back (cancelledAt). Its unit went back to stock; it no longer counts as issued, and its user may claim again. */
  | 'CANCELLED'
  /** Used for an order (orderId, redeemedAt). Final: never cancelled, never redeemed for another order. */
  | 'REDEEMED';

export type DropCouponQueryVariables = Exact<{
  id: string | number;
}>;


export type DropCouponQuery = { coupon: { id: string, name: string, totalQuantity: number, remaining: number, status: CouponStatus, startsAt: string, endsAt: string | null, openingDrawMs: number, drawCommitment: string | null, drawSeed: string | null, drawEntrants: number | null } | null };

export type DropStockSubscriptionVariables = Exact<{
  couponId: string | number;
}>;


export type DropStockSubscription = { stockChanged: { couponId: string, remaining: number, totalQuantity: number, status: CouponStatus, serverTime: string } };

export type DropClaimMutationVariables = Exact<{
  couponId: string | number;
}>;


export type DropClaimMutation = { claimCoupon: { status: ClaimStatus, remaining: number, issuance: { id: string, sequence: number, issuedAt: string } | null } };

export type MyCouponsQueryVariables = Exact<{ [key: string]: never; }>;


export type MyCouponsQuery = { myIssuances: Array<{ id: string, sequence: number, issuedAt: string, status: IssuanceStatus, redeemedAt: string | null, cancelledAt: string | null, coupon: { id: string, name: string, status: CouponStatus, endsAt: string | null } }> };

export type CreateDemoCouponMutationVariables = Exact<{
  input: CreateCouponInput;
}>;


export type CreateDemoCouponMutation = { createCoupon: { id: string } };


export const DropCouponDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"DropCoupon"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"coupon"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"totalQuantity"}},{"kind":"Field","name":{"kind":"Name","value":"remaining"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"startsAt"}},{"kind":"Field","name":{"kind":"Name","value":"endsAt"}},{"kind":"Field","name":{"kind":"Name","value":"openingDrawMs"}},{"kind":"Field","name":{"kind":"Name","value":"drawCommitment"}},{"kind":"Field","name":{"kind":"Name","value":"drawSeed"}},{"kind":"Field","name":{"kind":"Name","value":"drawEntrants"}}]}}]}}]} as unknown as DocumentNode<DropCouponQuery, DropCouponQueryVariables>;
export const DropStockDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"DropStock"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"couponId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"stockChanged"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"couponId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"couponId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"couponId"}},{"kind":"Field","name":{"kind":"Name","value":"remaining"}},{"kind":"Field","name":{"kind":"Name","value":"totalQuantity"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"serverTime"}}]}}]}}]} as unknown as DocumentNode<DropStockSubscription, DropStockSubscriptionVariables>;
export const DropClaimDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"DropClaim"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"couponId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"claimCoupon"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"couponId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"couponId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"remaining"}},{"kind":"Field","name":{"kind":"Name","value":"issuance"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"sequence"}},{"kind":"Field","name":{"kind":"Name","value":"issuedAt"}}]}}]}}]}}]} as unknown as DocumentNode<DropClaimMutation, DropClaimMutationVariables>;
export const MyCouponsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"MyCoupons"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"myIssuances"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"sequence"}},{"kind":"Field","name":{"kind":"Name","value":"issuedAt"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"redeemedAt"}},{"kind":"Field","name":{"kind":"Name","value":"cancelledAt"}},{"kind":"Field","name":{"kind":"Name","value":"coupon"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"endsAt"}}]}}]}}]}}]} as unknown as DocumentNode<MyCouponsQuery, MyCouponsQueryVariables>;
export const CreateDemoCouponDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CreateDemoCoupon"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"CreateCouponInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"createCoupon"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}}]}}]}}]} as unknown as DocumentNode<CreateDemoCouponMutation, CreateDemoCouponMutationVariables>;