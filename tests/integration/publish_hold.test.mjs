// Flow control: when the bytes queued to all subscribers pass server.max_queued_bytes, a
// publish waits for them to drain instead of piling more on, and gets 503 if they do not
// drain within the request timeout. Here one subscriber that never reads (with a large
// slow_client_bytes, so it is not cut off) fills the queue.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { publish, sleep, startHerald } from './lib/harness.mjs';
import { getMetrics, openStalledStream, runHerald, subscribe, uniqueTopic, waitEvents, waitUntil } from './lib/util.mjs';

const LIMIT = 256 * 1024;
const EVENT = 'x'.repeat(60 * 1024);

function metric(metrics, name) {
    assert.ok(metrics.has(name), `metric ${name} missing`);
    return metrics.sum(name);
}

// Publishes big events to `topic` until one is not answered within 500 ms; returns that
// pending publish and how many were answered 200 before it.
async function publishUntilHeld(base, topic) {
    for (let i = 0; i < 2000; i++) {
        const p = publish(base, { topic, data: EVENT });
        const settled = await Promise.race([p.then(() => true), sleep(500).then(() => false)]);
        if (!settled) return { pending: p, accepted: i };
        const res = await p;
        assert.equal(res.status, 200, `publish ${i}: ${res.body}`);
    }
    throw new Error('no publish was ever held');
}

describe('publishes wait while the subscribers are behind (server.max_queued_bytes)', () => {
    let hub;
    before(async () => {
        hub = await startHerald({
            env: {
                HERALD_SERVER_MAX_QUEUED_BYTES: String(LIMIT),
                HERALD_SERVER_SLOW_CLIENT_BYTES: String(512 * 1024 * 1024),
                HERALD_SERVER_REQUEST_TIMEOUT_SECONDS: '2',
                HERALD_HISTORY_MAX_EVENTS: '5',
            },
        });
    });
    after(async () => { await hub.stop(); });

    test('held until the stalled subscriber goes away, then accepted and delivered', async () => {
        const topic = uniqueTopic('hold');
        const watcher = await subscribe(hub.url, [topic]);
        const stalled = openStalledStream(hub.port, `/events?topic=${topic}`);
        await stalled.connected;
        await waitUntil(async () => metric(await getMetrics(hub.url), 'herald_subscribers') === 2,
            { what: 'both subscribers registered' });

        const { pending, accepted } = await publishUntilHeld(hub.url, topic);
        const m = await getMetrics(hub.url);
        assert.ok(metric(m, 'herald_queued_bytes') > LIMIT, 'queued bytes above the limit');
        assert.equal(metric(m, 'herald_publish_held_total'), 1);

        // The subscriber that reads got every accepted event; the held one is not out yet.
        await waitEvents(watcher, accepted);
        await sleep(200);
        assert.equal(watcher.events.length, accepted, 'a held event was delivered');

        stalled.destroy(); // its queue goes with it
        const res = await pending;
        assert.equal(res.status, 200, res.body);
        await waitEvents(watcher, accepted + 1);
        assert.equal(watcher.events.length, accepted + 1);
        watcher.close();
    });

    test('a publish held past the request timeout gets 503, and nothing is published', async () => {
        const topic = uniqueTopic('hold503');
        const watcher = await subscribe(hub.url, [topic]);
        const stalled = openStalledStream(hub.port, `/events?topic=${topic}`);
        await stalled.connected;
        const { pending, accepted } = await publishUntilHeld(hub.url, topic);
        const started = Date.now();
        const res = await pending;
        const waited = Date.now() - started;
        assert.equal(res.status, 503, res.body);
        assert.match(JSON.parse(res.body).error, /overloaded/);
        assert.ok(waited >= 1000 && waited < 4000, `answered after ${waited} ms`);
        // A publish behind it waits its turn and meets the same answer (the queue is full).
        const next = await publish(hub.url, { topic, data: 'small' });
        assert.equal(next.status, 503, next.body);

        stalled.destroy();
        const ok = await publish(hub.url, { topic, data: 'after' });
        assert.equal(ok.status, 200, ok.body);
        await waitEvents(watcher, accepted + 1);
        assert.equal(watcher.events.at(-1).data, 'after', 'the refused events were not delivered');
        assert.equal(watcher.events.length, accepted + 1);
        watcher.close();
    });
});

describe('the settings behind flow control', () => {
    test('bad values are refused at start, naming the key', async () => {
        const cases = [
            ['HERALD_SERVER_MAX_QUEUED_BYTES', '-1', 'server.max_queued_bytes'],
            ['HERALD_SERVER_MAX_QUEUED_BYTES', 'lots', 'server.max_queued_bytes'],
            ['HERALD_SERVER_STREAM_SEND_BUFFER_BYTES', 'abc', 'server.stream_send_buffer_bytes'],
            ['HERALD_SERVER_STREAM_SEND_BUFFER_BYTES', String(64 * 1024 * 1024 + 1), 'server.stream_send_buffer_bytes'],
        ];
        for (const [name, value, key] of cases) {
            const r = await runHerald(['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1'],
                { env: { [name]: value } });
            assert.equal(r.code, 2, `${name}=${value}: ${r.output}`);
            assert.ok(r.output.includes(key), `${name}=${value} does not name ${key}: ${r.output}`);
        }
    });

    // The kernel doubles what SO_SNDBUF is given; `ss -m` shows it as tb.
    test('server.stream_send_buffer_bytes is each stream socket\'s send buffer', async () => {
        for (const bytes of [32768, 65536]) {
            const hub = await startHerald({ env: { HERALD_SERVER_STREAM_SEND_BUFFER_BYTES: String(bytes) } });
            try {
                const s = await subscribe(hub.url, [uniqueTopic('sndbuf')]);
                const out = execFileSync('ss', ['-tmnH', 'state', 'established', `( sport = :${hub.port} )`],
                    { encoding: 'utf8' });
                const sizes = [...out.matchAll(/\btb(\d+)/g)].map((m) => Number(m[1]));
                assert.deepEqual(sizes, [2 * bytes], out);
                s.close();
            } finally {
                await hub.stop();
            }
        }
    });
});
