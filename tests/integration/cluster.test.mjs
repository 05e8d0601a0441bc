// A healthy cluster: several `herald serve --store redis://...` nodes on one real
// redis-server. Each node names itself (X-Herald-Node, /healthz); a publish on any node
// reaches the subscribers of every node once, in one cluster-wide order of decimal ids,
// also under 64 concurrent publishers; publisher ids are unique cluster-wide; a client
// resumes on any node across several topics with no gap and no duplicate, `earliest` and
// unknown ids answered as the memory store answers them; retention is kept in Redis;
// clusters on two databases of one Redis never see each other; and a bad password or an
// unreachable Redis stops the start with a message that never shows the password.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { openStream, publish, request, startHerald } from './lib/harness.mjs';
import { assertJsonError, closedPort, eventsPath, publishOk, subscribe, uniqueTopic, waitUntil, withTimeout } from './lib/util.mjs';
import { assertIncreasing, assertRefused, assertSameSequence, expectRefusal, keepAlivePublisher, kill9 } from './lib/store.mjs';
import { clusterEnv, clusterScope, nodeArgs } from './lib/redis.mjs';

const T = { timeout: 90000 };
const scope = clusterScope();

// One Redis, three nodes on its database 0, for the tests that need a healthy cluster.
let redis;
let A;
let B;
let C;
before(async () => {
    redis = await scope.redis();
    [A, B, C] = await Promise.all([
        scope.node(redis.url(0), { name: 'node-a' }),
        scope.node(redis.url(0), { name: 'node-b' }),
        scope.node(redis.url(0), { name: 'node-c' }),
    ]);
});

// Publishes `fields` on `base` and returns the id (asserting 200 and a decimal id).
async function pub(base, fields) {
    const id = await publishOk(base, fields);
    assert.match(id, /^\d+$/, `the cluster answered the id ${JSON.stringify(id)}, not a decimal integer`);
    return id;
}

// Waits until every stream of `streams` holds an event whose data is `data` (a marker
// published last), so that everything published before it had its chance to arrive.
async function waitMarker(streams, data, ms = 15000) {
    await waitUntil(() => streams.every((s) => s.events.some((e) => e.data === data) || s.ended), {
        ms,
        what: `the marker ${JSON.stringify(data)} on every stream`,
        describe: () => streams.map((s, i) => `#${i}: ${s.events.length} events, ended=${s.ended}, last ${JSON.stringify(s.events.at(-1))}`).join('; '),
    });
    for (const [i, s] of streams.entries()) assert.equal(s.ended, false, `stream #${i} ended before the marker arrived`);
}

// [id, data] of the events of a stream, up to (not including) the marker `data`.
function before_(s, marker) {
    const i = s.events.findIndex((e) => e.data === marker);
    return (i < 0 ? s.events : s.events.slice(0, i)).map((e) => [e.id, e.data]);
}

describe('cluster: nodes', () => {
    test('every response carries its node\'s X-Herald-Node; /healthz names it; /readyz 200', T, async () => {
        for (const n of [A, B, C]) {
            const health = await request(`${n.url}/healthz`);
            assert.equal(health.status, 200);
            assert.equal(health.headers['x-herald-node'], n.name, `/healthz of ${n.name}`);
            assert.equal(JSON.parse(health.body).node, n.name, `/healthz body of ${n.name}: ${health.body}`);

            const ready = await request(`${n.url}/readyz`);
            assert.equal(ready.status, 200, `/readyz of ${n.name}: ${ready.body}`);
            assert.equal(ready.headers['x-herald-node'], n.name, `/readyz of ${n.name}`);

            const topic = uniqueTopic('hdr');
            const p = await publish(n.url, { topic, data: 'x' });
            assert.equal(p.status, 200, `publish on ${n.name}: ${p.status} ${p.body}`);
            assert.equal(p.headers['x-herald-node'], n.name, `POST /events on ${n.name}`);

            const dup = await publish(n.url, { topic, data: 'x', id: p.body.trim() });
            assert.equal(dup.status, 409, `a publish reusing ${p.body.trim()} on ${n.name}: ${dup.status} ${dup.body}`);
            assert.equal(dup.headers['x-herald-node'], n.name, `409 on ${n.name}`);

            const missing = await request(`${n.url}/no/such/path`);
            assert.equal(missing.status, 404);
            assert.equal(missing.headers['x-herald-node'], n.name, `404 on ${n.name}`);

            const topics = await request(`${n.url}/topics`);
            assert.equal(topics.status, 200);
            assert.equal(topics.headers['x-herald-node'], n.name, `/topics on ${n.name}`);

            const s = await subscribe(n.url, [topic]);
            try {
                assert.equal(s.headers['x-herald-node'], n.name, `GET /events on ${n.name}`);
            } finally {
                s.close();
            }
        }
    });
});

