// What history costs, against the real binary: topics that retain nothing and have no
// subscriber are forgotten (history.max_events = 0), the hub-wide bounds history.max_topics
// and history.max_total_bytes (memory and SQLite, restart included) with their /metrics
// figures, a resume across an evicted range answered `earliest`, and /topics in pages
// (limit, after, prefix, next) with its bad values refused.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startHerald, request } from './lib/harness.mjs';
import { assertJsonError, getMetrics, publishOk, subscribe, uniqueTopic, waitUntil } from './lib/util.mjs';
import { readUpToSentinel, stopClean, cleanupScope } from './lib/store.mjs';

const T = { timeout: 60000 };
const { tempDir } = cleanupScope();

// Starts a hub that publishes the `TOPIC DATA` lines of its standard input.
function startFed(env, args = []) {
    return startHerald({ env, args: ['--stdin', ...args], stdin: 'pipe', threads: 2 });
}

// Publishes `lines` through the hub's standard input and waits until all are published.
async function feed(h, lines) {
    const before = (await getMetrics(h.url)).sum('herald_events_published_total');
    h.proc.stdin.write(lines.map((l) => `${l}\n`).join(''));
    let now = before;
    await waitUntil(async () => {
        now = (await getMetrics(h.url)).sum('herald_events_published_total');
        return now >= before + lines.length;
    }, { ms: 30000, every: 50, what: `${lines.length} stdin lines published`, describe: () => `${now - before} published` });
}

// One page of /topics, parsed; asserts a 200 with the expected shape.
async function topicsPage(base, query = '') {
    const r = await request(`${base}/topics${query ? `?${query}` : ''}`);
    assert.equal(r.status, 200, `/topics?${query} answered ${r.status}: ${r.body.slice(0, 200)}`);
    const body = JSON.parse(r.body);
    assert.ok(Array.isArray(body.topics), `/topics?${query} has no "topics" array`);
    return body;
}

// Every topic, page by page with `after`; checks the cursor contract on the way.
async function walkTopics(base, { limit, prefix } = {}) {
    const all = [];
    let after = null;
    for (let pages = 0; ; pages++) {
        assert.ok(pages < 1000, 'the walk does not end');
        const q = new URLSearchParams();
        if (limit) q.set('limit', String(limit));
        if (prefix !== undefined) q.set('prefix', prefix);
        if (after !== null) q.set('after', after);
        const body = await topicsPage(base, q.toString());
        assert.ok(body.topics.length <= (limit ?? 1000), `a page of ${body.topics.length} topics (limit ${limit})`);
        all.push(...body.topics);
        if (!('next' in body)) break;
        assert.ok(body.topics.length > 0, '`next` on an empty page');
        assert.equal(body.next, body.topics.at(-1).topic, '`next` is the last topic of the page');
        after = body.next;
    }
    return all;
}

const names = (entries) => entries.map((t) => t.topic);
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

describe('topics that retain nothing cost nothing', () => {
    test('50,000 topics published with history.max_events = 0 leave /topics and the store empty', T, async () => {
        const h = await startFed({ HERALD_HISTORY_MAX_EVENTS: '0' });
        try {
            const lines = [];
            for (let i = 0; i < 50000; i++) lines.push(`gone-${i} x`);
            await feed(h, lines);
            const body = await topicsPage(h.url, 'limit=10000');
            assert.deepEqual(names(body.topics), [], 'topics without history or subscribers are listed');
            assert.equal(body.next, undefined);
            const m = await getMetrics(h.url);
            assert.ok(m.has('herald_history_topics'), 'no herald_history_topics in /metrics');
            assert.equal(m.sum('herald_history_topics'), 0);
            assert.equal(m.sum('herald_history_bytes'), 0);
            // A topic with a subscriber is listed while it has one, with the last event it saw.
            const t = uniqueTopic('followed');
            const s = await subscribe(h.url, [t]);
            try {
                const id = await publishOk(h.url, { topic: t, data: 'seen' });
                await waitUntil(async () => (await topicsPage(h.url)).topics.some((e) => e.topic === t && e.lastEventId === id),
                    { ms: 5000, what: `/topics to list ${t} with its last id` });
            } finally {
                s.close();
            }
            await waitUntil(async () => (await topicsPage(h.url)).topics.length === 0,
                { ms: 5000, what: '/topics to be empty once the subscriber left' });
        } finally {
            await h.stop();
        }
    });
});

