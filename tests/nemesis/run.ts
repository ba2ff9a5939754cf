/**
 * One nemesis history: start the world (tests/nemesis/environment.ts), let seeded workers draw
 * operations from OPERATION_KINDS against random instances while a seeded schedule injects
 * FAULT_KINDS, record everything, then, once the faults are over, wait for every instance to
 * settle, read MongoDB's final state and check the history (tests/nemesis/checker.ts).
 */
import type { Client } from 'graphql-ws';
import { Types } from 'mongoose';
import { COUPON, gql } from '../support/graphql';
import { adminToken, userToken } from '../support/stack';
import { clientAgent } from '../integration/faults/contract';
import { checkHistory, type CheckerOptions } from './checker';
import { startNemesisEnvironment, type NemesisEnvironment, type Topology } from './environment';
import { faultKindsFor, type FaultKindSpec, type InjectedFault } from './faults';
import type { Answer, Convergence, FaultWindow, Finding, History, Operation, StoredDraw, WatcherRecord, WebhookRecord, WebhookRequest } from './history';
import { OPERATION_KINDS, recordWatcher, watcherClient, type KnownCoupon, type KnownDraw, type KnownIssuance, type RunModel } from './operations';
import { Random } from './random';
import { Webhook } from 'standardwebhooks';
import { ALL_EVENTS, CREATE_WEBHOOK, WEBHOOKS, startReceiver, type ReceivedRequest } from '../support/webhook-receiver';
import { LOWERED_UNEXAMINED, UNPUBLISHED_ISSUANCES } from '../../src/events/event-store';

export interface Profile {
  name: string;
  topology: Topology;
  instances: number;
  /** How long operations run; faults stop a little earlier. */
  durationMs: number;
  /** Concurrent clients, each drawing its own operations. */
  workers: number;
  users: number;
  couponsLive: number;
  totalQuantity: number;
  /** Pause between one client's operations. */
  thinkMs: [number, number];
  /** Pause between faults. */
  faultGapMs: [number, number];
  /** 'each-once': every fault kind of the topology once, in a seeded order; 'random': weighted draws until the end. */
  faultSchedule: 'each-once' | 'random';
  /** Watchers open at once; the oldest is closed when a new one would pass this. */
  maxWatchers: number;
  /** Weights that differ from OPERATION_KINDS' own, by kind. */
  weights?: Record<string, number>;
  /** Coupons with an opening draw per history, one at a time (0: none). */
  draws?: number;
  /** Register a webhook at an in-process receiver that sometimes fails or is slow (guarantee 7). */
  webhook?: boolean;
}

export const PROFILES: Record<string, Profile> = {
  /** For `npm test`: every operation and every fault of a single Redis once, in well under a minute. */
  short: {
    name: 'short',
    topology: 'single',
    instances: 2,
    durationMs: 14_000,
    workers: 6,
    users: 14,
    couponsLive: 2,
    totalQuantity: 6,
    thinkMs: [10, 80],
    faultGapMs: [300, 800],
    faultSchedule: 'each-once',
    maxWatchers: 6,
    // Ends more often than a long history does, so that a short one surely has some.
    weights: { end: 3 },
    draws: 1,
    webhook: true,
  },
  /** Long histories on one Redis, three instances. */
  single: {
    name: 'single',
    topology: 'single',
    instances: 3,
    durationMs: 60_000,
    workers: 8,
    users: 30,
    couponsLive: 3,
    totalQuantity: 10,
    thinkMs: [10, 100],
    faultGapMs: [1000, 4000],
    faultSchedule: 'random',
    maxWatchers: 8,
    draws: 3,
    webhook: true,
  },
  /** Long histories on a Redis Cluster (three masters, a replica each), two instances. */
  cluster: {
    name: 'cluster',
    topology: 'cluster',
    instances: 2,
    durationMs: 60_000,
    workers: 8,
    users: 30,
    couponsLive: 3,
    totalQuantity: 10,
    thinkMs: [10, 100],
    faultGapMs: [1500, 5000],
    faultSchedule: 'random',
    maxWatchers: 8,
    draws: 3,
    webhook: true,
  },
};

