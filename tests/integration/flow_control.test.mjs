// Flow control: a slow subscriber never slows down the others, and a publisher is held only
// while most of its own topic's subscribers are reading but far behind. A stream is cut when its unsent bytes pass server.slow_client_bytes (over_bound),
// when its writes make no progress for server.write_timeout_seconds while it has unsent
// bytes (stalled), or, furthest behind first, when its worker's streams together pass the
// worker's share of server.max_queued_bytes (overload). The replay of a resume is fed to the
// stream as the client reads, so a client that reads normally can resume a history far
// larger than slow_client_bytes, and clients that never read hold little memory.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { startHerald, openStream } from './lib/harness.mjs';
import {
    subscribe, uniqueTopic, getMetrics, runHerald, waitUntil, withTimeout, requestWith, formBody,
    eventsPath, sleep,
    cmpId,
} from './lib/util.mjs';

const T = { timeout: 90000 };

const reasonSum = (m, reason) => m.sum('herald_slow_consumer_disconnects_by_reason_total', new RegExp(`reason="${reason}"`));

// Publishes `datas` to `topic` from `width` concurrent keep-alive publishers. Every publish
// is bounded by `ms`; the first failure (a non-200, an error, a timeout) stops all of them.
// Returns { ids (in datas order), failures }.
async function publishAll(base, topic, datas, { width = 8, ms = 10000 } = {}) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: width });
    const ids = new Array(datas.length);
    const failures = [];
    let next = 0;
    try {
        await Promise.all(Array.from({ length: width }, async () => {
            while (next < datas.length && failures.length === 0) {
                const i = next++;
                try {
                    const r = await withTimeout(requestWith(`${base}/events`, {
                        agent, method: 'POST',
                        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                        body: formBody({ topic, data: datas[i] }),
                    }), ms, `the answer to publish ${i} on ${topic}`);
                    if (r.status !== 200) failures.push(`publish ${i}: ${r.status} ${r.body.slice(0, 200)}`);
                    else ids[i] = r.body.trim();
                } catch (e) {
                    failures.push(`publish ${i}: ${e.message}`);
                }
            }
        }));
    } finally {
        agent.destroy();
    }
    return { ids, failures };
}

// A raw-TCP subscriber that never reads: the request is written and the socket paused
// before Node reads a byte. drain() starts reading and resolves once the server closed the
// connection (or after `ms`), with { closed, bytes, events (count of `id:` lines) }.
function stalledSubscriber(port, path, headers = {}) {
    const sock = net.connect(port, '127.0.0.1');
    sock.pause();
    let closed = false;
    let error = null;
    const closedP = new Promise((resolve) => sock.on('close', () => { closed = true; resolve(); }));
    sock.on('error', (e) => { error = e; });
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const connected = once(sock, 'connect').then(() => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
    });
    return {
        connected,
        get closed() { return closed; },
        get error() { return error; },
        async drain(ms = 10000) {
            let bytes = 0;
            let ids = 0;
            let head = '';
            let carry = '';
            sock.on('data', (d) => {
                bytes += d.length;
                const s = carry + d.toString('latin1');
                if (head.length < 512) head += s.slice(0, 512);
                const lines = s.split('\n');
                carry = lines.pop();
                for (const l of lines) if (l.startsWith('id:')) ids += 1;
            });
            sock.resume();
            await withTimeout(closedP, ms, 'the hub to close a stalled subscriber').catch(() => {});
            sock.destroy();
            return { closed, bytes, events: ids, head: head.slice(0, 200), error: error?.code };
        },
        destroy() { sock.destroy(); },
    };
}

// Publishes `n` events of `size` bytes to `topic`; returns the ids in id order.
async function buildHistory(base, topic, n, size) {
    const datas = Array.from({ length: n }, (_, i) => `hist-${String(i).padStart(4, '0')}-${'h'.repeat(size)}`);
    const { ids, failures } = await publishAll(base, topic, datas, { width: 8, ms: 15000 });
    assert.deepEqual(failures, [], 'building the history failed');
    return ids.map((id, i) => ({ id, data: datas[i] })).sort((a, b) => cmpId(a.id, b.id));
}

