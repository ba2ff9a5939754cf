/**
 * Compiled execution for the documents clients send over and over (a drop is one claim document
 * sent by everyone). Apollo stays the door for every new document: it parses and validates it
 * under the full rules (request limits, one claim per operation), and once it has accepted one
 * twice, the plugin below compiles it with graphql-jit. From then on the HTTP handler answers
 * that exact text itself: the same context, resolvers, error formatting and request log, without
 * Apollo's per-request pipeline (query hashing, content negotiation, plugin hooks) and with
 * compiled execution instead of graphql-js's interpreter. On this machine that halves the
 * GraphQL layer's CPU per claim (`npm run bench` measures it).
 *
 * The response's media type is chosen from `accept` as Apollo chooses it (JSON, or
 * application/graphql-response+json, which urql and graphql-request ask for first). Anything
 * unusual still goes through Apollo: an `accept` Apollo would refuse (406) or answer in its
 * callback format, persisted queries, non-object variables, and any request-level error (invalid
 * variables), so clients see one behaviour whichever path answered.
 */
import { hasPageArguments, operationCost, REQUEST_LIMITS } from './request-limits';
import type { ApolloServerPlugin } from '@apollo/server';
import { BREAK, Kind, OperationTypeNode, visit, type DocumentNode, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { LRUCache } from 'lru-cache';
import Negotiator from 'negotiator';

export class CompiledOperations {
  private readonly cache: LRUCache<string, CompiledQuery>;
  /** Documents accepted once so far, not yet compiled. */
  private readonly seenOnce: LRUCache<string, true>;
  private readonly costs = new WeakMap<CompiledQuery, number>();

  constructor(
    private readonly schema: GraphQLSchema,
    maxDocuments: number,
  ) {
    this.cache = new LRUCache({ max: Math.max(maxDocuments, 1) });
    this.seenOnce = new LRUCache({ max: Math.max(maxDocuments, 1) * 4 });
  }

  /** The last document found, compared by text before the cache is asked (a drop sends one document over and over). */
  private last?: { source: string; operationName: string | undefined; compiled: CompiledQuery };

  /** The compiled form of a document Apollo has accepted with this text and operation name. */
  find(source: string, operationName: string | undefined): CompiledQuery | undefined {
    const last = this.last;
    if (last !== undefined && last.source === source && last.operationName === operationName) return last.compiled;
    const compiled = this.cache.get(keyOf(source, operationName));
    if (compiled) this.last = { source, operationName, compiled };
    return compiled;
  }

  /**
   * Compiles a document Apollo has parsed and validated, the second time it does. Compiling costs
   * about ten parses, so a client that makes every document new (a varying comment) must not make
   * the service compile; a document sent twice is one clients really use. Subscriptions, and
   * operations whose root is not plain fields (introspection, fragments), stay with Apollo: rare,
   * and not worth a second execution engine's corner cases.
   */
  learn(source: string, operationName: string | undefined, document: DocumentNode, operation: OperationDefinitionNode): void {
    if (operation.operation === OperationTypeNode.SUBSCRIPTION) return;
    if (!operation.selectionSet.selections.every((s) => s.kind === Kind.FIELD && !s.name.value.startsWith('__'))) return;
    if (hasProtoAlias(document)) return;
    const key = keyOf(source, operationName);
    if (this.cache.has(key)) return;
    // Its cost limit depends on the viewer and the variables: checked by Apollo on every request.
    if (hasPageArguments(document)) return;
    const cost = operationCost(this.schema, document, operation);
    if (cost > REQUEST_LIMITS.maxCost) return;
    if (!this.seenOnce.delete(key)) {
      this.seenOnce.set(key, true);
      return;
    }
    const compiled = compileQuery(this.schema, document, operationName);
    if (isCompiledQuery(compiled)) {
      this.cache.set(key, compiled);
      this.costs.set(compiled, cost);
    }
  }

  /** A compiled document's cost (the request limits' measure), charged to the caller's budgets on every request. */
  costOf(compiled: CompiledQuery): number {
    return this.costs.get(compiled) ?? 1;
  }

  /** Teaches the cache every operation Apollo accepts. */
  plugin(): ApolloServerPlugin {
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ source, document, operation, request }) => {
          if (operation) this.learn(source, request.operationName ?? undefined, document, operation);
        },
      }),
    };
  }
}

