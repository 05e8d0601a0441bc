// The durable store (`--store sqlite:PATH`) against the real binary: nothing that got a 200
// is lost when the process is killed (sync full and normal), ids keep increasing across
// restarts and a publisher's own id stays taken, retention (max_events, max_bytes,
// max_age_seconds, and a smaller cap after a restart), a real EventSource that resumes
// across restarts with no gap and no duplicate, and replays that give the same answer
// whether they are served from the in-memory cache or read back from the database.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { publish, request } from './lib/harness.mjs';
import {
    assertJsonError, publishOk, subscribe, uniqueTopic, waitEvents, waitUntil, withTimeout, sleep, getMetrics,
} from './lib/util.mjs';
import {
    assertIncreasing, assertSameSequence, freePort, keepAlivePublisher, numericId, readUpToSentinel, stopClean, topicInfo, waitRetained, cleanupScope,
} from './lib/store.mjs';

const T = { timeout: 60000 };

const { cleanup, tempDir, start } = cleanupScope();

// Publishes `n` events `${prefix}${i}` (i from 1) to `topic`; returns their ids.
async function publishN(base, topic, n, prefix = 'e') {
    const ids = [];
    for (let i = 1; i <= n; i++) ids.push(await publishOk(base, { topic, data: `${prefix}${i}` }));
    return ids;
}

// Resumes `topics` from `from` and returns the replay as [[id, data]...] (what precedes a
// marker published on a topic of its own), with the response's Last-Event-ID header.
async function replayPairs(base, topics, from) {
    const r = await readUpToSentinel(base, topics, { from, sentinel: `mark-${uniqueTopic('m')}` });
    return { header: r.header, pairs: r.events.map((e) => [e.id, e.data]), sentinel: r.sentinel };
}

// ---------------------------------------------------------------------------------------