// Opens `count` stalled subscribers resuming `topic` from `earliest`; waits until the hub
// counts them (plus `others` already open).
async function openStalledResumers(hub, topic, count, others) {
    const subs = Array.from({ length: count }, () =>
        stalledSubscriber(hub.port, eventsPath([topic]), { 'Last-Event-ID': 'earliest' }));
    await Promise.all(subs.map((s) => s.connected));
    await waitUntil(async () => (await getMetrics(hub.url)).sum('herald_subscribers') >= count + others,
        { ms: 10000, what: `${count + others} subscribers`, describe: async () => (await getMetrics(hub.url)).sum('herald_subscribers') });
    return subs;
}

// Waits until `s` has `n` events (or ended), bounded.
async function waitCount(s, n, ms, what) {
    await s.waitFor(n, ms, () => s.events.length >= n || s.ended).catch(() => {});
    assert.ok(s.events.length >= n, `${what}: ${s.events.length} of ${n} events within ${ms} ms (ended=${s.ended})`);
}

const HISTORY_EVENTS = 480;
const HISTORY_EVENT_BYTES = 10000;
const HISTORY_ENV = {
    HERALD_HISTORY_MAX_BYTES: String(64 * 1024 * 1024),
    HERALD_HISTORY_MAX_EVENTS: '100000',
};

describe('20 clients resuming 4.8 MB without reading (the reported attack)', () => {
    let hub;
    let history;
    const H = uniqueTopic('attack-history');
    let stalled = [];
    before(async () => {
        hub = await startHerald({ env: { ...HISTORY_ENV } });
        history = await buildHistory(hub.url, H, HISTORY_EVENTS, HISTORY_EVENT_BYTES);
    });
    after(async () => {
        for (const s of stalled) s.destroy();
        const code = await hub.stop();
        assert.equal(code, 0, `herald exited with ${code}:\n${hub.output().slice(-2000)}`);
    });

    test('publishes on other topics are all answered 200 and delivered in order', T, async () => {
        const O = uniqueTopic('attack-live');
        const reader = await subscribe(hub.url, [O]);
        try {
            stalled = await openStalledResumers(hub, H, 20, 1);
            await sleep(300); // let the replays fill whatever they fill
            const datas = Array.from({ length: 200 }, (_, i) => `live-${String(i).padStart(3, '0')}`);
            const { ids, failures } = await publishAll(hub.url, O, datas, { width: 8, ms: 10000 });
            assert.deepEqual(failures, [], 'a publish was not answered 200 while 20 clients sat on their replays');
            await waitCount(reader, 200, 15000, 'the reading subscriber');
            await sleep(200);
            const want = ids.map((id, i) => ({ id, data: datas[i] })).sort((a, b) => cmpId(a.id, b.id));
            assert.deepEqual(reader.events.map((e) => ({ id: e.id, data: e.data })), want,
                'the reading subscriber did not get the 200 events exactly once each, in id order');
            assert.equal(reader.ended, false, 'the reading subscriber was cut');
            // The non-reading resumers hold at most their share of the replay: none is over
            // the bound, and none has waited 30 s yet.
            const m = await getMetrics(hub.url);
            // Each replay is fed 64 KiB at a time as its client reads: 20 clients that
            // never read hold about 20 x 64 KiB, not 20 x 4.8 MB.
            const cap = 20 * (64 * 1024 + 2 * (HISTORY_EVENT_BYTES + 100));
            assert.ok(m.has('herald_queued_bytes') && m.sum('herald_queued_bytes') <= cap,
                `herald_queued_bytes is ${m.sum('herald_queued_bytes')} with 20 non-reading resumers (at most ${cap} expected)`);
            assert.equal(m.sum('herald_slow_consumer_disconnects_total'), 0,
                `streams were cut: ${m.text.split('\n').filter((l) => l.startsWith('herald_slow_consumer')).join('; ')}`);
        } finally {
            reader.close();
        }
    });

    test('a client that reads resumes the whole 4.8 MB history (slow_client_bytes 1 MiB), in order, not cut', T, async () => {
        const before = await getMetrics(hub.url);
        const s = await openStream(hub.url, eventsPath([H]), { headers: { 'Last-Event-ID': 'earliest' } });
        try {
            assert.equal(s.status, 200);
            await waitCount(s, HISTORY_EVENTS, 30000, 'the resuming reader');
            await sleep(200);
            assert.equal(s.ended, false, 'the resuming reader was cut');
            assert.equal(s.events.length, HISTORY_EVENTS, `${s.events.length} events, ${HISTORY_EVENTS} were retained`);
            const bad = s.events.findIndex((e, i) => e.id !== history[i].id || e.data !== history[i].data);
            assert.equal(bad, -1, `event ${bad} is ${s.events[bad]?.id}, expected ${history[bad]?.id}`);
            const m = await getMetrics(hub.url);
            assert.equal(m.sum('herald_slow_consumer_disconnects_total') - before.sum('herald_slow_consumer_disconnects_total'), 0,
                'a stream was cut during the resume');
        } finally {
            s.close();
        }
    });
});

