/**
 * A subscription sent as POST /graphql is not executed (contract v2): HTTP 400 with BAD_REQUEST
 * and a message naming the WebSocket endpoint. Refused in Apollo's didResolveOperation, after
 * parsing and validation and before anything runs. The compiled path never answers such a
 * document: it only answers documents Apollo accepted, and it never learns subscriptions.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { OperationTypeNode } from 'graphql';
import { badRequest } from '../errors';

/** A Host header this strict can be echoed in the message. */
const HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

export function subscriptionsOverHttpRefused(path: string): ApolloServerPlugin {
  return {
    requestDidStart: async ({ request }) => ({
      didResolveOperation: async ({ operation }) => {
        if (operation?.operation !== OperationTypeNode.SUBSCRIPTION) return;
        const host = request.http?.headers.get('host');
        const endpoint = host && HOST.test(host) ? `ws://${host}${path} (wss:// behind TLS)` : `the WebSocket endpoint ${path}`;
        throw badRequest(`subscriptions are served over WebSocket only: connect to ${endpoint} with the graphql-transport-ws subprotocol`);
      },
    }),
  };
}
