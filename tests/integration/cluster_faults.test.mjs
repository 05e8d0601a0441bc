// The cluster when Redis or a node fails, against a real redis-server that each test starts,
// kills, freezes and restarts itself:
// - Redis killed (-9) or hung (SIGSTOP): publishes get a JSON 503 within about the store
//   timeout, open streams stay open with their keep-alives, a new subscription gets 200, a
//   `retry:` line and is closed, /readyz says 503 with the reason; once Redis is back the
//   nodes reconnect by themselves and the open streams go on with no gap and no duplicate.
// - One node alone cut off from Redis (a TCP proxy that refuses, or that blackholes): its
//   publishes and /readyz say 503 while the others go on; once restored its open streams get
//   everything published meanwhile, in order, before anything newer.
// - A node killed -9 under load: every acknowledged event, from either node, is replayable
//   from the survivor, once.
// - Redis dropping the nodes' connections (CLIENT KILL) under load: nothing missed, nothing twice.
// - Redis restarted with its AOF (fsync always): no acknowledged event lost, ids never
//   reused; restarted without persistence: the nodes re-seed the counter above every id seen.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openStream, publish, request } from './lib/harness.mjs';
import { assertJsonError, eventsPath, sleep, subscribe, uniqueTopic, waitUntil, withTimeout } from './lib/util.mjs';
import { assertIncreasing, keepAlivePublisher } from './lib/store.mjs';
import { clusterScope, waitReady } from './lib/redis.mjs';

const T = { timeout: 120000 };
const TIMEOUT_MS = 500;
// Quick failure detection and keep-alives, so that the tests are quick.
const ENV = { HERALD_STORE_TIMEOUT_MS: String(TIMEOUT_MS), HERALD_SERVER_KEEPALIVE_SECONDS: '1' };
// How long a publish may take to be refused: generous, timing is not what is tested.
const REFUSAL_BOUND_MS = 5 * TIMEOUT_MS;
// How long a node may take to notice, or to come back (reconnection backs off up to 2 s).
const NOTICE_MS = 15000;

const scope = clusterScope();

// Two nodes (A, B) on database 0 of `redis`; `viaA` is the URL A is given (a proxy).
async function twoNodes(redis, { viaA = redis.url(0), env = {} } = {}) {
    return Promise.all([
        scope.node(viaA, { name: 'node-a', env: { ...ENV, ...env } }),
        scope.node(redis.url(0), { name: 'node-b', env: { ...ENV, ...env } }),
    ]);
}

// Publishes and asserts 200 with a decimal id; returns [id, data].
async function pubOk(n, topic, data) {
    const r = await publish(n.url, { topic, data });
    assert.equal(r.status, 200, `publish ${data} on ${n.name}: ${r.status} ${r.body}`);
    const id = r.body.trim();
    assert.match(id, /^\d+$/, `id ${JSON.stringify(id)} from ${n.name}`);
    return [id, data];
}

// A publish that must be refused with a JSON 503 (Redis unreachable); returns the ms it took.
async function pubRefused(n, topic, data, what) {
    const started = Date.now();
    const r = await withTimeout(publish(n.url, { topic, data }), 30000, `${what}: an answer to publish ${data} on ${n.name}`);
    const ms = Date.now() - started;
    const body = assertJsonError(r, 503, `${what}: publish ${data} on ${n.name} (answered in ${ms} ms)`);
    assert.ok(ms <= REFUSAL_BOUND_MS, `${what}: the 503 on ${n.name} took ${ms} ms, over ${REFUSAL_BOUND_MS} ms (store timeout ${TIMEOUT_MS} ms): ${body.error}`);
    console.log(`# ${what}: publish on ${n.name} refused in ${ms} ms: ${body.error}`);
    return ms;
}