describe('server.write_timeout_seconds cuts streams that make no progress', () => {
    let hub;
    const H = uniqueTopic('stall-history');
    before(async () => {
        hub = await startHerald({ env: { ...HISTORY_ENV, HERALD_SERVER_WRITE_TIMEOUT_SECONDS: '2' } });
        await buildHistory(hub.url, H, HISTORY_EVENTS, HISTORY_EVENT_BYTES);
    });
    after(async () => {
        const code = await hub.stop();
        assert.equal(code, 0, `herald exited with ${code}:\n${hub.output().slice(-2000)}`);
    });

    test('20 stalled resumers are closed by the hub, counted as stalled; a reader stays open', T, async () => {
        const O = uniqueTopic('stall-live');
        const reader = await subscribe(hub.url, [O]);
        const stalled = await openStalledResumers(hub, H, 20, 1);
        try {
            const datas = Array.from({ length: 200 }, (_, i) => `live-${i}`);
            const { failures } = await publishAll(hub.url, O, datas, { width: 8, ms: 10000 });
            assert.deepEqual(failures, [], 'a publish was not answered 200');
            await waitUntil(async () => reasonSum(await getMetrics(hub.url), 'stalled') >= 20, {
                ms: 15000, every: 200, what: '20 streams counted as stalled',
                describe: async () => (await getMetrics(hub.url)).text.split('\n').filter((l) => /^herald_(slow|subscribers)/.test(l)).join('; '),
            });
            const drained = await Promise.all(stalled.map((s) => s.drain(5000)));
            drained.forEach((d, i) => assert.equal(d.closed, true,
                `stalled resumer ${i} still open 5 s after the hub counted it as cut (${d.bytes} bytes read)`));
            const m = await getMetrics(hub.url);
            assert.equal(reasonSum(m, 'stalled'), 20, 'stalled count');
            assert.equal(reasonSum(m, 'over_bound'), 0, 'over_bound count');
            assert.equal(reasonSum(m, 'overload'), 0, 'overload count');
            assert.equal(m.sum('herald_slow_consumer_disconnects_total'), 20, 'total slow-consumer disconnects');
            // The reader, idle with nothing unsent, is not cut, and still receives.
            await waitCount(reader, 200, 10000, 'the reader');
            assert.equal(reader.ended, false, 'the reading subscriber was closed');
            const { ids, failures: f2 } = await publishAll(hub.url, O, ['after the cut'], { width: 1 });
            assert.deepEqual(f2, []);
            await waitCount(reader, 201, 5000, 'the reader after the cut');
            assert.equal(reader.events.at(-1).id, ids[0]);
            assert.equal(reader.ended, false, 'the reading subscriber was closed');
        } finally {
            reader.close();
            for (const s of stalled) s.destroy();
        }
    });
});