describe('sqlite: a 200 survives kill -9', () => {
    const PUBLISHERS = 8;

    async function crashScenario(sync) {
        const dir = tempDir(`herald-crash-${sync}-`);
        // The folder of the database does not exist yet: the hub creates it.
        const db = path.join(dir, 'not', 'yet', 'herald.db');
        const env = {
            HERALD_STORE_SYNC: sync,
            HERALD_HISTORY_MAX_EVENTS: '1000000',
            HERALD_HISTORY_MAX_BYTES: '1000000000',
            HERALD_STORE_CACHE_EVENTS: '64',
        };
        const h1 = await start(db, { env });
        assert.ok(fs.existsSync(db), `${db} does not exist after the hub started`);

        const a = uniqueTopic(`crash-${sync}-a`);
        const b = uniqueTopic(`crash-${sync}-b`);
        const topicsOf = (p, i) => (i % 10 === 9 ? [a, b] : [(p + i) % 2 ? a : b]);
        const dataOf = (p, i) => `p${p}-${String(i).padStart(6, '0')}`;

        let killedAt = 0;
        const state = Array.from({ length: PUBLISHERS }, () => ({ acked: [], inflight: null, problems: [] }));
        const publishers = [];
        const loops = state.map(async (st, p) => {
            const pub = keepAlivePublisher(h1.url);
            publishers.push(pub);
            for (let i = 0; ; i++) {
                st.inflight = i;
                let res;
                try {
                    res = await pub.post({ topic: topicsOf(p, i), data: dataOf(p, i) });
                } catch (e) {
                    if (!killedAt) st.problems.push(`event ${i} failed before the kill: ${e.message}`);
                    return;
                }
                if (res.status !== 200) {
                    st.problems.push(`event ${i} answered ${res.status} ${res.body}`);
                    return;
                }
                st.acked.push({ i, id: res.id });
                st.inflight = null;
            }
        });
        const total = () => state.reduce((n, st) => n + st.acked.length, 0);
        const t0 = Date.now();
        await waitUntil(() => (Date.now() - t0 >= 1500 && total() >= 3000) || Date.now() - t0 >= 5000 ||
            state.some((st) => st.problems.length), { ms: 10000, every: 10, what: 'publishers to make progress' });
        for (const st of state) assert.deepEqual(st.problems, [], `a publisher failed before the kill:\n${h1.output().slice(-2000)}`);
        const inflightAtKill = state.filter((st) => st.inflight !== null).length;
        killedAt = Date.now();
        h1.proc.kill('SIGKILL');
        const sig = await withTimeout(h1.stop('SIGKILL'), 10000, 'the killed herald to go away');
        assert.equal(sig, 'SIGKILL');
        await withTimeout(Promise.all(loops), 15000, 'the publishers to notice the hub is gone');
        for (const pub of publishers) pub.close();
        for (const st of state) assert.deepEqual(st.problems, []);
        const acked = total();
        console.log(`# sync=${sync}: ${acked} publishes answered 200 in ${killedAt - t0} ms; ${inflightAtKill} in flight at the kill`);
        assert.ok(acked >= 300, `only ${acked} publishes got a 200 before the kill: too few to mean anything`);
        assert.ok(inflightAtKill > 0, 'no publish was in flight when the hub was killed');

        // Same file, new process: everything is there, once, in order.
        const h2 = await start(db, { env });
        const r = await readUpToSentinel(h2.url, [a, b], { sentinelTopic: b, sentinel: 'after-the-crash' });
        assert.equal(r.header, 'earliest');
        const seen = new Map(); // data -> id
        const perPublisher = Array.from({ length: PUBLISHERS }, () => []);
        for (const e of r.events) {
            const m = /^p(\d+)-(\d{6})$/.exec(e.data);
            assert.ok(m, `an event nobody published came back: ${JSON.stringify(e)}`);
            assert.ok(!seen.has(e.data), `${e.data} came back twice (ids ${seen.get(e.data)} and ${e.id})`);
            seen.set(e.data, e.id);
            perPublisher[Number(m[1])].push(Number(m[2]));
        }
        const ids = r.events.map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length, 'an id appears twice in the replay');
        assertIncreasing(ids, 'replayed ids');
        for (let p = 0; p < PUBLISHERS; p++) {
            const st = state[p];
            const got = perPublisher[p];
            // Each publisher waits for its answer before the next event: what is back must be
            // its first k events, k = the 200s it got, plus possibly the one in flight.
            const n = st.acked.length;
            const expectAcked = Array.from({ length: n }, (_, i) => i);
            const expectWithInflight = st.inflight !== null ? [...expectAcked, n] : expectAcked;
            if (got.length !== n || got.some((v, i) => v !== i)) {
                assertSameSequence(got, expectWithInflight, `publisher ${p} (${n} got a 200, in flight: ${st.inflight})`);
            }
            for (const { i, id } of st.acked) {
                const data = dataOf(p, i);
                assert.equal(seen.get(data), id, `${data} answered ${id} but came back with id ${seen.get(data)}`);
            }
        }
        const before = [...state.flatMap((st) => st.acked.map((x) => x.id)), ...ids].map((id) => numericId(id));
        const max = before.reduce((m, v) => (v > m ? v : m), 0n);
        assert.ok(numericId(r.sentinel.id) > max, `the first id after the restart (${r.sentinel.id}) is not above ${max}`);
        await stopClean(h2, 'the restarted herald');
    }

    test('sync=full: every acknowledged event is back exactly once, in order', T, async () => {
        await crashScenario('full');
    });

    test('sync=normal: a process crash loses nothing either', T, async () => {
        await crashScenario('normal');
    });
});

// ---------------------------------------------------------------------------------------

