/**
 * Limits on the shape of one GraphQL request, checked before anything executes: tokens (at
 * parse time, graphql-js's own `maxTokens`), then depth, aliases, directives and cost
 * (GraphQL Armor's validation rules) and at most one claimCoupon per operation (ours: no library
 * rule counts one field). Batched HTTP requests and persisted queries stay off. A refused
 * request gets HTTP 400 with GRAPHQL_PARSE_FAILED (too many tokens) or GRAPHQL_VALIDATION_FAILED
 * (everything else), the codes Apollo gives every parse and validation error, and nothing runs.
 */
import type { ApolloServerOptions, ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { LRUCache } from 'lru-cache';
import {
  getNamedType,
  GraphQLError,
  isCompositeType,
  isObjectType,
  isInterfaceType,
  Kind,
  typeFromAST,
  valueFromAST,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { GraphQLContext } from '../context';
import { readsLimitedOverHttp } from '../errors';

/**
 * Every operation the schema allows fits well inside these, including a page that asks for 15
 * full coupons at once through aliases (273 tokens, depth 2, cost 210). Figures measured with
 * graphql-js's lexer and Armor's own rules; the abuse tests pin them.
 */
export const REQUEST_LIMITS = {
  /** Lexical tokens per document; a full claim is ~30, 15 aliased coupons ~270, the introspection query ~160. */
  maxTokens: 1000,
  /** The schema's deepest path is 4 (claimCoupon → issuance → coupon → field); 6 leaves room to grow. */
  maxDepth: 6,
  /** Enough for a page that shows 15 coupons through aliased `coupon(id:)` fields. */
  maxAliases: 15,
  /** Our schema has no directives of its own; @include/@skip on a few fields is all a client needs. */
  maxDirectives: 10,
  /**
   * Armor's cost (2 per object, 1 per scalar, ×1.5 per level, a list field × its `first`): a full
   * claim ~51, 15 full coupons 210. Counted again once the viewer and the variables are known
   * (pagedCostPlugin), with `first` from the variables or the argument's default.
   */
  maxCost: 500,
  /**
   * The same cost for an admin token: the largest legitimate admin page, couponIssuances(first: 1000)
   * with every field and its coupon's, is 101,938; coupons(first: 100) with every field, 4,963.
   */
  adminMaxCost: 120_000,
  /** One claim per operation: aliases must not turn one request into a thousand claims. */
  claimsPerOperation: 1,
} as const;

const CLAIM_FIELD = 'claimCoupon';

/** Counts the distinct claimCoupon response names at the root of each mutation, through fragments. */
export const oneClaimPerOperation: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition(operation) {
    if (operation.operation !== 'mutation') return;
    const responseNames = new Set<string>();
    const visitedFragments = new Set<string>();
    const collect = (selectionSet: SelectionSetNode) => {
      for (const selection of selectionSet.selections) {
        if (selection.kind === Kind.FIELD) {
          if (selection.name.value === CLAIM_FIELD) responseNames.add(selection.alias?.value ?? selection.name.value);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          collect(selection.selectionSet);
        } else if (!visitedFragments.has(selection.name.value)) {
          visitedFragments.add(selection.name.value);
          const fragment = context.getFragment(selection.name.value);
          if (fragment) collect(fragment.selectionSet);
        }
      }
    };
    collect(operation.selectionSet);
    if (responseNames.size > REQUEST_LIMITS.claimsPerOperation) {
      context.reportError(
        new GraphQLError(`an operation may contain ${CLAIM_FIELD} at most ${REQUEST_LIMITS.claimsPerOperation} time(s), found ${responseNames.size}`, {
          nodes: operation,
        }),
      );
    }
  },
});

export interface RequestLimitOptions {
  /** When the schema is not public (introspection off), "Did you mean ...?" hints are masked too. */
  hideSchema: boolean;
}

export function requestLimits(options: RequestLimitOptions): Pick<
  ApolloServerOptions<never>,
  'allowBatchedHttpRequests' | 'persistedQueries' | 'parseOptions' | 'validationRules'
> & { plugins: ApolloServerPlugin[] } {
  const armor = new ApolloArmor({
    // graphql-js counts tokens while parsing and fails as a syntax error (400); Armor's own
    // token plugin throws from a hook Apollo treats as an internal error (500).
    maxTokens: { enabled: false },
    maxDepth: { n: REQUEST_LIMITS.maxDepth },
    maxAliases: { n: REQUEST_LIMITS.maxAliases },
    maxDirectives: { n: REQUEST_LIMITS.maxDirectives },
    // Before the viewer is known, only the admin bound can be applied; pagedCostPlugin applies
    // the viewer's own bound once it is (and counts `first` given in variables, which Armor counts as 1).
    costLimit: { maxCost: REQUEST_LIMITS.adminMaxCost },
    blockFieldSuggestion: { enabled: options.hideSchema },
  }).protect();
  return {
    // An array body would be N operations for the price of one request.
    allowBatchedHttpRequests: false,
    // No client of the contract sends query hashes; without APQ, clients cannot fill a server
    // cache with documents of their choosing.
    persistedQueries: false,
    parseOptions: { maxTokens: REQUEST_LIMITS.maxTokens },
    validationRules: [...armor.validationRules, oneClaimPerOperation],
    plugins: [...(armor.plugins as ApolloServerPlugin[]), pagedCostPlugin() as ApolloServerPlugin],
  };
}

const COST = { object: 2, scalar: 1, depthFactor: 1.5 };

