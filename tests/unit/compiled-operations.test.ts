import { makeExecutableSchema } from '@graphql-tools/schema';
import { getOperationAST, parse } from 'graphql';
import { asPlainRequest, CompiledOperations } from '../../src/http/compiled-operations';

const schema = makeExecutableSchema({
  typeDefs: 'type Query { hello: String } type Mutation { bump: Int } type Subscription { ticks: Int }',
  resolvers: { Query: { hello: () => 'world' } },
});

function accept(operations: CompiledOperations, source: string, operationName?: string) {
  const document = parse(source);
  operations.learn(source, operationName, document, getOperationAST(document, operationName)!);
}

describe('which documents get compiled', () => {
  test('a document is compiled the second time Apollo accepts it, and answers like graphql-js', async () => {
    const operations = new CompiledOperations(schema, 10);
    accept(operations, '{ hello }');
    expect(operations.find('{ hello }', undefined)).toBeUndefined();
    accept(operations, '{ hello }');
    expect(await operations.find('{ hello }', undefined)!.query(undefined, {}, {})).toEqual({ data: { hello: 'world' } });
  });

  test('a client that makes every document new never causes a compilation', () => {
    const operations = new CompiledOperations(schema, 10);
    for (let i = 0; i < 1000; i++) accept(operations, `{ hello } # ${i}`);
    for (let i = 0; i < 1000; i++) expect(operations.find(`{ hello } # ${i}`, undefined)).toBeUndefined();
  });

  test('the text and the operation name together name a document', () => {
    const operations = new CompiledOperations(schema, 10);
    const source = 'query A { hello } query B { hello }';
    accept(operations, source, 'A');
    accept(operations, source, 'A');
    expect(operations.find(source, 'A')).toBeDefined();
    expect(operations.find(source, 'B')).toBeUndefined();
  });

  test('subscriptions, introspection and root fragments stay with Apollo', () => {
    const operations = new CompiledOperations(schema, 10);
    for (const source of ['subscription { ticks }', '{ __schema { queryType { name } } }', '{ ...F } fragment F on Query { hello }']) {
      accept(operations, source);
      accept(operations, source);
      expect(operations.find(source, undefined)).toBeUndefined();
    }
  });

  test('at most the configured number of documents is kept, the least recently used leaving first', () => {
    const operations = new CompiledOperations(schema, 2);
    for (const source of ['{ a: hello }', '{ b: hello }', '{ c: hello }']) {
      accept(operations, source);
      accept(operations, source);
    }
    expect(operations.find('{ a: hello }', undefined)).toBeUndefined();
    expect(operations.find('{ c: hello }', undefined)).toBeDefined();
  });
});

describe('which requests the compiled path may answer', () => {
  test('a plain JSON request, with or without client-library extensions', () => {
    expect(asPlainRequest({ query: '{ hello }' }, undefined)).toEqual({ query: '{ hello }', operationName: undefined, variables: undefined });
    expect(asPlainRequest({ query: '{ hello }', variables: { a: 1 }, operationName: 'Q', extensions: { clientLibrary: {} } }, '*/*')).toEqual({
      query: '{ hello }',
      operationName: 'Q',
      variables: { a: 1 },
    });
  });

  test.each([
    ['a batch', [{ query: '{ hello }' }], undefined],
    ['a persisted query', { query: '{ hello }', extensions: { persistedQuery: { version: 1 } } }, undefined],
    ['variables that are not an object', { query: '{ hello }', variables: [1] }, undefined],
    ['an unknown field', { query: '{ hello }', other: 1 }, undefined],
    ['another media type', { query: '{ hello }' }, 'application/graphql-response+json'],
    ['a body that is not JSON', 'query=%7Bhello%7D', undefined],
  ])('not %s', (_label, body, accept) => {
    expect(asPlainRequest(body, accept)).toBeUndefined();
  });
});
