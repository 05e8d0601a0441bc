// Resume: Last-Event-ID header, ?lastEventID=, which one wins, `earliest`, unknown ids,
// the Last-Event-ID response header, replay across several topics in global order, and
// per-topic retention (history.max_events) with `earliest` reported when the id is gone.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from './lib/harness.mjs';
import { subscribe, waitEvents, waitData, publishOk, uniqueTopic } from './lib/util.mjs';

const T = { timeout: 30000 };

// Publishes `n` events data `${prefix}${i}` to `topic`; returns their ids.
async function publishN(base, topic, n, prefix = 'e') {
    const ids = [];
    for (let i = 1; i <= n; i++) ids.push(await publishOk(base, { topic, data: `${prefix}${i}` }));
    return ids;
}

// Opens a resuming stream, publishes one live event, and returns { s, live } once the
// live event arrived, so the test can look at replay + live as one sequence.
async function resumeThenLive(base, topics, opts, liveTopic = topics[0]) {
    const s = await subscribe(base, topics, opts);
    const live = await publishOk(base, { topic: liveTopic, data: 'live' });
    try {
        await s.waitFor(0, 5000, () => s.events.some((e) => e.id === live) || s.ended);
    } catch {
        // asserted below
    }
    assert.ok(s.events.some((e) => e.id === live),
        `the live event ${live} did not arrive after the replay; got ${JSON.stringify(s.events.map((e) => [e.id, e.data]))}`);
    return { s, live };
}