describe('sqlite: restarts', () => {
    for (const sync of ['full', 'normal']) {
        test(`sync=${sync}: ids keep increasing across SIGTERM; an own id stays taken`, T, async () => {
            const dir = tempDir('herald-restart-');
            const db = path.join(dir, 'herald.db');
            const env = { HERALD_STORE_SYNC: sync };
            const topic = uniqueTopic('restart');
            const own = `own-${uniqueTopic('id')}`;

            const h1 = await start(db, { env });
            const first = await publishN(h1.url, topic, 4, 'before');
            assert.equal(await publishOk(h1.url, { topic, data: 'mine', id: own }), own);
            first.push(await publishOk(h1.url, { topic, data: 'before5' }));
            assertIncreasing(first, 'ids before the restart');
            await stopClean(h1, 'the first herald');

            const h2 = await start(db, { env });
            const dup = await publish(h2.url, { topic, data: 'again', id: own });
            assertJsonError(dup, 409, 'the own id after the restart');
            const second = await publishN(h2.url, topic, 3, 'after');
            assertIncreasing([...first, ...second], 'ids across the restart');

            // The whole history, in order, once; and a pre-restart id resumes exactly.
            const all = await replayPairs(h2.url, [topic], 'earliest');
            assert.equal(all.header, 'earliest');
            assert.deepEqual(all.pairs, [
                [first[0], 'before1'], [first[1], 'before2'], [first[2], 'before3'], [first[3], 'before4'],
                [own, 'mine'], [first[4], 'before5'],
                [second[0], 'after1'], [second[1], 'after2'], [second[2], 'after3'],
            ]);
            const from = await replayPairs(h2.url, [topic], first[2]);
            assert.equal(from.header, first[2]);
            assert.deepEqual(from.pairs.map((p) => p[1]), ['before4', 'mine', 'before5', 'after1', 'after2', 'after3']);
            // The own id is a position too, after the restart as before it.
            const fromOwn = await replayPairs(h2.url, [topic], own);
            assert.equal(fromOwn.header, own);
            assert.deepEqual(fromOwn.pairs.map((p) => p[0]), [first[4], ...second]);
            await stopClean(h2, 'the second herald');
        });
    }
});

// ---------------------------------------------------------------------------------------

