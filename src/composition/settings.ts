/**
 * What `startService` is given: the parsed configuration with its connections resolved (an
 * embedded server in development is a `single` Redis target and a MongoDB URI like any other).
 */
import type { Config, RedisTarget } from '../config';

export type ServiceSettings = Config & {
  /** The Redis to use (resolved: an embedded server is a `single` target). */
  redis: RedisTarget;
  mongoUri: string;
  jwtSecret: string;
  /**
   * The signing key was generated for this run (JWT_SECRET unset, development): POST /dev/token
   * mints tokens and the playground offers a user and an admin token. Never in production.
   */
  devTokens?: boolean;
  /** What GET /metrics serves when this instance is one of several workers: all of them, aggregated. */
  readMetrics?: () => Promise<string>;
  /** A worker of a WORKERS > 1 start with METRICS_PORT: the primary serves /metrics there, this instance nowhere. */
  metricsOnPrimary?: boolean;
};
