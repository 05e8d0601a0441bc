// Slow consumers: a subscriber that stops reading is disconnected once its unsent bytes
// pass server.slow_client_bytes, the metric counts it, a fast subscriber on the same topic
// receives every event meanwhile, and the cut-off client can resume from history.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, request } from './lib/harness.mjs';
import {
    subscribe, waitEvents, publishOk, uniqueTopic, eventsPath, openStalledStream, getMetrics,
    waitUntil,
} from './lib/util.mjs';

const SLOW_BYTES = 65536;
const EVENT_BYTES = 16 * 1024;
// Kernel socket buffers on loopback absorb a few MB before the hub's own queue grows;
// publish until the hub reports the cut, up to this many events (~48 MB).
const MAX_EVENTS = 3000;

async function statusEntriesOn(base, topic) {
    const r = await request(`${base}/status`);
    assert.equal(r.status, 200, `/status answered ${r.status}`);
    return Object.values(JSON.parse(r.body)).filter((c) => Array.isArray(c.topics) && c.topics.includes(topic));
}

describe('slow consumer', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald({
            env: {
                HERALD_SERVER_SLOW_CLIENT_BYTES: String(SLOW_BYTES),
                HERALD_HISTORY_MAX_EVENTS: '100000',
                HERALD_HISTORY_MAX_BYTES: String(200 * 1024 * 1024),
            },
        });
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('a subscriber that stops reading is cut off and nobody else notices', { timeout: 180000 }, async () => {
        const topic = uniqueTopic('slow');
        const other = uniqueTopic('other');
        const fast = await subscribe(base, [topic]);
        const bystander = await subscribe(base, [other]);
        const slow = openStalledStream(h.port, eventsPath([topic]));
        try {
            await slow.connected;
            await waitUntil(async () => (await statusEntriesOn(base, topic)).length === 2, {
                ms: 5000, what: 'the stalled subscriber to appear in /status',
            });
            const m0 = await getMetrics(base);
            assert.ok(m0.has('herald_slow_consumer_disconnects_total'), 'herald_slow_consumer_disconnects_total is missing');
            const cuts0 = m0.sum('herald_slow_consumer_disconnects_total');

            const payload = 'x'.repeat(EVENT_BYTES);
            const ids = [];
            let cut = false;
            for (let i = 0; i < MAX_EVENTS && !cut; i++) {
                ids.push(await publishOk(base, { topic, data: `${i}:${payload}` }));
                if (i % 25 === 24) {
                    cut = (await getMetrics(base)).sum('herald_slow_consumer_disconnects_total') > cuts0;
                }
            }
            assert.ok(cut, `the stalled subscriber was not cut off after ${ids.length} events of ${EVENT_BYTES} bytes`);
            // A few more after the cut: the hub and the fast subscriber carry on.
            for (let i = ids.length, end = ids.length + 10; i < end; i++) {
                ids.push(await publishOk(base, { topic, data: `${i}:${payload}` }));
            }
            const bystanderId = await publishOk(base, { topic: other, data: 'bystander' });

            // The fast subscriber has every event, in order, complete.
            await waitEvents(fast, ids.length, 60000);
            assert.equal(fast.ended, false, 'the fast subscriber was disconnected');
            assert.equal(fast.events.length, ids.length);
            fast.events.forEach((e, i) => {
                if (e.id !== ids[i] || e.data !== `${i}:${payload}`) {
                    assert.fail(`fast subscriber event ${i}: id ${e.id} (expected ${ids[i]}), data ${e.data.slice(0, 20)}… of ${e.data.length} chars`);
                }
            });
            const [b] = await waitEvents(bystander, 1);
            assert.equal(b.id, bystanderId);

            // Exactly one cut, and the hub no longer lists the slow connection.
            assert.equal((await getMetrics(base)).sum('herald_slow_consumer_disconnects_total'), cuts0 + 1);
            await waitUntil(async () => (await statusEntriesOn(base, topic)).length === 1, {
                ms: 5000, what: 'the cut-off subscriber to leave /status',
            });

            // The slow client, reading at last, finds a closed stream holding a prefix.
            const r = await slow.drain(15000);
            assert.equal(r.closed, true, 'the server did not close the slow consumer\'s connection');
            assert.equal(r.status, 200);
            assert.ok(r.events.length < ids.length, `the slow consumer got all ${ids.length} events`);
            r.events.forEach((e, i) => assert.equal(e.id, ids[i], `slow consumer event ${i} is not event ${i}`));

            // It resumes from history and misses nothing.
            const from = r.events.length ? r.events[r.events.length - 1].id : 'earliest';
            const resumed = await subscribe(base, [topic], { headers: { 'Last-Event-ID': from } });
            try {
                await waitEvents(resumed, ids.length - r.events.length, 60000);
                assert.deepEqual(resumed.events.map((e) => e.id), ids.slice(r.events.length));
                assert.equal(resumed.headers['last-event-id'], from);
            } finally {
                resumed.close();
            }
        } finally {
            slow.destroy();
            fast.close();
            bystander.close();
        }
    });
});