describe('cluster: fan-out and order', () => {
    test('a publish on any node reaches the subscribers of every node once, in one order of increasing ids', T, async () => {
        const topic = uniqueTopic('fan');
        const other = uniqueTopic('fan-other');
        const subs = [];
        for (const n of [A, B, C]) {
            subs.push(await subscribe(n.url, [topic]));
            subs.push(await subscribe(n.url, [other, topic]));
        }
        try {
            const nodes = [A, B, A, C, B, A, B, B, C, A, A, B];
            const sent = []; // [id, data] in the order acknowledged (one at a time)
            for (const [i, n] of nodes.entries()) {
                const data = `fan-${i}-from-${n.name}`;
                sent.push([await pub(n.url, { topic, data }), data]);
            }
            assertIncreasing(sent.map(([id]) => id), 'ids of publishes made one after another on A, B and C');
            const marker = `fan-marker-${Date.now()}`;
            await pub(B.url, { topic, data: marker });
            await waitMarker(subs, marker);
            for (const [i, s] of subs.entries()) {
                assert.deepEqual(before_(s, marker), sent, `subscriber #${i} (on ${[A, B, C][i >> 1].name})`);
            }
        } finally {
            for (const s of subs) s.close();
        }
    });

    test('64 concurrent publishers over three nodes: every subscriber gets every acknowledged event, once, in one order', T, async () => {
        const topics = [0, 1, 2, 3].map((i) => uniqueTopic(`load${i}`));
        const nodes = [A, B, C];
        // On each node: two streams on every topic, one on the first topic only.
        const all = [];
        const single = [];
        for (const n of nodes) {
            all.push(await subscribe(n.url, topics), await subscribe(n.url, topics));
            single.push(await subscribe(n.url, [topics[0]]));
        }
        const PUBLISHERS = 64;
        const EVENTS = 2000;
        const acked = []; // { id, data, topic, node, publisher }
        const refused = [];
        const perPublisher = [];
        const started = Date.now();
        try {
            await withTimeout(Promise.all(Array.from({ length: PUBLISHERS }, async (_, w) => {
                const n = nodes[w % nodes.length];
                const p = keepAlivePublisher(n.url);
                const mine = [];
                perPublisher[w] = mine;
                try {
                    for (let k = w; k < EVENTS; k += PUBLISHERS) {
                        const topic = topics[k % topics.length];
                        const data = `load-${k}-p${w}`;
                        const r = await p.post({ topic, data });
                        if (r.status === 200) {
                            acked.push({ id: r.id, data, topic, node: n.name, publisher: w });
                            mine.push(r.id);
                        } else {
                            refused.push(`${n.name} ${data}: ${r.status} ${r.body}`);
                        }
                    }
                } finally {
                    p.close();
                }
            })), 60000, `${EVENTS} publishes by ${PUBLISHERS} publishers`);
            const publishMs = Date.now() - started;
            assert.deepEqual(refused.slice(0, 5), [], `${refused.length} of ${EVENTS} publishes were refused by a healthy cluster`);
            assert.equal(acked.length, EVENTS);
            console.log(`# ${EVENTS} events by ${PUBLISHERS} publishers over 3 nodes in ${publishMs} ms`);

            // Ids: decimal, unique, and each publisher's increasing (it waited for each 200).
            const byId = new Map();
            for (const e of acked) {
                assert.match(e.id, /^\d+$/, `id ${JSON.stringify(e.id)} of ${e.data}`);
                assert.ok(!byId.has(e.id), `id ${e.id} was answered twice: to ${byId.get(e.id)?.data} and ${e.data}`);
                byId.set(e.id, e);
            }
            for (const [w, ids] of perPublisher.entries()) assertIncreasing(ids, `ids answered to publisher ${w} (one publish after another)`);

            // The cluster's order is the ids' order; every stream on every node has it.
            const expected = [...byId.keys()].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
            const expectedFirst = expected.filter((id) => byId.get(id).topic === topics[0]);
            const marker = `load-marker-${Date.now()}`;
            await pub(A.url, { topic: topics[0], data: marker });
            await waitMarker([...all, ...single], marker, 60000);
            for (const [i, s] of all.entries()) {
                const got = before_(s, marker);
                const label = `stream #${i} on ${nodes[i >> 1].name} (all topics)`;
                assertSameSequence(got.map(([id]) => id), expected, label);
                for (const [id, data] of got) assert.equal(data, byId.get(id).data, `${label}: data of ${id}`);
            }
            for (const [i, s] of single.entries()) {
                assertSameSequence(before_(s, marker).map(([id]) => id), expectedFirst, `stream on ${nodes[i].name} (first topic only)`);
            }
        } finally {
            for (const s of [...all, ...single]) s.close();
        }
    });

    test('a publisher-supplied id is unique cluster-wide: 409 on whichever node sees it again', T, async () => {
        const topic = uniqueTopic('own-id');
        const s = await subscribe(C.url, [topic]);
        try {
            const own = `order-${process.pid}-${Date.now()}`;
            const first = await publish(A.url, { topic, data: 'first', id: own });
            assert.equal(first.status, 200, `the first publish of id ${own} on A: ${first.status} ${first.body}`);
            assert.equal(first.body.trim(), own, 'a publisher-supplied id is answered as given');
            for (const [n, fields] of [[B, { topic, data: 'again on B', id: own }], [C, { topic: uniqueTopic('elsewhere'), data: 'again on C, another topic', id: own }], [A, { topic, data: 'again on A', id: own }]]) {
                const dup = await publish(n.url, fields);
                assertJsonError(dup, 409, `id ${own} published again on ${n.name}`);
            }
            // JSON publishes too.
            const dupJson = await publish(B.url, { topic, data: 'json again', id: own }, { json: true });
            assertJsonError(dupJson, 409, `id ${own} published again as JSON on B`);

            // A decimal id ahead of the cluster's counter: the ids the cluster assigns later
            // never take it.
            const last = BigInt(await pub(B.url, { topic, data: 'counter' }));
            const ahead = String(last + 3n);
            const r = await publish(A.url, { topic, data: 'ahead', id: ahead });
            assert.equal(r.status, 200, `publishing with the id ${ahead} (3 past the counter): ${r.status} ${r.body}`);
            const assigned = [];
            for (let i = 0; i < 8; i++) assigned.push(await pub([A, B, C][i % 3].url, { topic, data: `after-ahead-${i}` }));
            assert.ok(!assigned.includes(ahead), `the cluster assigned ${ahead}, an id a publisher already used: ${assigned}`);
            assertIncreasing(assigned, 'ids assigned after a decimal publisher id');
            const dupAhead = await publish(B.url, { topic, data: 'ahead again', id: ahead });
            assertJsonError(dupAhead, 409, `id ${ahead} published again on B`);

            const marker = `own-marker-${Date.now()}`;
            await pub(B.url, { topic, data: marker });
            await waitMarker([s], marker);
            const got = before_(s, marker);
            assert.deepEqual(got.map(([, d]) => d), ['first', 'counter', 'ahead', ...assigned.map((_, i) => `after-ahead-${i}`)],
                'what a subscriber on C received (each accepted event once, no refused one)');
            assert.equal(got[0][0], own);
            assert.equal(got[2][0], ahead);
        } finally {
            s.close();
        }
    });
});

