import type { Resolvers } from '../generated/resolvers-types';
import { Coupon } from './Coupon';
import { DateTime } from './DateTime';
import { Issuance } from './Issuance';
import { Mutation } from './Mutation';
import { Query } from './Query';
import { StockUpdate } from './StockUpdate';
import { Subscription } from './Subscription';

export const resolvers: Resolvers = { DateTime, Query, Mutation, Subscription, Coupon, Issuance, StockUpdate };
