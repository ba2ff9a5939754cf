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
import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

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
  /** Armor's static cost (2 per object, 1 per scalar, ×1.5 per level): a full claim ~51, 15 full coupons 210. */
  maxCost: 500,
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
    costLimit: { maxCost: REQUEST_LIMITS.maxCost },
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
    plugins: armor.plugins as ApolloServerPlugin[],
  };
}