describe('history.max_topics', () => {
    for (const store of ['memory', 'sqlite']) {
        test(`${store}: 5,000 topics with max_topics = 1000 leave the newest 1000, evictions counted`, T, async () => {
            const env = { HERALD_HISTORY_MAX_TOPICS: '1000', HERALD_STORE_SYNC: 'normal' };
            const args = [];
            if (store === 'sqlite') args.push('--store', `sqlite:${path.join(tempDir('herald-topics-'), 'h.db')}`);
            let h = await startFed(env, args);
            const expected = [];
            for (let i = 4000; i < 5000; i++) expected.push(`t-${String(i).padStart(5, '0')}`);
            expected.sort(byName);
            const check = async (what) => {
                const all = await walkTopics(h.url, { limit: 300 });
                assert.equal(all.length, 1000, `${what}: ${all.length} topics retained`);
                assert.deepEqual(names(all), expected, `${what}: not the 1000 newest topics`);
                assert.ok(all.every((t) => t.retained === 1), `${what}: each keeps its event`);
                const m = await getMetrics(h.url);
                assert.equal(m.sum('herald_history_topics'), 1000, `${what}: herald_history_topics`);
                return m;
            };
            try {
                const lines = [];
                for (let i = 0; i < 5000; i++) lines.push(`t-${String(i).padStart(5, '0')} e${i}`);
                await feed(h, lines);
                const m = await check('after publishing');
                assert.equal(m.sum('herald_history_evictions_total', /reason="max_topics"/), 4000);
                assert.equal(m.sum('herald_history_evictions_total', /reason="max_total_bytes"/), 0);
                if (store === 'sqlite') {
                    await stopClean(h);
                    h = await startFed(env, args);
                    await check('after a restart');
                }
            } finally {
                await h.stop();
            }
        });
    }
});

describe('history.max_total_bytes', () => {
    for (const store of ['memory', 'sqlite']) {
        test(`${store}: the total stays under the bound and the oldest events go first`, T, async () => {
            const CAP = 200000;
            const env = { HERALD_HISTORY_MAX_TOTAL_BYTES: String(CAP), HERALD_STORE_SYNC: 'normal' };
            const args = [];
            if (store === 'sqlite') args.push('--store', `sqlite:${path.join(tempDir('herald-bytes-'), 'h.db')}`);
            let h = await startFed(env, args);
            const TOPICS = 20;
            const N = 2000;
            const topic = (i) => `b-${i % TOPICS}`;
            const pad = 'p'.repeat(300);
            const check = async (what) => {
                const m = await getMetrics(h.url);
                const bytes = m.sum('herald_history_bytes');
                assert.ok(bytes > 0 && bytes <= CAP, `${what}: herald_history_bytes ${bytes} (bound ${CAP})`);
                // (The sentinels of the replays below have topics of their own.)
                const all = (await walkTopics(h.url)).filter((t) => t.topic.startsWith('b-'));
                assert.ok(all.length > 0 && all.length <= TOPICS, `${what}: ${all.length} topics`);
                const retained = all.reduce((a, t) => a + t.retained, 0);
                // What remains is exactly the newest events, in order, over every topic.
                const r = await readUpToSentinel(h.url, Array.from({ length: TOPICS }, (_, i) => `b-${i}`), { from: 'earliest' });
                const seqs = r.events.map((e) => Number(/^s(\d+) /.exec(e.data)[1]));
                assert.equal(seqs.length, retained, `${what}: the replay and /topics disagree`);
                assert.ok(seqs.length > 0 && seqs.length < N, `${what}: ${seqs.length} events retained`);
                assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, k) => N - seqs.length + k),
                    `${what}: not the newest events: ${seqs.slice(0, 5)}...`);
                return m;
            };
            try {
                const lines = [];
                for (let i = 0; i < N; i++) lines.push(`${topic(i)} s${i} ${pad}`);
                await feed(h, lines);
                const m = await check('after publishing');
                assert.ok(m.sum('herald_history_evictions_total', /reason="max_total_bytes"/) > 0, 'no eviction counted');
                assert.equal(m.sum('herald_history_evictions_total', /reason="max_topics"/), 0);
                if (store === 'sqlite') {
                    await stopClean(h);
                    h = await startFed(env, args);
                    await check('after a restart');
                }
            } finally {
                await h.stop();
            }
        });
    }
});

