// herald driven by the SSE client libraries its users pick in Node: eventsource,
// eventsource-client, extended-eventsource, @microsoft/fetch-event-source (with the two
// globals it needs outside a page) and eventsource-parser over Node's fetch (with the
// reconnecting loop a user writes around it). The cases are in lib/client_cases.mjs; what
// the tests observed is written up in docs/clients.md.
import { NODE_CLIENTS, nodeBinding } from './lib/clients.mjs';
import { defineClientSuites } from './lib/client_cases.mjs';

defineClientSuites(NODE_CLIENTS, {
    async start() {},
    async stop() {},
    hubArgs: () => [],
    bind: async () => nodeBinding(),
});