export interface RunResult {
  history: History;
  findings: Finding[];
  stats: { operations: Record<string, number>; faults: Record<string, number>; watchers: number; events: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CONVERGE_WITHIN_MS = 20_000;
/** How long the harness waits for the webhook's pendingDeliveries to reach 0 once the history settled. */
const WEBHOOK_DRAIN_MS = 60_000;

export async function runHistory(profile: Profile, seed: number, options: { checker?: Partial<CheckerOptions>; log?: (line: string) => void } = {}): Promise<RunResult> {
  const log = options.log ?? (() => undefined);
  const environment = await startNemesisEnvironment({ topology: profile.topology, instances: profile.instances, database: `nemesis${seed >>> 0}` });
  try {
    return await runOn(environment, profile, seed, options.checker, log);
  } finally {
    await environment.stop();
  }
}

async function runOn(environment: NemesisEnvironment, profile: Profile, seed: number, checker: Partial<CheckerOptions> | undefined, log: (line: string) => void): Promise<RunResult> {
  const root = new Random(seed);
  const users = Array.from({ length: profile.users }, (_, i) => `nemesis-user-${i}`);
  const tokens = new Map(await Promise.all(users.map(async (user) => [user, await userToken(user)] as const)));
  const admin = await adminToken();
  const operations: Operation[] = [];
  const faults: FaultWindow[] = [];
  const watchers: WatcherRecord[] = [];
  const open: Array<{ record: WatcherRecord; client: Client; stop(): void }> = [];
  const coupons: KnownCoupon[] = [];
  const issuances = new Map<string, KnownIssuance>();
  const draws: KnownDraw[] = [];
  const urlOf = (instance: number) => environment.instances[instance]?.url;

  const closeWatcher = (watcher: (typeof open)[number]) => {
    watcher.stop();
    void watcher.client.dispose();
  };
  const watch = (couponId: string, instance: number): Promise<Answer> => {
    const record: WatcherRecord = { id: watchers.length, couponId, instance, start: Date.now(), end: 0, events: [], completed: false };
    watchers.push(record);
    const client = watcherClient(urlOf(instance)!);
    const handle = recordWatcher(client, record);
    open.push({ record, client, stop: handle.stop });
    while (open.length > profile.maxWatchers) closeWatcher(open.shift()!);
    return handle.first;
  };
  const modelFor = (rng: Random): RunModel => ({
    rng,
    users,
    coupons,
    issuances,
    draws,
    profile,
    token: (user) => tokens.get(user)!,
    adminToken: () => admin,
    watch,
  });

  const hook = profile.webhook ? await registerWebhook(environment, admin, root.fork(2000), log) : undefined;
  const started = Date.now();
  const deadline = started + profile.durationMs;
  const worker = async (index: number) => {
    const model = modelFor(root.fork(index + 1));
    while (Date.now() < deadline) {
      const alive = environment.instances.flatMap((instance, i) => (instance ? [i] : []));
      const planned = drawOperation(model);
      if (!planned || !alive.length) {
        await sleep(50);
        continue;
      }
      const { kind, plan } = planned;
      const instance = model.rng.pick(alive);
      const url = urlOf(instance)!;
      if (plan.delayMs) await sleep(plan.delayMs);
      const op: Operation = { id: operations.length, kind, instance, couponId: plan.couponId, user: plan.user, request: plan.request, start: Date.now(), end: 0, answer: {} };
      operations.push(op);
      op.answer = await plan.send(url, instance);
      op.end = Date.now();
      plan.learn?.(op.answer);
      if ((kind === 'create' || kind === 'createDraw') && op.answer.coupon) op.couponId = op.answer.coupon.id;
      await sleep(model.rng.int(...profile.thinkMs));
    }
  };
  const faulting = injectFaults(environment, profile, root.fork(1000), deadline - 2000, faults, log);
  await Promise.all([...Array.from({ length: profile.workers }, (_, i) => worker(i)), faulting]);
  log(`seed ${seed}: ${operations.length} operations, ${faults.length} faults; settling`);

  // The faults are over: every instance up, then guarantee 4 within CONVERGE_WITHIN_MS.
  for (const [index, instance] of environment.instances.entries()) if (!instance) await environment.restartInstance(index);
  if (environment.cluster) await environment.cluster.waitHealthy(30_000);
  const couponIds = coupons.filter((coupon) => coupon.id).map((coupon) => coupon.id);
  const convergence = (await Promise.all(couponIds.flatMap((couponId) => environment.instances.map((_, instance) => converge(environment, couponId, instance))))).filter(
    (seen): seen is Convergence => seen !== undefined,
  );
  // Open watchers get a moment to show the settled stock, then everything is closed.
  await waitForWatchers(open.map((watcher) => watcher.record), convergence);
  open.splice(0).forEach(closeWatcher);

  const drawIds = draws.filter((draw) => draw.id).map((draw) => draw.id);
  const final = await readFinal(environment, [...couponIds, ...drawIds]);
  const drawn = drawIds.length ? await readDraws(environment, drawIds) : undefined;
  const webhook = hook ? await hook.drain(expectedEventIds(operations)) : undefined;
  const history: History = {
    seed,
    profile: profile.name,
    topology: profile.topology,
    startedAt: started,
    operations,
    faults,
    watchers,
    final: { ...final, convergence, ...(drawn ? { draws: drawn } : {}) },
    ...(webhook ? { webhook } : {}),
    serviceErrors: serviceErrorsOf(environment),
  };
  const findings = checkHistory(history, checker);
  return { history, findings, stats: statsOf(history) };
}

/** Draws a kind by weight among those that have something to act on. */
function drawOperation(model: RunModel) {
  const candidates = [...OPERATION_KINDS];
  while (candidates.length) {
    const spec = model.rng.weighted(candidates, (kind) => model.profile.weights?.[kind.kind] ?? kind.weight);
    const plan = spec.plan(model);
    if (plan) return { kind: spec.kind, plan };
    candidates.splice(candidates.indexOf(spec), 1);
  }
  return undefined;
}

async function injectFaults(environment: NemesisEnvironment, profile: Profile, rng: Random, until: number, faults: FaultWindow[], log: (line: string) => void) {
  const kinds = faultKindsFor(profile.topology);
  // Each once: the instance kill first (it heals in the background, its restart takes longest), the rest shuffled.
  const schedule: Array<FaultKindSpec | undefined> =
    profile.faultSchedule === 'each-once' ? [...kinds.filter((kind) => kind.healsInBackground), ...rng.shuffle(kinds.filter((kind) => !kind.healsInBackground))] : [];
  const pending: Array<Promise<void>> = [];
  for (let i = 0; ; i++) {
    await sleep(rng.int(...profile.faultGapMs));
    const spec = profile.faultSchedule === 'each-once' ? schedule[i] : rng.weighted(kinds, (kind) => kind.weight);
    if (!spec || Date.now() >= until) return void (await Promise.all(pending));
    const start = Date.now();
    // Recorded even when injecting or healing throws: the run's world was disturbed either way.
    const window: FaultWindow = { kind: spec.kind, target: '?', start, end: Infinity };
    faults.push(window);
    let injected: InjectedFault;
    try {
      injected = await spec.inject(environment, rng);
    } catch (error) {
      log(`  fault ${spec.kind} failed to inject: ${(error as Error).message}`);
      window.end = Date.now();
      continue;
    }
    if (injected.skipped) {
      faults.splice(faults.indexOf(window), 1);
      continue;
    }
    Object.assign(window, { target: injected.target, instance: injected.instance });
    const healing = injected
      .heal()
      .catch((error: Error) => log(`  fault ${spec.kind} failed to heal: ${error.message}`))
      .then(() => {
        window.end = Date.now();
        log(`  fault ${spec.kind} on ${window.target}: ${window.end - window.start} ms`);
      });
    // A fault that heals in the background (an instance restarting) lets the next one start.
    if (injected.healsInBackground) pending.push(healing);
    else await healing;
  }
}

async function converge(environment: NemesisEnvironment, couponId: string, instance: number): Promise<Convergence | undefined> {
  const url = environment.instances[instance]?.url;
  if (!url) return undefined;
  const deadline = Date.now() + CONVERGE_WITHIN_MS;
  for (;;) {
    const reply = await gql(url, COUPON, { id: couponId }, undefined, clientAgent).catch(() => undefined);
    const [coupon, liveInMongo] = await Promise.all([
      environment.mongo.models.Coupon.findById(couponId).lean(),
      environment.mongo.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId), status: { $ne: 'CANCELLED' } }),
    ]);
    const seen: Convergence = {
      couponId,
      instance,
      at: Date.now(),
      remaining: reply?.data?.coupon?.remaining,
      totalQuantity: reply?.data?.coupon?.totalQuantity,
      liveInMongo,
      totalInMongo: coupon?.totalQuantity ?? -1,
    };
    if ((seen.remaining === seen.totalInMongo - liveInMongo && seen.totalQuantity === seen.totalInMongo) || Date.now() > deadline) return seen;
    await sleep(200);
  }
}

