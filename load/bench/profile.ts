/**
 * Reads a V8 CPU profile (.cpuprofile) and says which part of the stack the CPU time went to:
 * self time per sampled function, grouped by the package or layer its source belongs to.
 */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  timeDeltas: number[];
}

/** First match wins: a frame's source location decides its layer. */
const LAYERS: Array<[string, (url: string, fn: string) => boolean]> = [
  ['idle (waiting for I/O)', (_, fn) => fn === '(idle)'],
  ['garbage collection', (_, fn) => fn === '(garbage collector)'],
  // The verify itself is native code; V8 names that frame after napi-rs's class, SignTask.
  ['JWT verify (@node-rs/jsonwebtoken)', (url, fn) => url.includes('/node_modules/@node-rs/jsonwebtoken') || (url === '' && fn === 'SignTask')],
  ['GraphQL parse (graphql/language)', (url) => url.includes('/node_modules/graphql/language/')],
  ['GraphQL validate (graphql/validation)', (url) => url.includes('/node_modules/graphql/validation/')],
  ['GraphQL execute (graphql/execution)', (url) => url.includes('/node_modules/graphql/execution/')],
  ['GraphQL compiled execution (graphql-jit)', (url) => url.includes('/node_modules/graphql-jit/')],
  ['GraphQL other (types, utilities)', (url) => url.includes('/node_modules/graphql/')],
  ['request limits (graphql-armor)', (url) => url.includes('/node_modules/@escape.tech/')],
  ['Apollo Server pipeline', (url) => url.includes('/node_modules/@apollo/') || url.includes('/node_modules/@graphql-tools/')],
  ['Redis client (ioredis)', (url) => /\/node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|denque|cluster-key-slot|standard-as-callback)\//.test(url)],
  ['MongoDB client (mongoose, driver, bson)', (url) => /\/node_modules\/(mongoose|mongodb|bson|mongodb-connection-string-url)\//.test(url)],
  ['rate limiter', (url) => url.includes('/node_modules/rate-limiter-flexible/')],
  ['metrics (prom-client)', (url) => url.includes('/node_modules/prom-client/')],
  ['logging (pino)', (url) => url.includes('/node_modules/pino')],
  ['service code (src/)', (url) => url.includes('/src/')],
  ['V8 native, unattributed (program)', (_, fn) => fn === '(program)'],
  ['Node core (http, net, streams, timers)', (url) => url.startsWith('node:')],
  ['V8 builtins and native code (JSON, Buffer, crypto, ...)', (url) => url === ''],
];

export interface LayerTime {
  layer: string;
  ms: number;
  /** Share of the busy (non-idle) CPU time. */
  busyShare: number;
}

export interface HotFunction {
  functionName: string;
  source: string;
  ms: number;
}

const shortSource = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/(src|load)\//, '$1/') || '(native)';

export function cpuByLayer(profile: CpuProfile, top = 15): { layers: LayerTime[]; hottest: HotFunction[]; busyMs: number; totalMs: number } {
  const layerOf = new Map<number, string>();
  const frameOf = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, HotFunction>();
  for (const node of profile.nodes) {
    const { url, functionName } = node.callFrame;
    layerOf.set(node.id, LAYERS.find(([, matches]) => matches(url, functionName))?.[0] ?? 'other');
  }
  const ms = new Map<string, number>();
  profile.samples.forEach((nodeId, i) => {
    const layer = layerOf.get(nodeId) ?? 'other';
    const t = (profile.timeDeltas[i] ?? 0) / 1000;
    ms.set(layer, (ms.get(layer) ?? 0) + t);
    const frame = frameOf.get(nodeId);
    if (!frame || frame.functionName === '(idle)') return;
    const key = `${frame.functionName}@${frame.url}`;
    const hot = byFunction.get(key) ?? { functionName: frame.functionName, source: shortSource(frame.url), ms: 0 };
    hot.ms += t;
    byFunction.set(key, hot);
  });
  const totalMs = [...ms.values()].reduce((a, b) => a + b, 0);
  const busyMs = totalMs - (ms.get('idle (waiting for I/O)') ?? 0);
  const layers = [...ms.entries()]
    .map(([layer, t]) => ({ layer, ms: t, busyShare: layer.startsWith('idle') ? NaN : t / busyMs }))
    .sort((a, b) => b.ms - a.ms);
  const hottest = [...byFunction.values()].sort((a, b) => b.ms - a.ms).slice(0, top);
  return { layers, hottest, busyMs, totalMs };
}

/**
 * Inclusive time per function (its own samples and those of everything it called), each function
 * counted once per sample however deep its recursion: says which part of a request costs what.
 */
export function inclusiveTimes(profile: CpuProfile & { nodes: Array<{ children?: number[] }> }, top = 40): HotFunction[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfMs = new Map<number, number>();
  profile.samples.forEach((nodeId, i) => selfMs.set(nodeId, (selfMs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const totals = new Map<string, HotFunction>();
  for (const [nodeId, ms] of selfMs) {
    const seen = new Set<string>();
    for (let id: number | undefined = nodeId; id !== undefined; id = parentOf.get(id)) {
      const { functionName, url } = byId.get(id)!.callFrame;
      if (functionName === '(root)' || functionName === '(idle)') continue;
      const source = `${shortSource(url)}:${(byId.get(id)!.callFrame as { lineNumber?: number }).lineNumber ?? ''}`;
      const key = `${functionName}@${source}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const total = totals.get(key) ?? { functionName, source, ms: 0 };
      total.ms += ms;
      totals.set(key, total);
    }
  }
  return [...totals.values()].sort((a, b) => b.ms - a.ms).slice(0, top);
}
