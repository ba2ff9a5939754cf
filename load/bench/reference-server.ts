/**
 * The benchmark's yardstick: Apollo Server with the service's own schema, answering
 * claimCoupon with a constant and doing nothing else (no token check, no Redis, no MongoDB),
 * served by the same plain Node http handler as the service (src/http/graphql-handler.ts).
 * What it costs is the floor any claim pays for GraphQL over HTTP on this machine.
 *
 * Started by load/bench/run.ts as a child process; prints `REFERENCE_PORT=<port>` when ready.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLContext, Services } from '../../src/context';
import { createGraphQLHandler, receiveBody } from '../../src/http/graphql-handler';
import { DateTime } from '../../src/resolvers/DateTime';
import { typeDefs } from '../../src/schema';

const CONSTANT_RESULT = {
  status: 'ISSUED',
  remaining: 41,
  issuance: { id: '650000000000000000000001', couponId: '650000000000000000000000', userId: 'reference', sequence: 1, issuedAt: new Date(0) },
};

async function main(): Promise<void> {
  const schema = makeExecutableSchema<GraphQLContext>({
    typeDefs,
    resolvers: { DateTime, Mutation: { claimCoupon: () => CONSTANT_RESULT } },
  });
  const httpServer = http.createServer();
  const apollo = new ApolloServer<GraphQLContext>({ schema, csrfPrevention: true, includeStacktraceInErrorResponses: false });
  await apollo.start();
  // The resolver reads nothing from the context; it only has to have the service's shape.
  const context = (): GraphQLContext => ({ services: {} as Services, clientIp: '127.0.0.1', requestId: 'reference', releaseSlot: undefined });
  const graphql = createGraphQLHandler({ apollo, context });
  // The body is read as the service reads it, under the same size limit and deadline.
  const answer = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const raw = await receiveBody(req, res, { maxBytes: 64 * 1024, timeoutMs: 1500 });
    if (raw !== undefined) await graphql(req, res, raw, '', 2800);
  };
  httpServer.on('request', (req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`REFERENCE_PORT=${(httpServer.address() as AddressInfo).port}\n`);
  process.once('SIGTERM', () => {
    httpServer.close();
    void apollo.stop().then(() => process.exit(0));
  });
}

void main();