describe('resume', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald();
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('Last-Event-ID header replays what followed, then goes live', T, async () => {
        const topic = uniqueTopic('hdr');
        const ids = await publishN(base, topic, 5);
        const { s, live } = await resumeThenLive(base, [topic], { headers: { 'Last-Event-ID': ids[1] } });
        try {
            assert.equal(s.headers['last-event-id'], ids[1]);
            assert.deepEqual(s.events.map((e) => e.id), [ids[2], ids[3], ids[4], live]);
            assert.deepEqual(s.events.map((e) => e.data), ['e3', 'e4', 'e5', 'live']);
        } finally {
            s.close();
        }
    });

    test('?lastEventID= does the same for clients that cannot set headers', T, async () => {
        const topic = uniqueTopic('query');
        const ids = await publishN(base, topic, 5);
        const { s, live } = await resumeThenLive(base, [topic], { query: { lastEventID: ids[2] } });
        try {
            assert.equal(s.headers['last-event-id'], ids[2]);
            assert.deepEqual(s.events.map((e) => e.id), [ids[3], ids[4], live]);
        } finally {
            s.close();
        }
    });

    test('?lastEventId= (event-source-polyfill) and any other capitalisation resume the same way', T, async () => {
        for (const name of ['lastEventId', 'lasteventid', 'LASTEVENTID']) {
            const topic = uniqueTopic('anycase');
            const ids = await publishN(base, topic, 4);
            const { s, live } = await resumeThenLive(base, [topic], { query: { [name]: ids[1] } });
            try {
                assert.equal(s.headers['last-event-id'], ids[1], `${name}: the resume header`);
                assert.deepEqual(s.events.map((e) => e.id), [ids[2], ids[3], live], `${name}: the replay`);
            } finally {
                s.close();
            }
        }
    });

    test('the header wins over the query parameter', T, async () => {
        const topic = uniqueTopic('wins');
        const ids = await publishN(base, topic, 5);
        const { s, live } = await resumeThenLive(base, [topic], {
            headers: { 'Last-Event-ID': ids[3] }, query: { lastEventID: ids[0] },
        });
        try {
            assert.equal(s.headers['last-event-id'], ids[3]);
            assert.deepEqual(s.events.map((e) => e.id), [ids[4], live]);
        } finally {
            s.close();
        }
    });

    test('the last id replays nothing and goes live', T, async () => {
        const topic = uniqueTopic('last');
        const ids = await publishN(base, topic, 3);
        const { s, live } = await resumeThenLive(base, [topic], { headers: { 'Last-Event-ID': ids[2] } });
        try {
            assert.equal(s.headers['last-event-id'], ids[2]);
            assert.deepEqual(s.events.map((e) => e.id), [live]);
        } finally {
            s.close();
        }
    });

    test('`earliest` replays everything retained and says so', T, async () => {
        const topic = uniqueTopic('earliest');
        const ids = await publishN(base, topic, 4);
        for (const opts of [{ headers: { 'Last-Event-ID': 'earliest' } }, { query: { lastEventID: 'earliest' } }]) {
            const s = await subscribe(base, [topic], opts);
            try {
                await waitEvents(s, 4);
                assert.equal(s.headers['last-event-id'], 'earliest', JSON.stringify(opts));
                assert.deepEqual(s.events.map((e) => e.id), ids);
                assert.deepEqual(s.events.map((e) => e.data), ['e1', 'e2', 'e3', 'e4']);
            } finally {
                s.close();
            }
        }
    });

    test('an unknown id replays everything retained, answered as `earliest`', T, async () => {
        const topic = uniqueTopic('unknown');
        const ids = await publishN(base, topic, 3);
        for (const unknown of ['no-such-id', '999999999999999999', '0']) {
            const s = await subscribe(base, [topic], { headers: { 'Last-Event-ID': unknown } });
            try {
                await waitEvents(s, 3);
                assert.equal(s.headers['last-event-id'], 'earliest', `Last-Event-ID: ${unknown}`);
                assert.deepEqual(s.events.map((e) => e.id), ids, `Last-Event-ID: ${unknown}`);
            } finally {
                s.close();
            }
        }
    });

    test('replay across several topics keeps the global publish order', T, async () => {
        const a = uniqueTopic('mix-a');
        const b = uniqueTopic('mix-b');
        const c = uniqueTopic('mix-c'); // not subscribed
        const plan = [a, b, a, c, b, b, a, c, a, b];
        const ids = [];
        for (let i = 0; i < plan.length; i++) ids.push(await publishOk(base, { topic: plan[i], data: `m${i}` }));
        // Plus one event on both subscribed topics: replayed once.
        ids.push(await publishOk(base, { topic: [a, b], data: 'm10' }));
        plan.push(a);
        const expect = (after) => ids.map((id, i) => ({ id, i })).filter(({ i }) => i > after && plan[i] !== c)
            .map(({ id, i }) => [id, `m${i}`]);
        // From an event of a subscribed topic.
        let r = await resumeThenLive(base, [a, b], { headers: { 'Last-Event-ID': ids[1] } });
        const firstLive = r.live;
        try {
            assert.equal(r.s.headers['last-event-id'], ids[1]);
            assert.deepEqual(r.s.events.map((e) => [e.id, e.data]), [...expect(1), [r.live, 'live']]);
        } finally {
            r.s.close();
        }
        // From `earliest`: every a/b event in order (the live one above included).
        r = await resumeThenLive(base, [b, a], { headers: { 'Last-Event-ID': 'earliest' } }, b);
        try {
            assert.equal(r.s.headers['last-event-id'], 'earliest');
            assert.deepEqual(r.s.events.map((e) => [e.id, e.data]), [...expect(-1), [firstLive, 'live'], [r.live, 'live']]);
        } finally {
            r.s.close();
        }
    });

    test('an id from a topic the subscriber does not follow is still a position in the log', T, async () => {
        const a = uniqueTopic('pos-a');
        const c = uniqueTopic('pos-c');
        const ids = [];
        ids.push(await publishOk(base, { topic: a, data: 'a0' }));
        ids.push(await publishOk(base, { topic: c, data: 'c1' }));
        ids.push(await publishOk(base, { topic: a, data: 'a2' }));
        const { s, live } = await resumeThenLive(base, [a], { headers: { 'Last-Event-ID': ids[1] } });
        try {
            assert.deepEqual(s.events.map((e) => [e.id, e.data]), [[ids[2], 'a2'], [live, 'live']]);
            assert.equal(s.headers['last-event-id'], ids[1]);
        } finally {
            s.close();
        }
    });

    test('a resume on a template or * replays the matching topics', T, async () => {
        const prefix = `https://example.com/${uniqueTopic('tpl')}`;
        const ids = [];
        ids.push(await publishOk(base, { topic: `${prefix}/1`, data: 't1' }));
        ids.push(await publishOk(base, { topic: `${prefix}/1/deep`, data: 'deep' }));
        ids.push(await publishOk(base, { topic: `${prefix}/2`, data: 't2' }));
        const { s, live } = await resumeThenLive(base, [`${prefix}/{id}`], { headers: { 'Last-Event-ID': 'earliest' } }, `${prefix}/3`);
        try {
            assert.deepEqual(s.events.map((e) => [e.id, e.data]), [[ids[0], 't1'], [ids[2], 't2'], [live, 'live']]);
        } finally {
            s.close();
        }
        const star = await subscribe(base, ['*'], { headers: { 'Last-Event-ID': ids[0] } });
        try {
            await waitData(star, 't2');
            assert.deepEqual(star.events.slice(0, 2).map((e) => e.id), [ids[1], ids[2]]);
        } finally {
            star.close();
        }
    });

    test('a stream opened without resume has no replay', T, async () => {
        const topic = uniqueTopic('fresh');
        await publishN(base, topic, 3);
        const { s, live } = await resumeThenLive(base, [topic], {});
        try {
            assert.deepEqual(s.events.map((e) => e.id), [live]);
        } finally {
            s.close();
        }
    });
});