describe('sqlite: retention', () => {
    test('max_events holds, also after a restart; a dropped id resumes as `earliest`', T, async () => {
        const dir = tempDir('herald-cap-');
        const db = path.join(dir, 'herald.db');
        const env = { HERALD_HISTORY_MAX_EVENTS: '5', HERALD_STORE_CACHE_EVENTS: '2' };
        const t = uniqueTopic('cap');
        const u = uniqueTopic('cap-other');
        let h = await start(db, { env });
        const ids = await publishN(h.url, t, 12);
        const uIds = await publishN(h.url, u, 2, 'u');
        const check = async (label, tIds, tData) => {
            const info = await waitRetained(h.url, t, 5);
            assert.equal(info.lastEventId, tIds.at(-1), `${label}: /topics lastEventId`);
            assert.equal((await topicInfo(h.url, u))?.retained, 2, `${label}: the other topic lost events`);
            const kept = tIds.slice(-5).map((id, k) => [id, tData.at(-5 + k)]);
            let r = await replayPairs(h.url, [t], 'earliest');
            assert.equal(r.header, 'earliest', label);
            assert.deepEqual(r.pairs, kept, `${label}: earliest`);
            // A dropped id: everything retained, said to start at `earliest`.
            r = await replayPairs(h.url, [t], ids[0]);
            assert.equal(r.header, 'earliest', `${label}: a dropped id must answer earliest`);
            assert.deepEqual(r.pairs, kept, `${label}: from a dropped id`);
            // The newest dropped one, too.
            r = await replayPairs(h.url, [t], tIds.at(-6));
            assert.equal(r.header, 'earliest', `${label}: the newest dropped id must answer earliest`);
            assert.deepEqual(r.pairs, kept, `${label}: from the newest dropped id`);
            // A retained id (the oldest retained one, and one in the middle) resumes exactly.
            for (const k of [0, 2]) {
                r = await replayPairs(h.url, [t], kept[k][0]);
                assert.equal(r.header, kept[k][0], `${label}: retained id ${k} must resume exactly`);
                assert.deepEqual(r.pairs, kept.slice(k + 1), `${label}: from retained id ${k}`);
            }
            r = await replayPairs(h.url, [u], 'earliest');
            assert.deepEqual(r.pairs, uIds.map((id, k) => [id, `u${k + 1}`]), `${label}: the other topic`);
        };
        await check('before the restart', ids, ids.map((_, i) => `e${i + 1}`));
        await stopClean(h, 'herald');

        h = await start(db, { env });
        await check('after the restart', ids, ids.map((_, i) => `e${i + 1}`));
        const more = await publishN(h.url, t, 3, 'late');
        const tIds = [...ids, ...more];
        await check('after the restart and 3 more', tIds, [...ids.map((_, i) => `e${i + 1}`), 'late1', 'late2', 'late3']);
        assertIncreasing(tIds, 'ids of the topic');
        await stopClean(h, 'herald');
    });

    test('max_bytes keeps the newest events that fit, per topic', T, async () => {
        const dir = tempDir('herald-bytes-');
        const db = path.join(dir, 'herald.db');
        const MAX = 45000;
        const h = await start(db, { env: { HERALD_HISTORY_MAX_BYTES: String(MAX), HERALD_STORE_CACHE_EVENTS: '1' } });
        const big = uniqueTopic('bytes-big');
        const small = uniqueTopic('bytes-small');
        const payload = (i) => `${i}:`.padEnd(10000, String.fromCharCode(97 + i));
        const ids = [];
        for (let i = 0; i < 8; i++) ids.push(await publishOk(h.url, { topic: big, data: payload(i) }));
        const smallIds = await publishN(h.url, small, 6, 's');
        // 10,000-byte events under a 45,000-byte cap: at most four stay, at least one.
        let info;
        await waitUntil(async () => {
            info = await topicInfo(h.url, big);
            return info && info.retained >= 1 && info.retained <= 4;
        }, { ms: 5000, what: `at most 4 retained on ${big}`, describe: () => JSON.stringify(info) });
        const n = info.retained;
        const s = await subscribe(h.url, [big], { headers: { 'Last-Event-ID': 'earliest' } });
        try {
            await waitEvents(s, n);
            await sleep(200);
            assert.equal(s.headers['last-event-id'], 'earliest');
            assert.deepEqual(s.events.map((e) => e.id), ids.slice(8 - n), `the ${n} newest events, in order`);
            assert.deepEqual(s.events.map((e) => e.data), Array.from({ length: n }, (_, k) => payload(8 - n + k)));
        } finally {
            s.close();
        }
        assert.equal((await topicInfo(h.url, small))?.retained, 6, 'small events of another topic were dropped');
        const r = await replayPairs(h.url, [small], 'earliest');
        assert.deepEqual(r.pairs.map((p) => p[0]), smallIds);
        // A dropped big event resumes as `earliest`.
        const g = await replayPairs(h.url, [big], ids[0]);
        assert.equal(g.header, 'earliest');
        assert.deepEqual(g.pairs.map((p) => p[0]), ids.slice(8 - n));
        await stopClean(h, 'herald');
    });

    test('max_age_seconds drops old events from replays and /topics', T, async () => {
        const dir = tempDir('herald-age-');
        const db = path.join(dir, 'herald.db');
        const h = await start(db, { env: { HERALD_HISTORY_MAX_AGE_SECONDS: '2', HERALD_STORE_CACHE_EVENTS: '1' } });
        const t = uniqueTopic('age');
        const ids = await publishN(h.url, t, 3, 'old');
        const young = await replayPairs(h.url, [t], 'earliest');
        assert.deepEqual(young.pairs, [[ids[0], 'old1'], [ids[1], 'old2'], [ids[2], 'old3']]);
        // Past the age (and the once-a-second sweep), nothing of t remains.
        await waitRetained(h.url, t, 0, 8000);
        const s = await subscribe(h.url, [t], { headers: { 'Last-Event-ID': 'earliest' } });
        const fresh = await publishOk(h.url, { topic: t, data: 'fresh' });
        try {
            await waitEvents(s, 1);
            await sleep(200);
            assert.deepEqual(s.events.map((e) => [e.id, e.data]), [[fresh, 'fresh']], 'expired events were replayed');
        } finally {
            s.close();
        }
        // An expired id is no longer a known position.
        const g = await replayPairs(h.url, [t], ids[1]);
        assert.equal(g.header, 'earliest');
        assert.deepEqual(g.pairs, [[fresh, 'fresh']]);
        await stopClean(h, 'herald');
    });

    test('a restart with a smaller max_events trims to the new cap', T, async () => {
        const dir = tempDir('herald-shrink-');
        const db = path.join(dir, 'herald.db');
        const t = uniqueTopic('shrink');
        const u = uniqueTopic('shrink-small');
        let h = await start(db, { env: { HERALD_HISTORY_MAX_EVENTS: '100' } });
        const ids = await publishN(h.url, t, 30);
        const uIds = await publishN(h.url, u, 3, 'u');
        assert.equal((await topicInfo(h.url, t))?.retained, 30);
        await stopClean(h, 'herald');

        h = await start(db, { env: { HERALD_HISTORY_MAX_EVENTS: '10', HERALD_STORE_CACHE_EVENTS: '4' } });
        const info = await waitRetained(h.url, t, 10, 5000);
        assert.equal(info.lastEventId, ids[29]);
        assert.equal((await topicInfo(h.url, u))?.retained, 3);
        let r = await replayPairs(h.url, [t], 'earliest');
        assert.equal(r.header, 'earliest');
        assert.deepEqual(r.pairs.map((p) => p[0]), ids.slice(20));
        assert.deepEqual(r.pairs.map((p) => p[1]), ids.slice(20).map((_, k) => `e${21 + k}`));
        r = await replayPairs(h.url, [t], ids[5]);
        assert.equal(r.header, 'earliest', 'an id trimmed at start must answer earliest');
        assert.deepEqual(r.pairs.map((p) => p[0]), ids.slice(20));
        r = await replayPairs(h.url, [t], ids[25]);
        assert.equal(r.header, ids[25]);
        assert.deepEqual(r.pairs.map((p) => p[0]), ids.slice(26));
        r = await replayPairs(h.url, [u], 'earliest');
        assert.deepEqual(r.pairs.map((p) => p[0]), uIds);
        await stopClean(h, 'herald');
    });
});