describe('over_bound: unsent bytes past server.slow_client_bytes', () => {
    let hub;
    before(async () => {
        hub = await startHerald({ env: { HERALD_SERVER_SLOW_CLIENT_BYTES: String(256 * 1024) } });
    });
    after(async () => {
        const code = await hub.stop();
        assert.equal(code, 0, `herald exited with ${code}:\n${hub.output().slice(-2000)}`);
    });

    test('a live subscriber that never reads is cut; a reader gets all 100 events', T, async () => {
        const L = uniqueTopic('bound');
        const reader = await subscribe(hub.url, [L]);
        const slow = stalledSubscriber(hub.port, eventsPath([L]));
        try {
            await slow.connected;
            await waitUntil(async () => (await getMetrics(hub.url)).sum('herald_subscribers') >= 2,
                { what: 'both subscribers registered' });
            const datas = Array.from({ length: 100 }, (_, i) => `big-${String(i).padStart(3, '0')}-${'b'.repeat(20000)}`);
            const { ids, failures } = await publishAll(hub.url, L, datas, { width: 4 });
            assert.deepEqual(failures, [], 'a publish was not answered 200');
            await waitCount(reader, 100, 15000, 'the reader');
            const want = ids.map((id, i) => ({ id, data: datas[i] })).sort((a, b) => cmpId(a.id, b.id));
            assert.deepEqual(reader.events.map((e) => e.id), want.map((w) => w.id), 'the reader\'s events');
            assert.equal(reader.ended, false, 'the reader was cut');
            await waitUntil(async () => reasonSum(await getMetrics(hub.url), 'over_bound') >= 1,
                { ms: 10000, what: 'herald_slow_consumer_disconnects_by_reason_total{reason="over_bound"} to reach 1' });
            const d = await slow.drain(5000);
            assert.equal(d.closed, true, `the slow subscriber was counted as cut but is still open (${d.bytes} bytes read)`);
            assert.ok(d.events < 100, `the slow subscriber got all ${d.events} events: it was never behind`);
            const m = await getMetrics(hub.url);
            assert.equal(reasonSum(m, 'over_bound'), 1, 'over_bound count');
            assert.equal(m.sum('herald_slow_consumer_disconnects_total'), 1, 'total slow-consumer disconnects');
        } finally {
            reader.close();
            slow.destroy();
        }
    });
});