async function waitForWatchers(records: WatcherRecord[], convergence: Convergence[], timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  const settled = (record: WatcherRecord) => {
    const target = convergence.find((c) => c.couponId === record.couponId);
    const last = record.events.at(-1);
    return record.completed || record.error !== undefined || !target || last?.status === 'ENDED' || last?.remaining === target.totalInMongo - target.liveInMongo;
  };
  while (Date.now() < deadline && !records.every(settled)) await sleep(100);
}

async function readFinal(environment: NemesisEnvironment, couponIds: string[]) {
  const ids = couponIds.map((id) => new Types.ObjectId(id));
  const [coupons, issuances] = await Promise.all([
    environment.mongo.models.Coupon.find({ _id: { $in: ids } }).lean(),
    environment.mongo.models.Issuance.find({ couponId: { $in: ids } }).lean(),
  ]);
  const ms = (date: Date | null | undefined) => (date ? date.getTime() : undefined);
  const deliveries = await environment.mongo.models.Coupon.db.collection('webhook_deliveries').find({}, { projection: { body: 0 } }).toArray();
  const raw = (doc: unknown) => doc as Record<string, any>;
  return {
    diagnostics: {
      deliveries: deliveries.map((d) => ({ id: String(d._id), type: d.type, state: d.state, attempts: d.attempts, createdAt: ms(d.createdAt)!, deliveredAt: ms(d.deliveredAt), lastError: d.lastError })),
      issuances: issuances.map((doc) => ({ id: doc._id.toHexString(), evStage: raw(doc).evStage ?? null, lastUnit: raw(doc).lastUnit === true })),
      totalChanges: coupons.map((coupon) => ({
        couponId: coupon._id.toHexString(),
        changes: Object.values((raw(coupon).totalChanges ?? {}) as Record<string, { at: Date; from: number; to: number }>).map((c) => ({ at: c.at.getTime(), from: c.from, to: c.to })),
      })),
    },
    coupons: coupons.map((coupon) => ({ id: coupon._id.toHexString(), totalQuantity: coupon.totalQuantity, endsAt: ms(coupon.endsAt) ?? null })),
    issuances: issuances.map((doc) => ({
      id: doc._id.toHexString(),
      couponId: doc.couponId.toHexString(),
      userId: doc.userId,
      sequence: doc.sequence,
      status: (doc.status ?? 'ACTIVE') as 'ACTIVE' | 'REDEEMED' | 'CANCELLED',
      issuedAt: doc.issuedAt.getTime(),
      cancelledAt: ms(doc.cancelledAt),
      redeemedAt: ms(doc.redeemedAt),
      orderId: doc.orderId ?? undefined,
    })),
  };
}