// ---------------------------------------------------------------------------------------

// An EventSource whose connection attempts can be held back (to publish while it is away)
// and whose requests and responses are recorded.
function gatedEventSource(url) {
    let gate = null;
    const requests = [];
    const gatedFetch = async (input, init) => {
        const rec = { url: String(input), headers: { ...(init?.headers ?? {}) }, status: null, lastEventId: undefined };
        requests.push(rec);
        if (gate) await gate.promise;
        const res = await fetch(input, init);
        rec.status = res.status;
        rec.lastEventId = res.headers.get('last-event-id');
        return res;
    };
    const es = new EventSource(url, { fetch: gatedFetch });
    const state = { es, requests, opens: 0, errors: 0, messages: [] };
    es.addEventListener('open', () => { state.opens += 1; });
    es.addEventListener('error', () => { state.errors += 1; });
    es.onmessage = (e) => state.messages.push({ data: e.data, id: e.lastEventId });
    state.hold = () => {
        let release;
        const promise = new Promise((r) => { release = r; });
        gate = { promise, release };
    };
    state.release = () => {
        const g = gate;
        gate = null;
        g?.release();
    };
    return state;
}

describe('sqlite: a real EventSource across restarts', () => {
    test('resumes after SIGTERM and after SIGKILL with every event once, in order', T, async () => {
        const dir = tempDir('herald-es-');
        const db = path.join(dir, 'herald.db');
        const port = await freePort();
        const env = { HERALD_STORE_CACHE_EVENTS: '3', HERALD_SERVER_RETRY_MS: '300' };
        const topic = uniqueTopic('es');
        const published = []; // { id, data }
        const pub = async (base, data) => published.push({ id: await publishOk(base, { topic, data }), data });

        let h = await start(db, { env, port });
        assert.equal(h.port, port);
        const client = gatedEventSource(`${h.url}/events?topic=${encodeURIComponent(topic)}`);
        cleanup.push(() => { client.release(); client.es.close(); });
        const describeClient = () => JSON.stringify({ opens: client.opens, errors: client.errors, messages: client.messages, requests: client.requests });
        await waitUntil(() => client.opens === 1, { ms: 10000, what: 'the EventSource to open', describe: describeClient });
        for (let i = 1; i <= 6; i++) await pub(h.url, `first-${i}`);
        await waitUntil(() => client.messages.length === 6, { ms: 10000, what: 'the first 6 events', describe: describeClient });

        let round = 0;
        for (const signal of ['SIGTERM', 'SIGKILL']) {
            round += 1;
            const lastBefore = published.at(-1).id;
            const requestsBefore = client.requests.length;
            const errorsBefore = client.errors;
            client.hold();
            if (signal === 'SIGTERM') await stopClean(h, 'herald');
            else assert.equal(await h.stop('SIGKILL'), 'SIGKILL');
            await waitUntil(() => client.errors > errorsBefore, { ms: 10000, what: `the EventSource to notice the ${signal}`, describe: describeClient });
            assert.notEqual(client.es.readyState, EventSource.CLOSED, 'the EventSource gave up');
            // Its next attempt waits at the gate until the new hub has new events.
            await waitUntil(() => client.requests.length > requestsBefore, { ms: 10000, what: 'a reconnection attempt', describe: describeClient });

            h = await start(db, { env, port });
            assert.equal(h.port, port);
            for (let i = 1; i <= 6; i++) await pub(h.url, `round${round}-while-away-${i}`);
            const opensBefore = client.opens;
            client.release();
            await waitUntil(() => client.opens === opensBefore + 1, { ms: 15000, what: `the EventSource to reconnect after the ${signal}`, describe: describeClient });
            const resumed = client.requests.filter((r) => r.status === 200).at(-1);
            assert.equal(resumed.headers['Last-Event-ID'], lastBefore, `the reconnect carried ${JSON.stringify(resumed.headers)}`);
            assert.equal(resumed.lastEventId, lastBefore, `after the ${signal} the hub did not know the id from before it`);
            for (let i = 1; i <= 3; i++) await pub(h.url, `round${round}-live-${i}`);
            await waitUntil(() => client.messages.length >= published.length, { ms: 10000, what: 'every event so far', describe: describeClient });
        }
        await sleep(300);
        assert.equal(client.opens, 3);
        assert.deepEqual(client.messages, published, 'the EventSource did not get every event exactly once, in order');
        assertIncreasing(published.map((e) => e.id), 'ids across both restarts');
        client.es.close();
        await stopClean(h, 'the last herald');
    });
});