describe('overload: the streams of a worker together past its share of server.max_queued_bytes', () => {
    const BUDGET = 2 * 1024 * 1024;
    let hub;
    before(async () => {
        hub = await startHerald({
            threads: 2,
            env: {
                HERALD_SERVER_MAX_QUEUED_BYTES: String(BUDGET),
                HERALD_SERVER_SLOW_CLIENT_BYTES: String(8 * 1024 * 1024),
            },
        });
    });
    after(async () => {
        const code = await hub.stop();
        assert.equal(code, 0, `herald exited with ${code}:\n${hub.output().slice(-2000)}`);
    });

    test('publishes are all accepted, stalled streams are cut as overload, the queue ends within budget', T, async () => {
        const D = uniqueTopic('overload');
        const reader = await subscribe(hub.url, [D]);
        const slow = Array.from({ length: 10 }, () => stalledSubscriber(hub.port, eventsPath([D])));
        try {
            await Promise.all(slow.map((s) => s.connected));
            await waitUntil(async () => (await getMetrics(hub.url)).sum('herald_subscribers') >= 11,
                { what: '11 subscribers registered' });
            const datas = Array.from({ length: 60 }, (_, i) => `ov-${String(i).padStart(2, '0')}-${'o'.repeat(50000)}`);
            const { ids, failures } = await publishAll(hub.url, D, datas, { width: 4 });
            assert.deepEqual(failures, [], 'a publish was not answered 200 (publishers must never be held)');
            await waitCount(reader, 60, 15000, 'the reader');
            const want = ids.map((id, i) => ({ id, data: datas[i] })).sort((a, b) => cmpId(a.id, b.id));
            assert.deepEqual(reader.events.map((e) => e.id), want.map((w) => w.id), 'the reader\'s events');
            assert.equal(reader.ended, false, 'the reader was cut');
            const queued = await waitUntil(async () => {
                const m = await getMetrics(hub.url);
                return m.has('herald_queued_bytes') && m.sum('herald_queued_bytes') <= BUDGET ? m : null;
            }, {
                ms: 10000, every: 100, what: `herald_queued_bytes at or below ${BUDGET}`,
                describe: async () => (await getMetrics(hub.url)).text.split('\n').filter((l) => /^herald_(queued|slow)/.test(l)).join('; '),
            });
            const overload = reasonSum(queued, 'overload');
            assert.ok(overload >= 1, `no stream was cut for overload: ${queued.text.split('\n').filter((l) => l.startsWith('herald_slow')).join('; ')}`);
            assert.equal(reasonSum(queued, 'over_bound'), 0, 'a stream was cut over_bound (slow_client_bytes is 8 MiB)');
            assert.equal(reasonSum(queued, 'stalled'), 0, 'a stream was cut as stalled');
            assert.equal(queued.sum('herald_slow_consumer_disconnects_total'), overload, 'total vs overload');
            // The cut ones are really closed.
            const drained = await Promise.all(slow.map((s) => s.drain(3000)));
            const closedCount = drained.filter((d) => d.closed).length;
            assert.ok(closedCount >= overload, `${overload} counted as cut for overload, ${closedCount} closed`);
        } finally {
            reader.close();
            for (const s of slow) s.destroy();
        }
    });
});