describe('a resume across evicted events', () => {
    test('the Last-Event-ID header says `earliest`; over topics that lost nothing it keeps the id', T, async () => {
        const h = await startHerald({ env: { HERALD_HISTORY_MAX_TOPICS: '2' } });
        try {
            const keep = uniqueTopic('keep');
            const lost = uniqueTopic('lost');
            const mark = await publishOk(h.url, { topic: keep, data: 'mark' });
            await publishOk(h.url, { topic: lost, data: 'gone' });
            const k2 = await publishOk(h.url, { topic: keep, data: 'k2' });
            // A third topic: `lost`, whose newest event is the oldest, is forgotten.
            const other = uniqueTopic('other');
            await publishOk(h.url, { topic: other, data: 'o' });
            const both = await readUpToSentinel(h.url, [keep, lost], { from: mark, sentinelTopic: keep });
            assert.equal(both.header, 'earliest');
            assert.deepEqual(both.events.map((e) => [e.id, e.data]), [[k2, 'k2']]);
            const one = await readUpToSentinel(h.url, [keep], { from: mark, sentinelTopic: keep });
            assert.equal(one.header, mark);
            assert.deepEqual(one.events.map((e) => [e.id, e.data]), [[k2, 'k2'], [both.sentinel.id, both.sentinel.data]]);
            assert.equal((await getMetrics(h.url)).sum('herald_history_evictions_total', /reason="max_topics"/), 1);
        } finally {
            await h.stop();
        }
    });
});

describe('/topics in pages', () => {
    test('limit and after walk every topic exactly once; prefix filters; next only when more remain', T, async () => {
        const h = await startFed({});
        const streams = [];
        try {
            const lines = [];
            for (let i = 0; i < 2500; i++) lines.push(`${i % 2 ? 'odd' : 'even'}/${String(i).padStart(4, '0')} x`);
            await feed(h, lines);
            // Topics with a subscriber and no history are listed too, in their place.
            for (const t of ['even/0000a', 'zz-followed']) streams.push(await subscribe(h.url, [t]));
            const want = [...lines.map((l) => l.split(' ')[0]), 'even/0000a', 'zz-followed'].sort(byName);
            // The hub's own $sys/connections has history too: not the users' topics.
            const users = (entries) => entries.filter((t) => !t.topic.startsWith('$sys/'));

            const first = await topicsPage(h.url);
            assert.equal(first.topics.length, 1000, 'the default page is 1000 topics');
            assert.equal(first.next, first.topics.at(-1).topic);
            const one = await topicsPage(h.url, 'limit=1&prefix=even%2F');
            assert.deepEqual(names(one.topics), ['even/0000']);
            assert.equal(one.next, 'even/0000');
            for (const limit of [7, 1000, 10000]) {
                const all = users(await walkTopics(h.url, { limit }));
                assert.deepEqual(names(all), want, `limit=${limit}: not every topic once, in name order`);
            }
            const whole = await topicsPage(h.url, 'limit=10000');
            assert.equal(whole.next, undefined, '`next` with nothing left');
            const followed = whole.topics.find((t) => t.topic === 'zz-followed');
            assert.deepEqual(followed, { topic: 'zz-followed', subscribers: 1, retained: 0, lastEventId: null });
            const entry = whole.topics.find((t) => t.topic === 'odd/0001');
            assert.equal(entry.retained, 1);
            assert.equal(entry.subscribers, 0);
            assert.equal(typeof entry.lastEventId, 'string');

            const odd = await walkTopics(h.url, { limit: 333, prefix: 'odd/' });
            assert.deepEqual(names(odd), want.filter((t) => t.startsWith('odd/')));
            const narrow = await topicsPage(h.url, `prefix=${encodeURIComponent('even/000')}`);
            assert.deepEqual(names(narrow.topics), ['even/0000', 'even/0000a', 'even/0002', 'even/0004', 'even/0006', 'even/0008']);
            assert.deepEqual((await topicsPage(h.url, 'prefix=nothing')).topics, []);
            const tail = await topicsPage(h.url, `after=${encodeURIComponent('odd/2497')}`);
            assert.deepEqual(names(tail.topics), ['odd/2499', 'zz-followed']);
            assert.equal(tail.next, undefined);

            for (const bad of ['0', '10001', 'abc', '-1', '', '1.5', '99999999999999999999999']) {
                const r = await request(`${h.url}/topics?limit=${encodeURIComponent(bad)}`);
                assertJsonError(r, 400, `limit=${bad}`);
                assert.match(JSON.parse(r.body).error, /limit must be an integer from 1 to 10000/);
            }
        } finally {
            for (const s of streams) s.close();
            await h.stop();
        }
    });
});
