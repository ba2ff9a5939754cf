/** Every operation the page sends, typed by GraphQL Code Generator from ../src/schema (src/gql). */
import { graphql } from './gql';

export const CouponQuery = graphql(`
  query DropCoupon($id: ID!) {
    coupon(id: $id) {
      id
      name
      totalQuantity
      remaining
      status
      startsAt
      endsAt
      openingDrawMs
      drawCommitment
      drawSeed
      drawEntrants
    }
  }
`);

export const StockSubscription = graphql(`
  subscription DropStock($couponId: ID!) {
    stockChanged(couponId: $couponId) {
      couponId
      remaining
      totalQuantity
      status
      serverTime
    }
  }
`);

export const ClaimMutation = graphql(`
  mutation DropClaim($couponId: ID!) {
    claimCoupon(couponId: $couponId) {
      status
      remaining
      issuance {
        id
        sequence
        issuedAt
      }
    }
  }
`);

export const MyCouponsQuery = graphql(`
  query MyCoupons {
    myIssuances {
      id
      sequence
      issuedAt
      status
      redeemedAt
      cancelledAt
      coupon {
        id
        name
        status
        endsAt
      }
    }
  }
`);

export const CreateDemoCoupon = graphql(`
  mutation CreateDemoCoupon($input: CreateCouponInput!) {
    createCoupon(input: $input) {
      id
    }
  }
`);
