import { makeExecutableSchema } from '@graphql-tools/schema';
import { getOperationAST, parse } from 'graphql';
import { asPlainRequest, CompiledOperations, responseMediaType } from '../../src/http/compiled-operations';

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

const JSON_MEDIA = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_MEDIA = 'application/graphql-response+json; charset=utf-8';

describe('which requests the compiled path may answer', () => {
  test('a plain JSON request, with or without client-library extensions', () => {
    expect(asPlainRequest({ query: '{ hello }' }, undefined)).toEqual({ query: '{ hello }', operationName: undefined, variables: undefined, mediaType: JSON_MEDIA });
    expect(asPlainRequest({ query: '{ hello }', variables: { a: 1 }, operationName: 'Q', extensions: { clientLibrary: {} } }, '*/*')).toEqual({
      query: '{ hello }',
      operationName: 'Q',
      variables: { a: 1 },
      mediaType: JSON_MEDIA,
    });
  });

  test.each([
    ['no accept header', undefined, JSON_MEDIA],
    ['*/*', '*/*', JSON_MEDIA],
    ['JSON', 'application/json', JSON_MEDIA],
    ["urql's and graphql-request's accept", 'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed', GRAPHQL_RESPONSE_MEDIA],
    ['JSON preferred by quality', 'application/graphql-response+json;q=0.5, application/json', JSON_MEDIA],
    ['a media type Apollo refuses (406)', 'text/html', undefined],
    ["Apollo's callback format", 'application/json; callbackSpec=1.0', undefined],
  ])('the answer to %s is typed as Apollo types it', (_label, accept, expected) => {
    expect(responseMediaType(accept)).toBe(expected);
  });

  test.each([
    ['a batch', [{ query: '{ hello }' }], undefined],
    ['a persisted query', { query: '{ hello }', extensions: { persistedQuery: { version: 1 } } }, undefined],
    ['variables that are not an object', { query: '{ hello }', variables: [1] }, undefined],
    ['an unknown field', { query: '{ hello }', other: 1 }, undefined],
    ['a media type Apollo would refuse', { query: '{ hello }' }, 'text/html'],
    ['a body that is not JSON', 'query=%7Bhello%7D', undefined],
  ])('not %s', (_label, body, accept) => {
    expect(asPlainRequest(body, accept)).toBeUndefined();
  });
});