/** Whether the event relay has read everything MongoDB holds: no issuance behind its marker, no lowered coupon unexamined. */
async function relayCaughtUp(environment: NemesisEnvironment): Promise<boolean> {
  const { Issuance, Coupon } = environment.mongo.models;
  const [issuances, lowered] = await Promise.all([
    Issuance.collection.countDocuments(UNPUBLISHED_ISSUANCES),
    Coupon.collection.countDocuments(LOWERED_UNEXAMINED),
  ]);
  return issuances === 0 && lowered === 0;
}

/** The events the acknowledged answers imply (issuance event ids, `ended:<coupon>` for ends): what the drain waits for, 60 s at most. */
function expectedEventIds(operations: Operation[]): string[] {
  return operations.flatMap((op) => {
    if ((op.kind === 'claim' || op.kind === 'drawClaim') && op.answer.status === 'ISSUED' && op.answer.issuance) return [`evt_${op.answer.issuance.id}_issued`];
    if (op.kind === 'redeem' && op.answer.status === 'REDEEMED') return [`evt_${op.request.issuanceId}_redeemed`];
    if (op.kind === 'cancel' && op.answer.status === 'CANCELLED') return [`evt_${op.request.issuanceId}_cancelled`];
    if (op.kind === 'end' && op.answer.status && !op.answer.code) return [`ended:${op.couponId}`];
    return [];
  });
}

