// A real client: the `eventsource` npm package (the WHATWG EventSource for Node). It
// receives messages, typed events and multi-line data; when the hub goes away and a new one
// comes up on the same port, it reconnects by itself (after the `retry:` the hub sent)
// with Last-Event-ID, and the new hub's events reach it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource, openEventSource } from './lib/eventsource.mjs';
import { startHerald } from './lib/harness.mjs';
import { publishOk, uniqueTopic, waitUntil, withTimeout, spawnHerald } from './lib/util.mjs';

const T = { timeout: 60000 };
const RETRY_MS = '200';

describe('eventsource client', () => {
    let h1;
    let h2;
    let port;
    let client;
    const topic = uniqueTopic('es');
    const firstIds = [];
    const secondIds = [];
    before(async () => {
        h1 = await startHerald({ env: { HERALD_SERVER_RETRY_MS: RETRY_MS } });
        port = h1.port;
    });
    after(async () => {
        client?.es.close();
        if (h1) await h1.stop('SIGKILL').catch(() => {});
        if (h2) {
            const code = await h2.stop('SIGTERM');
            assert.equal(code, 0, `the second herald exited with ${code}:\n${h2.output().slice(-2000)}`);
        }
    });

    test('receives messages, typed events and multi-line data', T, async () => {
        client = openEventSource(`${h1.url}/events?topic=${encodeURIComponent(topic)}`, ['greeting']);
        await waitUntil(() => client.opens === 1, { ms: 10000, what: 'the EventSource to open' });
        assert.equal(client.es.readyState, EventSource.OPEN);
        firstIds.push(await publishOk(h1.url, { topic, data: 'one' }));
        firstIds.push(await publishOk(h1.url, { topic, data: 'hi', event: 'greeting' }));
        firstIds.push(await publishOk(h1.url, { topic, data: 'two\nlines\r\nthree' }));
        firstIds.push(await publishOk(h1.url, { topic, data: 'ho', type: 'greeting' }));
        firstIds.push(await publishOk(h1.url, { topic, data: 'not listened to', event: 'other' }));
        firstIds.push(await publishOk(h1.url, { topic, data: { json: [1, 2] } }, { json: true }));
        await waitUntil(() => client.messages.length >= 3 && client.typed.length >= 2, {
            ms: 10000, what: '3 messages and 2 greetings', describe: () => JSON.stringify([client.messages, client.typed]),
        });
        assert.deepEqual(client.messages, [
            { data: 'one', lastEventId: firstIds[0] },
            { data: 'two\nlines\nthree', lastEventId: firstIds[2] },
            { data: '{"json":[1,2]}', lastEventId: firstIds[5] },
        ]);
        assert.deepEqual(client.typed, [
            { type: 'greeting', data: 'hi', lastEventId: firstIds[1] },
            { type: 'greeting', data: 'ho', lastEventId: firstIds[3] },
        ]);
        assert.equal(client.requests.length, 1);
        assert.equal(client.requests[0].status, 200);
    });

    test('reconnects by itself with Last-Event-ID when the hub comes back', T, async () => {
        assert.ok(client, 'the first test did not open the client');
        const errorsBefore = client.errors;
        const code = await withTimeout(h1.stop('SIGTERM'), 10000, 'the first herald to exit');
        assert.equal(code, 0, `the first herald exited with ${code}:\n${h1.output().slice(-2000)}`);
        await waitUntil(() => client.errors > errorsBefore, { ms: 10000, what: 'the EventSource to notice the hub left' });
        assert.notEqual(client.es.readyState, EventSource.CLOSED, 'the EventSource gave up instead of reconnecting');

        // A new hub on the same port (the client keeps retrying every retry_ms meanwhile).
        h2 = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', String(port), '--threads', '2'],
            { env: { HERALD_SERVER_RETRY_MS: RETRY_MS } });
        assert.equal(h2.port, port);
        await waitUntil(() => client.opens === 2, { ms: 15000, what: 'the EventSource to reconnect to the new hub' });
        const ok = client.requests.filter((r) => r.status === 200);
        assert.equal(ok.length, 2);
        const resumed = ok[1];
        assert.equal(resumed.headers['Last-Event-ID'], firstIds[firstIds.length - 1],
            `the reconnect carried ${JSON.stringify(resumed.headers)}`);
        // The new hub does not know that id: it says the replay starts at `earliest`.
        assert.equal(resumed.lastEventId, 'earliest');

        const m0 = client.messages.length;
        const t0 = client.typed.length;
        secondIds.push(await publishOk(h2.url, { topic, data: 'after the restart' }));
        secondIds.push(await publishOk(h2.url, { topic, data: 'hey', event: 'greeting' }));
        await waitUntil(() => client.messages.length > m0 && client.typed.length > t0, {
            ms: 10000, what: 'events from the new hub', describe: () => JSON.stringify([client.messages, client.typed]),
        });
        assert.deepEqual(client.messages.slice(m0), [{ data: 'after the restart', lastEventId: secondIds[0] }]);
        assert.deepEqual(client.typed.slice(t0), [{ type: 'greeting', data: 'hey', lastEventId: secondIds[1] }]);
        assert.equal(client.opens, 2);
    });

    test('ids are not reused after a restart', T, async () => {
        assert.ok(firstIds.length && secondIds.length, 'the earlier tests did not publish');
        for (const id of secondIds) assert.ok(!firstIds.includes(id), `id ${id} was given out again after the restart`);
    });

    test('?lastEventID=earliest replays for a fresh EventSource', T, async () => {
        assert.ok(h2, 'the second hub did not start');
        const fresh = openEventSource(`${h2.url}/events?topic=${encodeURIComponent(topic)}&lastEventID=earliest`, ['greeting']);
        try {
            await waitUntil(() => fresh.messages.length >= 1 && fresh.typed.length >= 1, {
                ms: 10000, what: 'the replay', describe: () => JSON.stringify([fresh.messages, fresh.typed]),
            });
            assert.deepEqual(fresh.messages, [{ data: 'after the restart', lastEventId: secondIds[0] }]);
            assert.deepEqual(fresh.typed, [{ type: 'greeting', data: 'hey', lastEventId: secondIds[1] }]);
            assert.equal(fresh.requests[0].lastEventId, 'earliest');
        } finally {
            fresh.es.close();
        }
    });
});