// Asserts what a node says while it cannot reach Redis: /readyz 503 with a reason naming
// Redis (polled: a node that has not tried to write may take a moment to notice), /healthz
// still 200, and a new subscription answered 200 with a `retry:` line, then closed.
async function assertUnavailable(n, topic, what) {
    const ready = await waitReady(n.url, 503, NOTICE_MS).catch((e) => assert.fail(`${what}: ${e.message}`));
    const body = assertJsonError(ready, 503, `${what}: /readyz of ${n.name}`);
    assert.match(body.error, /redis/i, `${what}: /readyz of ${n.name} gives no reason naming Redis: ${body.error}`);
    assert.equal((await request(`${n.url}/healthz`)).status, 200, `${what}: /healthz of ${n.name}`);

    const s = await openStream(n.url, eventsPath([topic]));
    try {
        assert.equal(s.status, 200, `${what}: a new subscription on ${n.name} answered ${s.status}, expected 200 (a passing reason)`);
        await s.waitEnd(10000).catch(() => {});
        assert.ok(s.ended, `${what}: a new subscription on ${n.name} was not closed within 10 s; it got ${JSON.stringify(s.body.slice(0, 300))}`);
        assert.match(s.body, /^retry: *\d+/m, `${what}: a new subscription on ${n.name} got no retry: line: ${JSON.stringify(s.body)}`);
        assert.equal(s.events.length, 0, `${what}: a refused subscription on ${n.name} got events: ${JSON.stringify(s.events)}`);
    } finally {
        s.close();
    }
    return body.error;
}

// Asserts that every stream of `streams` is still open and gets `n` more keep-alive
// comments.
async function assertKeptAlive(streams, what, n = 2) {
    const base = streams.map((s) => s.comments.length);
    await waitUntil(() => streams.every((s, i) => s.comments.length >= base[i] + n || s.ended), {
        ms: 10000, what: `${n} keep-alives on every open stream (${what})`,
        describe: () => streams.map((s, i) => `#${i}: ${s.comments.length - base[i]} new, ended=${s.ended}`).join('; '),
    });
    for (const [i, s] of streams.entries()) assert.equal(s.ended, false, `${what}: open stream #${i} was closed`);
}

// Waits until each stream holds every [id, data] of `want` (and no id beyond, among those
// it has), then asserts its sequence: ids strictly increasing (no duplicate), exactly
// `want`, except events whose data is in `maybe` (publishes answered 503 or not at all,
// which Redis may nevertheless have applied).
async function assertStreams(streams, want, what, { maybe = new Set(), ms = NOTICE_MS } = {}) {
    const wantIds = new Set(want.map(([id]) => id));
    const lastId = want.at(-1)?.[0];
    await waitUntil(() => streams.every((s) => s.ended || (lastId === undefined || s.events.some((e) => e.id === lastId))), {
        ms, what: `${what}: the last expected event ${lastId} on every stream`,
        describe: () => streams.map((s, i) => `#${i}: ${s.events.length} events (want ${want.length}), ended=${s.ended}, last ${JSON.stringify(s.events.at(-1))}`).join('; '),
    });
    for (const [i, s] of streams.entries()) {
        assert.equal(s.ended, false, `${what}: stream #${i} was closed`);
        const got = s.events.map((e) => [e.id, e.data]);
        assertIncreasing(got.map(([id]) => id), `${what}: ids on stream #${i}`);
        const extra = got.filter(([id]) => !wantIds.has(id));
        const unexplained = extra.filter(([, d]) => !maybe.has(d));
        assert.deepEqual(unexplained, [], `${what}: stream #${i} got events nobody published (or already had)`);
        if (extra.length) console.log(`# ${what}: stream #${i} got ${extra.length} event(s) whose publish was refused or unanswered: ${JSON.stringify(extra)}`);
        const mine = got.filter(([id]) => wantIds.has(id));
        assert.deepEqual(mine, want, `${what}: stream #${i}`);
    }
}

// Every retained event of `topics` on node `n` (a stream from `earliest` read up to a marker
// published on a topic of its own): [[id, data]...].
async function history(n, topics, from = 'earliest') {
    const markerTopic = uniqueTopic('marker');
    const s = await openStream(n.url, eventsPath([...topics, markerTopic]), { headers: { 'Last-Event-ID': from } });
    try {
        assert.equal(s.status, 200);
        await waitUntil(() => s.body.includes('retry:') || s.ended, { ms: 10000, what: 'the retry line' });
        const marker = `marker-${markerTopic}`;
        const [id] = await pubOk(n, markerTopic, marker);
        await waitUntil(() => s.events.some((e) => e.data === marker) || s.ended, {
            ms: 30000, what: `the marker on ${n.name}`, describe: () => `${s.events.length} events, ended=${s.ended}`,
        });
        const i = s.events.findIndex((e) => e.data === marker);
        assert.ok(i >= 0, `the history stream on ${n.name} ended before the marker`);
        assert.equal(s.events[i].id, id);
        return { header: s.headers['last-event-id'], events: s.events.slice(0, i).map((e) => [e.id, e.data]) };
    } finally {
        s.close();
    }
}