describe('cluster: resume on any node', () => {
    test('a client of A resumes on B across two topics: exactly what it missed, in order, Last-Event-ID echoed', T, async () => {
        const t1 = uniqueTopic('r1');
        const t2 = uniqueTopic('r2');
        const t3 = uniqueTopic('r3'); // not followed
        const sent = []; // [id, data, topics]
        const send = async (n, topics, data) => { sent.push([await pub(n.url, { topic: topics, data }), data, topics]); };
        const follows = (topics) => topics.includes(t1) || topics.includes(t2);

        const s = await subscribe(A.url, [t1, t2]);
        await send(A, [t1], 'a1');
        await send(B, [t2], 'b1');
        await send(C, [t3], 'c1-unfollowed');
        await send(B, [t1, t2], 'b2-both');
        await send(A, [t2, t3], 'a2');
        const seen = sent.filter(([, , t]) => follows(t));
        await waitUntil(() => s.events.length >= seen.length || s.ended, { ms: 10000, what: `${seen.length} events on A` });
        s.close();
        assert.deepEqual(s.events.map((e) => [e.id, e.data]), seen.map(([id, d]) => [id, d]), 'the live stream on A');
        const lastSeen = s.events.at(-1).id;

        // Missed while away: published on B (and C), some on the unfollowed topic.
        const cut = sent.length;
        await send(B, [t1], 'b3');
        await send(B, [t3], 'b4-unfollowed');
        await send(C, [t2], 'c2');
        await send(B, [t2, t1], 'b5-both');
        await send(A, [t1], 'a3');
        const missed = sent.slice(cut).filter(([, , t]) => follows(t)).map(([id, d]) => [id, d]);

        for (const [n, how] of [[B, 'header'], [C, 'query']]) {
            const opts = how === 'header'
                ? { headers: { 'Last-Event-ID': lastSeen } }
                : { query: { lastEventID: lastSeen } };
            const r = await resumeUpToMarker(n, [t1, t2], opts);
            assert.equal(r.header, lastSeen, `the Last-Event-ID response header on ${n.name} (resume by ${how})`);
            assert.deepEqual(r.events, missed, `the replay on ${n.name} after ${lastSeen} (by ${how})`);
        }
        // From the middle of the first part, on C: the rest of it and all that was missed.
        const mid = seen[1][0];
        const r = await resumeUpToMarker(C, [t2, t1], { headers: { 'Last-Event-ID': mid } });
        assert.equal(r.header, mid);
        assert.deepEqual(r.events, [...seen.slice(2).map(([id, d]) => [id, d]), ...missed], `the replay on C after ${mid}`);
    });

    test('`earliest` and unknown ids are answered as on the memory store', T, async () => {
        const t1 = uniqueTopic('e1');
        const t2 = uniqueTopic('e2');
        const script = [[[t1], 'x1'], [[t2], 'x2'], [[t1, t2], 'x3'], [[t1], 'x4']];
        const mem = await startHerald({ env: clusterEnv() });
        try {
            const nodes = [A, B, C];
            for (const [i, [topics, data]] of script.entries()) {
                await pub(nodes[i % 3].url, { topic: topics, data });
                await publishOk(mem.url, { topic: topics, data });
            }
            for (const from of ['earliest', 'no-such-id', '999999999999999999', '0']) {
                const want = await resumeUpToMarker(mem, [t1, t2], { headers: { 'Last-Event-ID': from } });
                assert.equal(want.header, 'earliest', `the memory store's header for ${from}`);
                for (const n of nodes) {
                    const got = await resumeUpToMarker(n, [t1, t2], { headers: { 'Last-Event-ID': from } });
                    assert.equal(got.header, want.header, `the Last-Event-ID response header on ${n.name} for ${from}`);
                    assert.deepEqual(got.events.map(([, d]) => d), want.events.map(([, d]) => d), `the replay on ${n.name} for ${from}`);
                }
            }
        } finally {
            await kill9(mem);
        }
    });

    test('retention lives in Redis: max_events 5 on every node, 20 published on A, a resume on B from the first gets `earliest` and the 5 newest', T, async () => {
        const env = { HERALD_HISTORY_MAX_EVENTS: '5' };
        const url = redis.url(3);
        const [R1, R2] = await Promise.all([
            scope.node(url, { name: 'ret-a', env }),
            scope.node(url, { name: 'ret-b', env }),
        ]);
        const topic = uniqueTopic('ret');
        const sent = [];
        for (let i = 1; i <= 20; i++) sent.push([await pub(R1.url, { topic, data: `ret-${i}` }), `ret-${i}`]);
        const newest = sent.slice(15);

        let r = await resumeUpToMarker(R2, [topic], { headers: { 'Last-Event-ID': sent[0][0] } });
        assert.equal(r.header, 'earliest', 'a resume from a dropped id');
        assert.deepEqual(r.events, newest, 'a resume from the first id replays the 5 retained');

        r = await resumeUpToMarker(R2, [topic], { headers: { 'Last-Event-ID': 'earliest' } });
        assert.equal(r.header, 'earliest');
        assert.deepEqual(r.events, newest, '`earliest` replays the 5 retained');

        // The oldest retained is still known: nothing after it was dropped.
        r = await resumeUpToMarker(R2, [topic], { headers: { 'Last-Event-ID': sent[15][0] } });
        assert.equal(r.header, sent[15][0], 'a resume from the oldest retained id');
        assert.deepEqual(r.events, sent.slice(16));
        // The newest dropped one is no longer known.
        r = await resumeUpToMarker(R2, [topic], { headers: { 'Last-Event-ID': sent[14][0] } });
        assert.equal(r.header, 'earliest', 'a resume from the newest dropped id');
        assert.deepEqual(r.events, newest);
    });
});