/** The drawn coupons as MongoDB holds them, with the draw's entrants (the rows of draw.csv). */
async function readDraws(environment: NemesisEnvironment, ids: string[]): Promise<StoredDraw[]> {
  const { Coupon } = environment.mongo.models;
  const docs = await Coupon.find({ _id: { $in: ids.map((id) => new Types.ObjectId(id)) } }).lean();
  const rows = await Coupon.db
    .collection('draw_entrants')
    .find({ couponId: { $in: ids.map((id) => new Types.ObjectId(id)) } })
    .toArray();
  return docs.map((doc) => ({
    couponId: doc._id.toHexString(),
    startsAt: doc.startsAt.getTime(),
    openingDrawMs: doc.openingDrawMs ?? 0,
    drawCommitment: doc.drawCommitment ?? null,
    drawSeed: doc.drawSeed ?? null,
    drawDone: Boolean(doc.drawDone),
    entrants: rows
      .filter((row) => String(row.couponId) === doc._id.toHexString())
      .map((row) => ({ rank: row.rank, userId: row.userId, rankKey: row.rankKey, won: row.won, sequence: row.sequence ?? null })),
  }));
}

/**
 * The run's webhook: an in-process receiver that answers most attempts 204 and, by a seeded draw,
 * some 503 or not at all (the service's attempt timeout cuts it), always 204 from the 4th attempt
 * on so that the short retry schedule of the nemesis (NEMESIS_SERVICE_ENV) never gives up.
 */
