/**
 * What a nemesis run records: every operation with its request, answer and times, the faults
 * with their windows, every stock watcher's events, and MongoDB's final state. Plain data, so
 * that a history can be written to a file, read back and checked again (tests/nemesis/checker.ts).
 * Times are epoch milliseconds on the machine's clock, the one the service and MongoDB stamp with.
 */

export interface IssuanceView {
  id: string;
  couponId: string;
  userId: string;
  sequence: number;
  status?: string;
  orderId?: string | null;
}

export interface CouponView {
  id: string;
  totalQuantity: number;
  remaining?: number;
  status?: string;
}

/** What the service answered: a result (status, ...), a GraphQL error code, or no answer at all. */
export interface Answer {
  /** ClaimStatus for a claim, IssuanceStatus for a redeem or cancel, CouponStatus for an update, end or create. */
  status?: string;
  remaining?: number;
  issuance?: IssuanceView;
  coupon?: CouponView;
  /** extensions.code of a GraphQL error. */
  code?: string;
  /** The request got no answer (connection refused or cut, or the client's own timeout). */
  failure?: string;
}

/** The operation kinds the checker knows; a new kind is checked for answers in 3 s and unexpected errors. */
export type OperationKind = 'create' | 'claim' | 'cancel' | 'redeem' | 'update' | 'end' | (string & {});

export interface Operation {
  id: number;
  kind: OperationKind;
  /** Index of the service instance the request went to. */
  instance: number;
  couponId: string;
  /** The token's subject: a user, or the operator for admin operations. */
  user: string;
  request: { issuanceId?: string; orderId?: string; totalQuantity?: number };
  start: number;
  end: number;
  answer: Answer;
}

export interface FaultWindow {
  kind: string;
  /** What it hit: "instance 1", "redis 6379", "mongodb". */
  target: string;
  /** The killed instance, for kill faults (requests to it may get no answer). */
  instance?: number;
  start: number;
  /** When the fault was healed (the process resumed, restarted, the failover done). */
  end: number;
}

export interface StockEvent {
  remaining: number;
  totalQuantity: number;
  status: string;
  /** The server's clock when it sent the update. */
  serverTime: number;
  receivedAt: number;
}

export interface WatcherRecord {
  id: number;
  couponId: string;
  instance: number;
  start: number;
  /** When the harness stopped it, or it completed or failed. */
  end: number;
  events: StockEvent[];
  completed: boolean;
  error?: string;
}

export interface StoredCoupon {
  id: string;
  totalQuantity: number;
  endsAt: number | null;
}

export interface StoredIssuance {
  id: string;
  couponId: string;
  userId: string;
  sequence: number;
  status: 'ACTIVE' | 'REDEEMED' | 'CANCELLED';
  issuedAt: number;
  cancelledAt?: number;
  redeemedAt?: number;
  orderId?: string;
}

/** One instance's view of a coupon once the faults were over, against MongoDB at that moment. */
export interface Convergence {
  couponId: string;
  instance: number;
  at: number;
  remaining?: number;
  totalQuantity?: number;
  liveInMongo: number;
  totalInMongo: number;
}

/** A coupon created with an opening draw, as MongoDB holds it at the end, with its recorded entrants. */
export interface StoredDraw {
  couponId: string;
  startsAt: number;
  openingDrawMs: number;
  drawCommitment: string | null;
  drawSeed: string | null;
  drawDone: boolean;
  /** The draw_entrants records (the rows of draw.csv), in any order. */
  entrants: Array<{ rank: number; userId: string; rankKey: string; won: boolean; sequence: number | null }>;
}

export interface FinalState {
  coupons: StoredCoupon[];
  issuances: StoredIssuance[];
  convergence: Convergence[];
  /** Coupons with an opening draw (absent in histories without one). */
  draws?: StoredDraw[];
  /**
   * For diagnosing a webhook finding (the checker does not read it): every webhook delivery
   * MongoDB holds at the end, and the events relay's markers and the gate's last-unit marks.
   */
  diagnostics?: {
    deliveries: Array<{ id: string; type: string; state: string; attempts: number; createdAt: number; deliveredAt?: number; lastError?: string | null }>;
    issuances: Array<{ id: string; evStage: number | null; lastUnit: boolean }>;
    totalChanges: Array<{ couponId: string; changes: Array<{ at: number; from: number; to: number }> }>;
  };
}

/** One request the in-process webhook receiver got. */
export interface WebhookRequest {
  /** webhook-id */
  id: string;
  type: string;
  attempt: number;
  /** The receiver's answer: a status, or 'hang' (no answer until the service gave up the attempt). */
  answer: number | 'hang';
  receivedAt: number;
  /** Verified with the standardwebhooks library when it arrived. */
  signatureValid: boolean;
  /** The event's data (issuance or coupon). */
  data: any;
}

export interface WebhookRecord {
  registeredAt: number;
  requests: WebhookRequest[];
  /** pendingDeliveries / failedDeliveries when the harness stopped waiting for them to drain. */
  pendingAtEnd: number;
  failedAtEnd: number;
}

export interface History {
  seed: number;
  profile: string;
  topology: string;
  startedAt: number;
  operations: Operation[];
  faults: FaultWindow[];
  watchers: WatcherRecord[];
  final: FinalState;
  /** The webhook registered for the run (absent in histories without one). */
  webhook?: WebhookRecord;
  /** The instances' error log lines (level error and above), to explain findings; not checked. */
  serviceErrors?: Array<{ instance: number; time: number; msg: string; err?: string }>;
}

export interface Finding {
  /** A short rule name, e.g. "sold-out-while-free". */
  rule: string;
  /** The guarantee of the contract it breaks (1-8). */
  guarantee: number;
  message: string;
  /** The operation (or watcher, for subscription rules) it concerns. */
  operation?: number;
  watcher?: number;
  couponId?: string;
}