// Publishers that keep publishing to `topics` on `nodes` (`per` each) until stop():
// acked [[id, data]...] in answer order, refused (non-200) and unanswered (the connection
// failed) data.
function loadPublishers(nodes, topics, per) {
    const acked = [];
    const refused = new Set();
    const unanswered = new Set();
    const statuses = {};
    let stopping = false;
    let seq = 0;
    const runs = [];
    for (const n of nodes) {
        for (let w = 0; w < per; w++) {
            runs.push((async () => {
                const p = keepAlivePublisher(n.url);
                let errors = 0;
                try {
                    while (!stopping) {
                        const k = seq++;
                        const data = `load-${k}-${n.name}-${w}`;
                        const topic = topics[k % topics.length];
                        let r;
                        try {
                            r = await p.post({ topic, data });
                        } catch {
                            unanswered.add(data);
                            errors += 1;
                            // A dead node: stop; anything else: back off a little.
                            if (errors >= 3) return;
                            await sleep(50);
                            continue;
                        }
                        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
                        if (r.status === 200) {
                            acked.push([r.id, data]);
                        } else {
                            refused.add(data);
                            await sleep(20);
                        }
                    }
                } finally {
                    p.close();
                }
            })());
        }
    }
    return {
        acked,
        refused,
        unanswered,
        statuses,
        async stop() {
            stopping = true;
            await withTimeout(Promise.all(runs), 30000, 'the publishers to stop');
        },
    };
}

const byId = (a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : BigInt(a[0]) > BigInt(b[0]) ? 1 : 0);

// Asserts that `events` ([[id, data]...] of a history) hold every acked event once, ids
// strictly increasing, and nothing else but data of `maybe`.
function assertHolds(events, acked, maybe, what) {
    assertIncreasing(events.map(([id]) => id), `${what}: ids`);
    const have = new Map(events.map(([id, d]) => [id, d]));
    const missing = acked.filter(([id, d]) => have.get(id) !== d);
    assert.deepEqual(missing.slice(0, 10), [], `${what}: ${missing.length} of ${acked.length} acknowledged events missing (or with other data)`);
    const ackedIds = new Set(acked.map(([id]) => id));
    const extra = events.filter(([id]) => !ackedIds.has(id));
    const unexplained = extra.filter(([, d]) => !maybe.has(d));
    assert.deepEqual(unexplained.slice(0, 10), [], `${what}: ${unexplained.length} events nobody published`);
    const datas = events.map(([, d]) => d);
    assert.equal(new Set(datas).size, datas.length, `${what}: an event is there twice (under two ids)`);
    return extra;
}

describe('cluster faults: Redis down', () => {
    for (const how of ['killed', 'hung']) {
        test(`Redis ${how === 'killed' ? 'killed (-9) and restarted' : 'hung (SIGSTOP) and resumed (SIGCONT)'}: 503s, streams kept, recovery by itself`, T, async () => {
            // With its AOF, so that a restart after -9 is a plain restart (losing the data is
            // the last test's case).
            const redis = await scope.redis({ appendonly: true });
            const [A, B] = await twoNodes(redis);
            const topic = uniqueTopic(how);
            const streams = [await subscribe(A.url, [topic]), await subscribe(B.url, [topic]), await subscribe(B.url, [topic])];
            try {
                const sent = [await pubOk(A, topic, 'before-1'), await pubOk(B, topic, 'before-2'), await pubOk(A, topic, 'before-3')];
                await assertStreams(streams, sent, 'before the fault');

                if (how === 'killed') await redis.kill9();
                else redis.pause();
                const what = `Redis ${how}`;
                const maybe = new Set();
                for (const [n, data] of [[A, 'down-a1'], [B, 'down-b1'], [A, 'down-a2']]) {
                    maybe.add(data);
                    await pubRefused(n, topic, data, what);
                }
                const reasonA = await assertUnavailable(A, uniqueTopic('new'), what);
                await assertUnavailable(B, uniqueTopic('new'), what);
                await assertKeptAlive(streams, what);
                // Still refused after a while (not one lucky 503).
                maybe.add('down-b2');
                await pubRefused(B, topic, 'down-b2', `${what}, later`);
                console.log(`# ${what}: /readyz said: ${reasonA}`);

                if (how === 'killed') await redis.restart();
                else redis.resume();
                const back = Date.now();
                await waitReady(A.url, 200, NOTICE_MS);
                await waitReady(B.url, 200, NOTICE_MS);
                console.log(`# Redis ${how === 'killed' ? 'restarted' : 'resumed'}: both nodes ready after ${Date.now() - back} ms`);
                const after = [await pubOk(B, topic, 'after-1'), await pubOk(A, topic, 'after-2'), await pubOk(B, topic, 'after-3')];
                for (const [id] of after) assert.ok(BigInt(id) > BigInt(sent.at(-1)[0]), `id ${id} after the recovery is not above ${sent.at(-1)[0]}`);
                await assertStreams(streams, [...sent, ...after], `after Redis ${how === 'killed' ? 'restarted' : 'resumed'}`, { maybe });
                // A new subscription is served again, and resumes.
                const h = await history(A, [topic], sent[0][0]);
                assert.equal(h.header, sent[0][0]);
                const rest = h.events.filter(([, d]) => !maybe.has(d));
                assert.deepEqual(rest, [...sent.slice(1), ...after], 'a resume on A after the recovery');
            } finally {
                redis.resume();
                for (const s of streams) s.close();
            }
        });
    }
});