// A subscriber that reads, slowly: `chunk` bytes every `everyMs`. Counts the events it got.
function slowReader(port, path, { chunk = 16384, everyMs = 20 } = {}) {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let ids = [];
    let carry = '';
    let closed = false;
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    sock.pause();
    const connected = once(sock, 'connect').then(() => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    const timer = setInterval(() => {
        for (let d = sock.read(chunk); d !== null; d = null) {
            const text = carry + d.toString('latin1');
            const lines = text.split('\n');
            carry = lines.pop();
            for (const l of lines) if (l.startsWith('id: ')) ids.push(l.slice(4));
        }
    }, everyMs);
    return {
        connected,
        get ids() { return ids; },
        get closed() { return closed; },
        destroy() { clearInterval(timer); sock.destroy(); },
    };
}

describe('a publisher waits while most of its own topic\'s subscribers are behind', () => {
    let hub;
    before(async () => {
        hub = await startHerald({
            threads: 1,
            env: {
                HERALD_SERVER_MAX_QUEUED_BYTES: String(4 * 1024 * 1024),
                HERALD_SERVER_SLOW_CLIENT_BYTES: String(64 * 1024 * 1024),
                HERALD_SERVER_STREAM_SEND_BUFFER_BYTES: String(16 * 1024),
                HERALD_SERVER_REQUEST_TIMEOUT_SECONDS: '60',
            },
        });
    });
    after(async () => {
        const code = await hub.stop();
        assert.equal(code, 0, `herald exited with ${code}:\n${hub.output().slice(-2000)}`);
    });

    test('three slow readers hold their topic\'s publishers, lose nothing and are never cut; another topic is not held', T, async () => {
        const S = uniqueTopic('held');
        const O = uniqueTopic('free');
        const readers = Array.from({ length: 3 }, () => slowReader(hub.port, eventsPath([S])));
        const other = await subscribe(hub.url, [O]);
        try {
            await Promise.all(readers.map((r) => r.connected));
            await waitUntil(async () => (await getMetrics(hub.url)).sum('herald_subscribers') >= 4,
                { what: '4 subscribers registered' });
            const before = await getMetrics(hub.url);
            // 120 events of 40 KB as fast as 4 publishers go: far faster than the readers read.
            const datas = Array.from({ length: 120 }, (_, i) => `held-${String(i).padStart(3, '0')}-${'h'.repeat(40000)}`);
            const publishing = publishAll(hub.url, S, datas, { width: 4, ms: 60000 });
            // Meanwhile a publish to another topic goes straight through.
            await waitUntil(async () => (await getMetrics(hub.url)).sum('herald_publish_held_total') >
                before.sum('herald_publish_held_total'), { ms: 20000, what: 'a publish on the slow topic to be held' });
            const free = await publishAll(hub.url, O, ['not held'], { width: 1, ms: 5000 });
            assert.deepEqual(free.failures, [], 'a publish to another topic waited');
            const { ids, failures } = await publishing;
            assert.deepEqual(failures, [], 'a publish to the held topic was not answered 200');
            const want = ids.slice().sort(cmpId);
            for (const [i, r] of readers.entries()) {
                await waitUntil(() => r.ids.length >= 120 || r.closed, { ms: 60000, every: 50, what: `reader ${i} to get 120 events` });
                assert.deepEqual(r.ids, want, `reader ${i}: every event once, in order`);
                assert.equal(r.closed, false, `reader ${i} was cut`);
            }
            const m = await getMetrics(hub.url);
            assert.equal(m.sum('herald_slow_consumer_disconnects_total') - before.sum('herald_slow_consumer_disconnects_total'), 0,
                'a reader was cut although the publishers could wait for it');
            await waitCount(other, 1, 5000, 'the other topic\'s subscriber');
        } finally {
            for (const r of readers) r.destroy();
            other.close();
        }
    });
});

describe('the settings behind flow control', () => {
    test('bad values are refused at start with exit code 2, naming the key', T, async () => {
        const cases = [
            ['HERALD_SERVER_WRITE_TIMEOUT_SECONDS', '0', 'server.write_timeout_seconds'],
            ['HERALD_SERVER_WRITE_TIMEOUT_SECONDS', 'abc', 'server.write_timeout_seconds'],
            ['HERALD_SERVER_MAX_QUEUED_BYTES', '-1', 'server.max_queued_bytes'],
            ['HERALD_SERVER_MAX_QUEUED_BYTES', 'lots', 'server.max_queued_bytes'],
            ['HERALD_SERVER_SLOW_CLIENT_BYTES', 'abc', 'server.slow_client_bytes'],
            ['HERALD_SERVER_STREAM_SEND_BUFFER_BYTES', 'abc', 'server.stream_send_buffer_bytes'],
        ];
        const results = await Promise.all(cases.map(([name, value]) =>
            runHerald(['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1'], { env: { [name]: value }, ms: 5000 })));
        results.forEach((r, i) => {
            const [name, value, key] = cases[i];
            assert.equal(r.timedOut, false, `${name}=${value}: herald did not exit (it should refuse to start):\n${r.output.slice(-500)}`);
            assert.equal(r.code, 2, `${name}=${value}: exit ${r.code}: ${r.output}`);
            assert.ok(r.output.includes(key), `${name}=${value} does not name ${key}: ${r.output}`);
            assert.ok(!/listening on/.test(r.output), `${name}=${value}: herald listened before refusing`);
        });
        // And the valid ones start.
        for (const [name, value] of [['HERALD_SERVER_WRITE_TIMEOUT_SECONDS', '1'], ['HERALD_SERVER_WRITE_TIMEOUT_SECONDS', '3600']]) {
            const hub = await startHerald({ threads: 1, env: { [name]: value } });
            const code = await hub.stop();
            assert.equal(code, 0, `${name}=${value}: exit ${code}`);
        }
    });
});