describe('cluster: databases', () => {
    test('clusters on /1 and /2 of one Redis do not see each other\'s events, Pub/Sub included', T, async () => {
        const [X1a, X1b, X2] = await Promise.all([
            scope.node(redis.url(1), { name: 'db1-a' }),
            scope.node(redis.url(1), { name: 'db1-b' }),
            scope.node(redis.url(2), { name: 'db2' }),
        ]);
        const topic = uniqueTopic('db');
        const s1a = await subscribe(X1a.url, [topic]);
        const s1b = await subscribe(X1b.url, [topic]);
        const s2 = await subscribe(X2.url, [topic]);
        try {
            const one = [];
            const two = [];
            for (let i = 0; i < 4; i++) {
                one.push(await pub([X1a, X1b][i % 2].url, { topic, data: `db1-${i}` }));
                two.push(await pub(X2.url, { topic, data: `db2-${i}` }));
            }
            // The same publisher id on both: each database has its own id space.
            const own = `shared-${process.pid}`;
            for (const n of [X1a, X2]) {
                const r = await publish(n.url, { topic, data: `own-${n.name}`, id: own });
                assert.equal(r.status, 200, `id ${own} on ${n.name}: ${r.status} ${r.body}`);
            }
            const marker = `db-marker-${Date.now()}`;
            await pub(X1b.url, { topic, data: marker });
            await pub(X2.url, { topic, data: marker });
            await waitMarker([s1a, s1b, s2], marker);
            const want1 = ['db1-0', 'db1-1', 'db1-2', 'db1-3', 'own-db1-a'];
            const want2 = ['db2-0', 'db2-1', 'db2-2', 'db2-3', 'own-db2'];
            assert.deepEqual(before_(s1a, marker).map(([, d]) => d), want1, 'live on /1 (node db1-a)');
            assert.deepEqual(before_(s1b, marker).map(([, d]) => d), want1, 'live on /1 (node db1-b)');
            assert.deepEqual(before_(s2, marker).map(([, d]) => d), want2, 'live on /2');

            // History too.
            const h1 = await resumeUpToMarker(X1b, [topic], { headers: { 'Last-Event-ID': 'earliest' } });
            assert.deepEqual(h1.events.map(([, d]) => d), [...want1, marker], 'history on /1');
            const h2 = await resumeUpToMarker(X2, [topic], { headers: { 'Last-Event-ID': 'earliest' } });
            assert.deepEqual(h2.events.map(([, d]) => d), [...want2, marker], 'history on /2');
            // Database 0's cluster saw none of it.
            const h0 = await resumeUpToMarker(A, [topic], { headers: { 'Last-Event-ID': 'earliest' } });
            assert.deepEqual(h0.events, [], 'history on /0');
        } finally {
            for (const s of [s1a, s1b, s2]) s.close();
        }
    });
});

