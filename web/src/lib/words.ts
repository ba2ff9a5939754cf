/** Every ClaimStatus and error code in plain words, for people rather than developers. */
import type { ClaimStatus } from './claim-policy';

export const OUTCOME_WORDS: Record<ClaimStatus, string> = {
  ISSUED: 'You got one! The coupon is yours.',
  ALREADY_ISSUED: 'You already have this coupon — it is yours, nothing more to do.',
  SOLD_OUT: 'Sold out: every coupon has been claimed.',
  NOT_STARTED: 'Not open yet. The button opens when the drop starts.',
  ENDED: 'This drop has ended.',
};

/** The outcome of a press that was an entry in an opening draw. */
export const DRAW_OUTCOME_WORDS: Partial<Record<ClaimStatus, string>> = {
  ISSUED: 'You won in the draw! The coupon is yours.',
  ALREADY_ISSUED: 'You won in the draw — the coupon is yours, nothing more to do.',
  SOLD_OUT: 'Not drawn this time: the draw gave every coupon to other entrants.',
};

export const ERROR_WORDS: Record<string, string> = {
  UNAUTHENTICATED: 'Your sign-in is missing or has expired. Please sign in again.',
  FORBIDDEN: 'Your account may not do this.',
  BAD_USER_INPUT: 'This link does not point to a valid coupon.',
  NOT_FOUND: 'There is no such coupon.',
  SERVICE_UNAVAILABLE: 'The service is very busy right now. Your claim may still have gone through: press again, you will never get two.',
  RATE_LIMITED: 'Too many tries in a short time. Wait a moment, then press again.',
  NETWORK: 'No connection to the service. Check your connection and press again.',
  BAD_REQUEST: 'The page sent a request the service does not accept. Reload the page.',
  NOT_STARTED: 'The drop has not started yet on the server. Press again in a moment.',
  INTERNAL_SERVER_ERROR: 'Something went wrong on our side. Press again.',
};

export const RETRY_WORDS: Record<string, string> = {
  SERVICE_UNAVAILABLE: 'The service is busy; trying again',
  RATE_LIMITED: 'Slowing down; trying again',
  NETWORK: 'Connection lost; trying again',
  NOT_STARTED: 'Almost open; trying again',
};

export const errorWords = (code: string) => ERROR_WORDS[code] ?? `The request failed (${code}). Press again.`;