describe('cluster faults: one node cut off', () => {
    for (const mode of ['refuse', 'blackhole']) {
        test(`one node cut off from Redis (${mode}): it refuses while the other goes on; restored, its streams get what they missed, in order`, T, async () => {
            const redis = await scope.redis();
            const proxy = await scope.proxy(redis.port);
            const [A, B] = await twoNodes(redis, { viaA: `redis://127.0.0.1:${proxy.port}/0` });
            const topic = uniqueTopic(`cut-${mode}`);
            const onA = [await subscribe(A.url, [topic]), await subscribe(A.url, [topic])];
            const onB = [await subscribe(B.url, [topic])];
            try {
                const sent = [await pubOk(A, topic, 'before-a'), await pubOk(B, topic, 'before-b')];
                await assertStreams([...onA, ...onB], sent, 'before the cut');

                await proxy.cut({ mode });
                const what = `node A cut off (${mode})`;
                const refused = ['cut-a1', 'cut-a2'];
                for (const data of refused) await pubRefused(A, topic, data, what);
                await assertUnavailable(A, uniqueTopic('new'), what);
                assert.equal((await request(`${B.url}/readyz`)).status, 200, `${what}: node B is not ready`);

                const during = [];
                for (let i = 0; i < 12; i++) during.push(await pubOk(B, topic, `during-${i}`));
                await assertStreams(onB, [...sent, ...during], `${what}: the stream on B`);
                await assertKeptAlive(onA, what);
                for (const [i, s] of onA.entries()) {
                    assert.deepEqual(s.events.map((e) => [e.id, e.data]), sent, `${what}: stream #${i} on A got events while cut off`);
                }

                await proxy.restore();
                // Published right away, while A may still be reconnecting: it must come after
                // everything B published during the cut.
                const newer = [await pubOk(B, topic, 'newer-b')];
                await waitReady(A.url, 200, NOTICE_MS);
                newer.push(await pubOk(A, topic, 'newer-a'));
                const all = [...sent, ...during, ...newer];
                await assertStreams([...onA, ...onB], all, `${what}, restored`);
                // Refused means not written: no stream, no history holds them.
                const h = await history(B, [topic]);
                assert.deepEqual(h.events, all, `${what}: the history on B after the restore`);
            } finally {
                for (const s of [...onA, ...onB]) s.close();
            }
        });
    }
});