/**
 * Armor's cost formula over the resolved operation: a field's `first` (or `last`) from a literal,
 * a variable or the argument's declared default multiplies its subtree. Fragments are followed
 * (each spread at most once per path).
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> = {},
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const root = operation.operation === 'mutation' ? schema.getMutationType() : operation.operation === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  const selectionCost = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType | null | undefined, seen: Set<string>): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const fieldDef = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[selection.name.value] : undefined;
        if (!selection.selectionSet) {
          total += COST.scalar;
          continue;
        }
        let multiplier = 1;
        for (const arg of selection.arguments ?? []) {
          if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
          const argDef = fieldDef?.args.find((a) => a.name === arg.name.value);
          const value = argDef ? valueFromAST(arg.value, argDef.type, variables) : undefined;
          if (typeof value === 'number') multiplier = Math.max(multiplier, value);
        }
        if (multiplier === 1 && fieldDef) {
          const declared = fieldDef.args.find((a) => (a.name === 'first' || a.name === 'last') && !selection.arguments?.some((given) => given.name.value === a.name));
          if (typeof declared?.defaultValue === 'number') multiplier = declared.defaultValue;
        }
        const child = fieldDef ? getNamedType(fieldDef.type) : undefined;
        total += multiplier * (COST.object + COST.depthFactor * selectionCost(selection.selectionSet, isCompositeType(child) ? child : undefined, seen));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const typed = selection.typeCondition ? typeFromAST(schema, selection.typeCondition) : parent;
        total += selectionCost(selection.selectionSet, isCompositeType(typed) ? typed : parent, seen);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || seen.has(fragment.name.value)) continue;
        const typed = typeFromAST(schema, fragment.typeCondition);
        total += selectionCost(fragment.selectionSet, isCompositeType(typed) ? typed : parent, new Set(seen).add(fragment.name.value));
      }
    }
    return total;
  };
  return selectionCost(operation.selectionSet, root, new Set());
}

/**
 * The cost limit by viewer: REQUEST_LIMITS.maxCost for everyone, adminMaxCost for an admin token,
 * so the admin pages (coupons first 100, couponIssuances first 1000) pass while nobody else can
 * send a costly document. Refused with HTTP 400 and GRAPHQL_VALIDATION_FAILED, before execution.
 */
export function pagedCostPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    requestDidStart: async () => ({
      didResolveOperation: async ({ schema, document, operation, request, contextValue }) => {
        if (!operation) return;
        const limit = contextValue.viewer?.admin ? REQUEST_LIMITS.adminMaxCost : REQUEST_LIMITS.maxCost;
        const cost = operationCost(schema, document, operation, request.variables ?? {});
        // The same cost against the caller's budgets (src/access/read-limiter.ts).
        const wait = contextValue.services.reads.charge(contextValue.clientIp, contextValue.viewer?.id, Math.min(cost, limit));
        if (wait !== undefined) throw readsLimitedOverHttp(wait);
        if (cost > limit) {
          throw new GraphQLError(`query cost limit of ${limit} exceeded, found ${cost}`, {
            extensions: { code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400 } },
          });
        }
      },
    }),
  };
}

/**
 * The documents Apollo has accepted (parsed and validated, so in its parsed-document cache), by
 * their text: a request whose text is not among them is a new document, and is held to its
 * address's budget of new documents before Apollo parses it (src/access/read-limiter.ts). Apollo
 * offers no hook that can refuse a request before parsing (an error thrown from parsingDidStart
 * is an internal error), so the HTTP handler asks this first.
 */
export class KnownDocuments {
  private readonly texts: LRUCache<string, true>;

  constructor(maxChars = KNOWN_DOCUMENTS_MAX_CHARS) {
    this.texts = new LRUCache({ maxSize: maxChars, sizeCalculation: (_, text) => text.length + 1 });
  }

  has(text: string): boolean {
    return this.texts.has(text);
  }

  plugin(): ApolloServerPlugin {
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ source }) => {
          if (source && source.length <= MAX_KNOWN_DOCUMENT_CHARS) this.texts.set(source, true);
        },
      }),
    };
  }
}

/** About Apollo's own parsed-document cache (30 MB of approximate size). */
const KNOWN_DOCUMENTS_MAX_CHARS = 8 * 1024 * 1024;
const MAX_KNOWN_DOCUMENT_CHARS = 64 * 1024;

/**
 * The everyone-bound as a validation rule, for where no viewer applies (subscriptions over
 * WebSocket are public): `first` in variables counts at its declared default there.
 */
export const publicCostRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition(operation) {
    const cost = operationCost(context.getSchema(), context.getDocument(), operation);
    if (cost > REQUEST_LIMITS.maxCost) context.reportError(new GraphQLError(`query cost limit of ${REQUEST_LIMITS.maxCost} exceeded, found ${cost}`, { nodes: operation }));
  },
});

/** Whether the document pages a list (`first`/`last`): its cost depends on the viewer and the variables. */
export function hasPageArguments(document: DocumentNode): boolean {
  let found = false;
  const walk = (selectionSet: SelectionSetNode | undefined) => {
    for (const selection of selectionSet?.selections ?? []) {
      if (found) return;
      if (selection.kind === Kind.FIELD && selection.arguments?.some((a) => a.name.value === 'first' || a.name.value === 'last')) found = true;
      else if (selection.kind !== Kind.FRAGMENT_SPREAD) walk(selection.selectionSet);
    }
  };
  for (const definition of document.definitions) if (definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION) walk(definition.selectionSet);
  return found;
}