// ---------------------------------------------------------------------------------------

describe('sqlite: replay from memory and from disk agree', () => {
    test('resumes over one topic, several topics and * give the exact lists', T, async () => {
        const dir = tempDir('herald-replay-');
        const db = path.join(dir, 'herald.db');
        const env = { HERALD_STORE_CACHE_EVENTS: '5' };
        let h = await start(db, { env });
        const a = uniqueTopic('rp-a');
        const b = uniqueTopic('rp-b');
        const c = uniqueTopic('rp-c');
        const log = []; // { id, topics, data } in publish order
        const topicsFor = (i) => {
            if (i % 11 === 5) return [a, b];
            if (i % 7 === 3) return [a, c];
            return [[a, b, c][i % 3]];
        };
        for (let i = 0; i < 50; i++) {
            const topics = topicsFor(i);
            log.push({ id: await publishOk(h.url, { topic: topics, data: `ev${i}` }), topics, data: `ev${i}` });
        }
        const firstIds = log.map((e) => e.id);
        assertIncreasing(firstIds, 'ids of the 50 events');

        const subs = [[a], [b, c], [a, b], ['*']];
        const matches = (sub, topics) => sub.includes('*') || topics.some((t) => sub.includes(t));
        const points = [
            ['the newest', () => firstIds[49]],
            ['a recent one', () => firstIds[46]],
            ['an old one', () => firstIds[30]],
            ['an older one', () => firstIds[8]],
            ['the first', () => firstIds[0]],
            ['earliest', () => 'earliest'],
        ];
        let k = 0;
        const phase = async (label) => {
            for (const sub of subs) {
                for (const [what, idOf] of points) {
                    const from = idOf();
                    const at = from === 'earliest' ? -1 : log.findIndex((e) => e.id === from);
                    const expected = log.slice(at + 1).filter((e) => matches(sub, e.topics)).map((e) => [e.id, e.data]);
                    // The marker goes to a subscribed topic (b for [b, c], else a).
                    const markTopic = sub.includes('*') || sub.includes(a) ? a : b;
                    const data = `mark${k++}`;
                    const r = await readUpToSentinel(h.url, sub, { from, sentinelTopic: markTopic, sentinel: data });
                    log.push({ id: r.sentinel.id, topics: [markTopic], data });
                    const ctx = `${label}: ${JSON.stringify(sub)} from ${what}`;
                    assert.equal(r.header, from, `${ctx}: Last-Event-ID header`);
                    assert.deepEqual(r.events.map((e) => [e.id, e.data]), expected, ctx);
                }
            }
        };
        // Where the replays were served from (a diagnostic; the lists above are the test).
        const sources = async (label) => {
            const m = await getMetrics(h.url);
            console.log(`# ${label}: replays from memory ${m.sum('herald_store_replays_total', /memory/)}, ` +
                `from the database ${m.sum('herald_store_replays_total', /disk/)}`);
        };
        await phase('warm cache');
        await sources('warm cache');
        await stopClean(h, 'herald');
        h = await start(db, { env });
        await phase('after a restart');
        await sources('after a restart');
        // ?lastEventID= takes the same path.
        const s = await subscribe(h.url, [c], { query: { lastEventID: firstIds[2] } });
        try {
            const expected = log.slice(3).filter((e) => e.topics.includes(c));
            await waitEvents(s, expected.length);
            assert.equal(s.headers['last-event-id'], firstIds[2]);
            assert.deepEqual(s.events.map((e) => [e.id, e.data]), expected.map((e) => [e.id, e.data]));
        } finally {
            s.close();
        }
        await stopClean(h, 'herald');
    });
});