describe('cluster faults: connections dropped by Redis', () => {
    test('CLIENT KILL of every node connection, again and again under load: streams on both nodes miss nothing, get nothing twice', T, async () => {
        const redis = await scope.redis();
        const [A, B] = await twoNodes(redis);
        const topics = [uniqueTopic('ck1'), uniqueTopic('ck2')];
        const streams = [await subscribe(A.url, topics), await subscribe(B.url, topics)];
        try {
            const load = loadPublishers([A, B], topics, 8);
            let kills = 0;
            for (let round = 0; round < 6; round++) {
                const at = load.acked.length;
                await waitUntil(() => load.acked.length >= at + 50, { ms: 20000, what: `50 more acknowledged publishes (round ${round})`, describe: () => JSON.stringify(load.statuses) });
                // Subscriptions (the followers) one round, every connection the next.
                const type = round % 2 === 0 ? ['TYPE', 'pubsub'] : ['TYPE', 'normal'];
                kills += await redis.command('CLIENT', 'KILL', ...type, 'SKIPME', 'yes');
            }
            await load.stop();
            console.log(`# ${kills} connections killed; ${load.acked.length} acknowledged, ${load.refused.size} refused, ${load.unanswered.size} unanswered, statuses ${JSON.stringify(load.statuses)}`);
            assert.ok(kills >= 6, `CLIENT KILL found only ${kills} connections to kill`);
            await waitReady(A.url, 200, NOTICE_MS);
            await waitReady(B.url, 200, NOTICE_MS);
            const acked = [...load.acked].sort(byId);
            const maybe = new Set([...load.refused, ...load.unanswered]);
            await assertStreams(streams, acked, 'streams while Redis dropped the connections', { maybe });
            assertHolds((await history(A, topics)).events, acked, maybe, 'the history on A');
        } finally {
            for (const s of streams) s.close();
        }
    });
});

describe('cluster faults: a node killed under load', () => {
    test('a node killed -9 mid-load: every acknowledged event (of either node) is replayable from the survivor, once', T, async () => {
        const redis = await scope.redis();
        const [A, B] = await twoNodes(redis);
        const topics = [uniqueTopic('kill1'), uniqueTopic('kill2')];
        const onA = await subscribe(A.url, topics);
        const onB = await subscribe(B.url, topics);
        try {
            const load = loadPublishers([A, B], topics, 16);
            await waitUntil(() => load.acked.length >= 400, { ms: 30000, what: '400 acknowledged publishes', describe: () => JSON.stringify(load.statuses) });
            await A.stop('SIGKILL');
            const atKill = load.acked.length;
            await waitUntil(() => load.acked.length >= atKill + 300, { ms: 30000, what: '300 more acknowledged publishes on B', describe: () => JSON.stringify(load.statuses) });
            await load.stop();
            console.log(`# node killed under load: ${load.acked.length} acknowledged (${atKill} before the kill), ` +
                `${load.unanswered.size} unanswered, ${load.refused.size} refused, statuses ${JSON.stringify(load.statuses)}`);
            const acked = [...load.acked].sort(byId);
            const maybe = new Set([...load.unanswered, ...load.refused]);

            // From the survivor: all of it, from `earliest`.
            const h = await history(B, topics);
            assert.equal(h.header, 'earliest');
            const extra = assertHolds(h.events, acked, maybe, 'the history on B after A was killed');
            if (extra.length) console.log(`# ${extra.length} event(s) written whose publish got no answer (A died): ${JSON.stringify(extra.slice(0, 5))}`);

            // The stream on B saw the same, live.
            await waitUntil(() => onB.events.length >= h.events.length || onB.ended, { ms: 10000, what: 'every event on the stream on B' });
            assert.deepEqual(onB.events.slice(0, h.events.length).map((e) => [e.id, e.data]), h.events, 'the live stream on B');

            // A's client resumes on B from the last id it got: the rest, no gap, no duplicate.
            await waitUntil(() => onA.ended, { ms: 10000, what: 'the stream on the killed node to end' });
            const seenOnA = onA.events.map((e) => [e.id, e.data]);
            assert.ok(seenOnA.length > 0, 'the stream on A got nothing before the kill');
            assert.deepEqual(seenOnA, h.events.slice(0, seenOnA.length), 'what the stream on A got before the kill');
            const resumed = await history(B, topics, seenOnA.at(-1)[0]);
            assert.equal(resumed.header, seenOnA.at(-1)[0], 'the Last-Event-ID header of the resume on B');
            assert.deepEqual([...seenOnA, ...resumed.events], h.events, 'the stream on A, then its resume on B');
        } finally {
            onA.close();
            onB.close();
        }
    });
});

