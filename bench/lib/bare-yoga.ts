/**
 * The baseline of bench/turn-overhead.ts: a bare graphql-yoga server on node:http with one
 * do-nothing mutation, same HTTP and GraphQL stack as the app, none of its work (no auth, no
 * database, no providers). Prints `READY <port>` on stdout once listening on 127.0.0.1.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type Query { ok: Boolean! }
      input NoopInput { sessionId: ID!, content: String!, clientMessageId: String! }
      type NoopPayload { id: ID!, content: String! }
      type Mutation { noop(input: NoopInput!): NoopPayload! }
    `,
    resolvers: {
      Query: { ok: () => true },
      Mutation: {
        noop: (_: unknown, args: { input: { clientMessageId: string; content: string } }) => ({
          id: args.input.clientMessageId,
          content: args.input.content,
        }),
      },
    },
  }),
  graphqlEndpoint: '/graphql',
  landingPage: false,
  graphiql: false,
  logging: false,
});

const server = createServer(yoga);
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`READY ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