// The store's own counters on /metrics.
describe('sqlite: metrics', () => {
    test('transactions, events written, commit time, and replays by source', T, async () => {
        const dir = tempDir('herald-metrics-');
        const h = await start(path.join(dir, 'herald.db'), { env: { HERALD_STORE_CACHE_EVENTS: '2' } });
        const t = uniqueTopic('metrics');
        const before = await getMetrics(h.url);
        for (const name of ['herald_store_transactions_total', 'herald_store_events_written_total',
            'herald_store_failed_transactions_total', 'herald_store_commit_seconds_total',
            'herald_store_replays_total']) {
            assert.ok(before.has(name), `/metrics lacks ${name}`);
        }
        const ids = [];
        for (let i = 0; i < 5; i++) ids.push(await publishOk(h.url, { topic: t, data: `m${i}` }));
        const written = await getMetrics(h.url);
        const delta = (m, name, re) => m.sum(name, re) - before.sum(name, re);
        // One publisher waiting for each answer: at least one transaction per event.
        assert.ok(delta(written, 'herald_store_transactions_total') >= 5);
        assert.ok(delta(written, 'herald_store_events_written_total') >= 5);
        assert.equal(delta(written, 'herald_store_failed_transactions_total'), 0);
        assert.ok(delta(written, 'herald_store_commit_seconds_total') > 0);

        // With two events per topic in memory: a resume from the fourth is served from
        // memory, one from the first reads the database.
        const replay = async (from, n) => {
            const s = await subscribe(h.url, [t], { headers: { 'Last-Event-ID': from } });
            try {
                await waitEvents(s, n);
                assert.deepEqual(s.events.map((e) => e.data), ['m0', 'm1', 'm2', 'm3', 'm4'].slice(5 - n));
            } finally {
                s.close();
            }
        };
        await replay(ids[3], 1);
        let m = await getMetrics(h.url);
        assert.equal(delta(m, 'herald_store_replays_total', /memory/), 1);
        assert.equal(delta(m, 'herald_store_replays_total', /disk/), 0);
        await replay(ids[0], 4);
        m = await getMetrics(h.url);
        assert.equal(delta(m, 'herald_store_replays_total', /memory/), 1);
        assert.equal(delta(m, 'herald_store_replays_total', /disk/), 1);
        await stopClean(h, 'herald');
    });
});

// /readyz on a healthy sqlite store.
describe('sqlite: health', () => {
    test('/readyz answers 200 with a working store', T, async () => {
        const dir = tempDir('herald-ready-');
        const h = await start(path.join(dir, 'herald.db'));
        const r = await request(`${h.url}/readyz`);
        assert.equal(r.status, 200, r.body);
        await stopClean(h, 'herald');
    });
});