describe('cluster faults: Redis restarted', () => {
    test('with its AOF (appendfsync always): killed -9 under load, no acknowledged event lost, ids never reused', T, async () => {
        const redis = await scope.redis({ appendonly: true });
        const [A, B] = await twoNodes(redis);
        const topics = [uniqueTopic('aof1'), uniqueTopic('aof2')];
        const streams = [await subscribe(A.url, topics), await subscribe(B.url, topics)];
        try {
            const load = loadPublishers([A, B], topics, 8);
            await waitUntil(() => load.acked.length >= 300, { ms: 30000, what: '300 acknowledged publishes', describe: () => JSON.stringify(load.statuses) });
            await redis.kill9();
            const killedAt = load.acked.length;
            await waitUntil(() => load.refused.size >= 8, { ms: 10000, what: 'publishes refused once Redis is gone', describe: () => JSON.stringify(load.statuses) });
            await load.stop();
            console.log(`# Redis killed under load: ${load.acked.length} acknowledged (${load.acked.length - killedAt} answered after the kill), ` +
                `${load.refused.size} refused, ${load.unanswered.size} unanswered, statuses ${JSON.stringify(load.statuses)}`);
            const acked = [...load.acked].sort(byId);
            const maybe = new Set([...load.refused, ...load.unanswered]);
            const maxBefore = acked.at(-1)[0];

            await redis.restart();
            await waitReady(A.url, 200, NOTICE_MS);
            await waitReady(B.url, 200, NOTICE_MS);
            for (const n of [A, B]) {
                const h = await history(n, topics);
                assertHolds(h.events, acked, maybe, `the history on ${n.name} after Redis restarted from its AOF`);
            }
            const seen = (await history(B, topics)).events;
            const highest = seen.reduce((m, [id]) => (BigInt(id) > m ? BigInt(id) : m), BigInt(maxBefore));
            const after = [];
            for (const n of [A, B, A, B]) after.push(await pubOk(n, topics[0], `after-restart-${after.length}`));
            for (const [id] of after) assert.ok(BigInt(id) > highest, `id ${id} published after the restart is not above ${highest}, the highest before`);
            assertIncreasing(after.map(([id]) => id), 'ids after the restart');
            // The open streams: every acknowledged event, then the new ones, in order, once.
            await assertStreams(streams, [...acked, ...after], 'the streams opened before the kill', { maybe });
        } finally {
            for (const s of streams) s.close();
        }
    });

    test('without persistence (data lost): ids published afterwards are above every id seen before', T, async () => {
        const redis = await scope.redis({ appendonly: false });
        const [A, B] = await twoNodes(redis);
        const topic = uniqueTopic('lost');
        const streams = [await subscribe(A.url, [topic]), await subscribe(B.url, [topic])];
        try {
            const before = [];
            for (let i = 0; i < 10; i++) before.push(await pubOk([A, B][i % 2], topic, `before-${i}`));
            await assertStreams(streams, before, 'before the restart');
            const maxBefore = BigInt(before.at(-1)[0]);

            await redis.kill9();
            await redis.restart();
            // Publish on both as soon as they take events: the very first ids must already be
            // above the old ones.
            const after = [];
            for (const [i, n] of [A, B, A, B, B, A].entries()) {
                let got = null;
                await waitUntil(async () => {
                    const r = await publish(n.url, { topic, data: `after-${i}` });
                    if (r.status === 200) {
                        got = [r.body.trim(), `after-${i}`];
                        return true;
                    }
                    assertJsonError(r, 503, `publish after-${i} on ${n.name} while Redis restarts`);
                    return false;
                }, { ms: NOTICE_MS, every: 50, what: `a publish on ${n.name} to succeed after Redis restarted empty` });
                assert.match(got[0], /^\d+$/);
                assert.ok(BigInt(got[0]) > maxBefore, `id ${got[0]} from ${n.name} after Redis lost its data is not above ${maxBefore}, the highest seen before`);
                after.push(got);
            }
            assertIncreasing(after.map(([id]) => id), 'ids after Redis lost its data');
            const dbsize = await redis.command('DBSIZE');
            assert.ok(dbsize > 0, 'Redis holds no keys after the publishes');
            await waitReady(A.url, 200, NOTICE_MS);
            await waitReady(B.url, 200, NOTICE_MS);
            // Open streams go on with the new events (ids still increasing).
            await assertStreams(streams, [...before, ...after], 'the streams opened before Redis lost its data');
        } finally {
            for (const s of streams) s.close();
        }
    });
});
