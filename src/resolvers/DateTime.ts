/**
 * DateTime: ISO-8601 with a time zone on input, always UTC on output. Written here rather than
 * taken from graphql-scalars so that bad input fails as the contract's BAD_USER_INPUT.
 */
import { GraphQLScalarType, Kind } from 'graphql';
import { badUserInput } from '../errors';

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || !ISO_WITH_ZONE.test(value)) {
    throw badUserInput('DateTime must be an ISO-8601 string with a time zone, e.g. 2026-11-25T10:00:00Z');
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw badUserInput(`DateTime ${JSON.stringify(value)} is not a real date`);
  return date;
}

export const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'ISO-8601 date-time string in UTC.',
  serialize: (value) => {
    if (value instanceof Date) return value.toISOString();
    throw new TypeError('DateTime can only serialize Date values');
  },
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});