/**
 * graphql-jit builds each result object as a JavaScript object literal, where a `__proto__` key
 * sets the prototype instead of adding a field: the answer would lose that field. graphql-js
 * builds on null-prototype objects and answers it; such documents are left to Apollo.
 */
function hasProtoAlias(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(field) {
      if (field.alias?.value === '__proto__') {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  return found;
}

const keyOf = (source: string, operationName: string | undefined) => `${operationName ?? ''}\n${source}`;

/** A request the compiled path may answer: a plain GraphQL POST with nothing Apollo would treat specially. */
export interface PlainRequest {
  query: string;
  operationName?: string;
  variables?: Record<string, unknown>;
  /** The answer's content type, as Apollo would choose it. */
  mediaType: string;
}

/** Apollo's media types for a single result (MEDIA_TYPES in @apollo/server), in its order of preference. */
const JSON_MEDIA = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_MEDIA = 'application/graphql-response+json; charset=utf-8';
const JSON_CALLBACK_MEDIA = 'application/json; callbackSpec=1.0; charset=utf-8';

/** Clients send a handful of distinct `accept` values, each on every request: negotiated once. */
const negotiated = new LRUCache<string, string | false>({ max: 256 });

/**
 * The content type Apollo would answer a single result with (its
 * chooseContentTypeForSingleResultResponse, the same negotiator), or undefined where Apollo must
 * answer: it refuses the request (406) or uses the callback format.
 */
export function responseMediaType(accept: string | undefined): string | undefined {
  if (!accept) return JSON_MEDIA;
  let chosen = negotiated.get(accept);
  if (chosen === undefined) {
    const preferred = new Negotiator({ headers: { accept } }).mediaType([JSON_MEDIA, GRAPHQL_RESPONSE_MEDIA, JSON_CALLBACK_MEDIA]);
    chosen = preferred === JSON_MEDIA || preferred === GRAPHQL_RESPONSE_MEDIA ? preferred : false;
    negotiated.set(accept, chosen);
  }
  return chosen || undefined;
}

/** The fields of a request body the compiled path understands; any other goes to Apollo. */
const PLAIN_FIELDS = new Set(['query', 'operationName', 'variables', 'extensions']);

export function asPlainRequest(body: unknown, accept: string | undefined): PlainRequest | undefined {
  const mediaType = responseMediaType(accept);
  if (!mediaType) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  for (const name in fields) if (!PLAIN_FIELDS.has(name)) return undefined;
  const { query, operationName, variables, extensions } = fields;
  if (typeof query !== 'string') return undefined;
  // Client libraries send extensions such as clientLibrary, which Apollo ignores; APQ's persistedQuery it does not.
  if (extensions !== undefined && (typeof extensions !== 'object' || extensions === null || 'persistedQuery' in extensions)) return undefined;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return undefined;
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return undefined;
  return { query, operationName: operationName ?? undefined, variables: (variables ?? undefined) as Record<string, unknown> | undefined, mediaType };
}

/**
 * The response body Apollo would send for `result`: errors first, each formatted the way Apollo
 * does before handing it to the server's formatError (a code always present, no stack trace).
 */
export function formatResult(result: ExecutionResult, formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError): string {
  const ordered: Record<string, unknown> = {};
  if (result.errors) {
    ordered.errors = result.errors.map((error) => {
      const formatted = error.toJSON();
      return formatError({ ...formatted, extensions: { ...formatted.extensions, code: formatted.extensions?.code ?? 'INTERNAL_SERVER_ERROR' } }, error);
    });
  }
  if ('data' in result) ordered.data = result.data;
  if (result.extensions) ordered.extensions = result.extensions;
  return `${JSON.stringify(ordered)}\n`;
}