async function registerWebhook(environment: NemesisEnvironment, admin: string, rng: Random, log: (line: string) => void) {
  const requests: WebhookRequest[] = [];
  let verifier: Webhook | undefined;
  const receiver = await startReceiver(({ attempt }) => (attempt >= 4 ? 204 : rng.chance(0.12) ? 503 : rng.chance(0.08) ? 'hang' : 204));
  const url = environment.instances.find((instance) => instance)!.url;
  const reply = await gql(url, CREATE_WEBHOOK, { url: receiver.url, events: ALL_EVENTS }, admin, clientAgent);
  const created = reply.data?.createWebhook;
  if (!created) {
    await receiver.close();
    throw new Error(`createWebhook failed: ${JSON.stringify(reply.errors)}`);
  }
  const registeredAt = Date.now();
  verifier = new Webhook(created.secret);
  // Each request is recorded as it arrives, its signature checked at once (the timestamp tolerance is 5 min).
  const record = (request: ReceivedRequest) => {
    let body: any = {};
    try {
      body = JSON.parse(request.body);
    } catch {
      body = {};
    }
    let signatureValid = true;
    try {
      verifier!.verify(request.body, request.headers as Record<string, string>);
    } catch {
      signatureValid = false;
    }
    requests.push({ id: request.id, type: body.type ?? '?', attempt: request.attempt, answer: request.answer, receivedAt: request.receivedAt, signatureValid, data: body.data ?? null });
  };
  const original = receiver.requests.push.bind(receiver.requests);
  receiver.requests.push = (...items: ReceivedRequest[]) => {
    items.forEach(record);
    return original(...items);
  };
  return {
    /**
     * Waits (bounded) until the relay has published everything MongoDB holds, then no delivery is
     * pending, and every expected event id was acknowledged; then closes the receiver.
     * pendingDeliveries alone is not enough: an issuance the relay has not read yet has no
     * delivery to count, and a sell-out is no answer's event, so `expected` cannot name it. The
     * relay writes a batch's deliveries before it advances the markers, so markers caught up,
     * then (read after) nothing pending, means every event was delivered.
     */
    async drain(expected: string[]): Promise<WebhookRecord> {
      const deadline = Date.now() + WEBHOOK_DRAIN_MS;
      let pending = -1;
      let failed = -1;
      for (;;) {
        const caughtUp = await relayCaughtUp(environment).catch(() => false);
        const live = environment.instances.find((instance) => instance);
        const seen = live ? await gql(live.url, WEBHOOKS, {}, admin, clientAgent).catch(() => undefined) : undefined;
        const mine = seen?.data?.webhooks?.find((w: { id: string }) => w.id === created.id);
        if (mine) [pending, failed] = [mine.pendingDeliveries, mine.failedDeliveries];
        const acked = requests.filter((r) => typeof r.answer === 'number' && r.answer < 300);
        const ackedIds = new Set([...acked.map((r) => r.id), ...acked.filter((r) => r.type === 'COUPON_ENDED').map((r) => `ended:${r.data?.coupon?.id}`)]);
        if ((caughtUp && mine && pending === 0 && expected.every((id) => ackedIds.has(id))) || Date.now() > deadline) break;
        await sleep(500);
      }
      // A moment for an attempt already sent to be recorded.
      await sleep(300);
      log(`  webhook: ${requests.length} requests, pending ${pending}, failed ${failed}`);
      await receiver.close();
      return { registeredAt, requests: [...requests], pendingAtEnd: pending, failedAtEnd: failed };
    },
  };
}

/** Error lines the instances logged (pino level 50 and above), the first 200. */
function serviceErrorsOf(environment: NemesisEnvironment): NonNullable<History['serviceErrors']> {
  return environment.started
    .flatMap(({ index, service }) =>
      service
        .logLines(/./)
        .filter((line) => typeof line.level === 'number' && line.level >= 50)
        .map(({ time, msg, level: _level, pid: _pid, hostname: _hostname, ...rest }) => ({
          instance: index,
          time: typeof time === 'number' ? time : Date.parse(String(time)),
          msg: String(msg),
          err: JSON.stringify(rest).slice(0, 800),
        })),
    )
    .slice(0, 200);
}

function statsOf(history: History): RunResult['stats'] {
  const count = (keys: string[]) => keys.reduce<Record<string, number>>((counts, key) => ((counts[key] = (counts[key] ?? 0) + 1), counts), {});
  return {
    operations: count(history.operations.map((op) => `${op.kind}:${op.answer.status ?? op.answer.code ?? 'NO_ANSWER'}`)),
    faults: count(history.faults.map((fault) => fault.kind)),
    watchers: history.watchers.length,
    events: history.watchers.reduce((sum, watcher) => sum + watcher.events.length, 0),
  };
}