describe('retention', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald({ env: { HERALD_HISTORY_MAX_EVENTS: '5' } });
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0);
    });

    test('only the last max_events are replayed; a trimmed id is answered `earliest`', T, async () => {
        const topic = uniqueTopic('cap');
        const ids = await publishN(base, topic, 10);
        // The first id is gone: all 5 retained are replayed and the header says so.
        let s = await subscribe(base, [topic], { headers: { 'Last-Event-ID': ids[0] } });
        try {
            await waitEvents(s, 5);
            assert.equal(s.headers['last-event-id'], 'earliest');
            assert.deepEqual(s.events.map((e) => e.id), ids.slice(5));
            assert.deepEqual(s.events.map((e) => e.data), ['e6', 'e7', 'e8', 'e9', 'e10']);
        } finally {
            s.close();
        }
        // A retained id resumes exactly.
        s = await subscribe(base, [topic], { headers: { 'Last-Event-ID': ids[6] } });
        try {
            await waitEvents(s, 3);
            assert.equal(s.headers['last-event-id'], ids[6]);
            assert.deepEqual(s.events.map((e) => e.id), ids.slice(7));
        } finally {
            s.close();
        }
        s = await subscribe(base, [topic], { query: { lastEventID: 'earliest' } });
        try {
            await waitEvents(s, 5);
            assert.equal(s.headers['last-event-id'], 'earliest');
            assert.deepEqual(s.events.map((e) => e.id), ids.slice(5));
        } finally {
            s.close();
        }
    });

    test('retention is per topic: another busy topic does not trim this one', T, async () => {
        const quiet = uniqueTopic('quiet');
        const busy = uniqueTopic('busy');
        const quietIds = await publishN(base, quiet, 3, 'q');
        await publishN(base, busy, 12, 'b');
        const { s, live } = await resumeThenLive(base, [quiet], { headers: { 'Last-Event-ID': 'earliest' } });
        try {
            assert.deepEqual(s.events.map((e) => e.id), [...quietIds, live]);
        } finally {
            s.close();
        }
        const both = await subscribe(base, [quiet, busy], { headers: { 'Last-Event-ID': 'earliest' } });
        try {
            await waitEvents(both, 9);
            // quiet: q1..q3 and the live event (4 retained); busy: the last 5 of 12.
            assert.deepEqual(both.events.map((e) => e.data), ['q1', 'q2', 'q3', 'b8', 'b9', 'b10', 'b11', 'b12', 'live']);
        } finally {
            both.close();
        }
    });
});