describe('cluster: a Redis that cannot be used at start', () => {
    test('a wrong or missing password: exit 1, the URL named, the password never shown', T, async () => {
        const secret = 'S3cret-Pass-x7';
        const wrong = 'Wr0ng-Pass-q9';
        const locked = await scope.redis({ password: secret });
        for (const [label, url, hidden] of [
            ['a wrong password', locked.url(0, { password: wrong }), [wrong, secret]],
            ['no password', locked.url(0, { password: null }), [secret]],
        ]) {
            const r = await expectRefusal(nodeArgs(url, { name: 'refused' }), { env: clusterEnv() });
            assertRefused(r, [`127.0.0.1:${locked.port}`], label);
            assert.equal(r.code, 1, `${label}: exit status; output:\n${r.output}`);
            for (const h of hidden) assert.ok(!r.output.includes(h), `${label}: the output shows the password ${h}:\n${r.output}`);
            assert.ok(!r.output.includes(encodeURIComponent(wrong)));
        }
        // The right password: the node serves, and never prints it either.
        const n = await scope.node(locked.url(0), { name: 'with-password' });
        const topic = uniqueTopic('pw');
        const s = await subscribe(n.url, [topic]);
        try {
            const id = await pub(n.url, { topic, data: 'behind a password' });
            await waitUntil(() => s.events.length >= 1, { ms: 10000, what: 'the event on the passworded node' });
            assert.equal(s.events[0].id, id);
        } finally {
            s.close();
        }
        for (const path of ['/healthz', '/readyz', '/topics', '/metrics', '/status', '/cluster']) {
            const r = await request(`${n.url}${path}`);
            assert.ok(!r.body.includes(secret), `${path} shows the password: ${r.body.slice(0, 2000)}`);
        }
        assert.ok(!n.output().includes(secret), `the node's log shows the password:\n${n.output()}`);
    });

    test('an unreachable address: exit 1, the URL named, the password never shown', T, async () => {
        const port = await closedPort();
        const secret = 'Unre4chable-pw';
        const url = `redis://:${secret}@127.0.0.1:${port}/0`;
        const started = Date.now();
        const r = await expectRefusal(nodeArgs(url, { name: 'unreachable' }), { env: clusterEnv({ HERALD_STORE_TIMEOUT_MS: '500' }) });
        const ms = Date.now() - started;
        assertRefused(r, [`127.0.0.1:${port}`], 'an unreachable Redis');
        assert.equal(r.code, 1, `exit status; output:\n${r.output}`);
        assert.ok(!r.output.includes(secret), `the refusal shows the password:\n${r.output}`);
        assert.ok(ms < 10000, `the refusal took ${ms} ms`);
    });
});

// Resumes on node `n` with `opts` (headers / query), publishes a marker on a topic of its
// own that the stream also follows, and returns { header, events: [[id, data]...] } of
// what came before the marker.
async function resumeUpToMarker(n, topics, { headers = {}, query = {} } = {}) {
    const markerTopic = uniqueTopic('marker');
    const s = await openStream(n.url, eventsPath([...topics, markerTopic], query), { headers });
    try {
        assert.equal(s.status, 200, `resume on ${n.name}: status ${s.status}`);
        const marker = `marker-${markerTopic}`;
        await waitUntil(() => s.body.includes('retry:') || s.ended, { ms: 10000, what: 'the retry line' });
        const id = await pub(n.url, { topic: markerTopic, data: marker });
        await waitMarker([s], marker);
        const i = s.events.findIndex((e) => e.data === marker);
        assert.equal(s.events[i].id, id, 'the marker arrived with another id than its publish answered');
        return { header: s.headers['last-event-id'], events: before_(s, marker) };
    } finally {
        s.close();
    }
}

