// Replays in pages: a resume from `earliest` over a history many replay pages long (about
// 8 MB of events, read from the SQLite file or from Redis, not from memory) by a client
// that stops reading while live events are published, then reads on. It gets every event
// once, in order, the replay first and the live events after it, on SQLite and on a node
// of a Redis cluster. And when retention drops events between two pages of a replay, the
// stream ends after what it had, and its client's resume is told `earliest`.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { SseParser, publish } from './lib/harness.mjs';
import { publishOk, subscribe, uniqueTopic, waitUntil } from './lib/util.mjs';
import { makeTempDir, removeDir, startStore, stopClean } from './lib/store.mjs';
import { clusterScope } from './lib/redis.mjs';

const T = { timeout: 180000 };
const EVENTS = 4000;
const PAD = 'x'.repeat(2000);
const LIVE = 20;

// Publishes `n` events of about 2 KB on `topic`, 20 at a time; returns [id, data prefix]
// in history order (the ids these stores generate are increasing decimal positions).
async function fill(base, topic, n = EVENTS) {
    const sent = [];
    for (let i = 0; i < n; i += 20) {
        await Promise.all(Array.from({ length: 20 }, async (_, j) => {
            const r = await publish(base, { topic, data: `h${i + j}-${PAD}` });
            assert.equal(r.status, 200, `publish answered ${r.status}: ${r.body}`);
            sent.push([r.body.trim(), `h${i + j}-`]);
        }));
    }
    return sent.sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1));
}

// Opens a resume from `earliest` whose reading stops at once (the response is paused, so
// the socket fills and the server holds the rest), runs `meanwhile()` (by default: publishes
// LIVE events), then reads on until the last live event arrives or the stream ends.
// Resolves to { headers, events, live, ended }.
async function stalledResume(base, topic, meanwhile = null) {
    const parser = new SseParser();
    const req = http.get(`${base}/events?topic=${encodeURIComponent(topic)}`, {
        headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'earliest' },
        agent: false,
    });
    const res = await new Promise((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    res.pause();
    res.setEncoding('utf8');
    let ended = false;
    res.on('end', () => { ended = true; });
    res.on('close', () => { ended = true; });
    const live = [];
    if (meanwhile) {
        await meanwhile();
    } else {
        for (let i = 0; i < LIVE; i++) live.push(await publishOk(base, { topic, data: `live${i}` }));
    }
    res.on('data', (d) => parser.push(d));
    res.resume();
    try {
        await waitUntil(() => (live.length > 0 && parser.events.some((e) => e.id === live.at(-1))) || ended, {
            ms: 60000,
            what: 'the last live event after the whole replay, or the end of the stream',
            describe: () => `${parser.events.length} events, ended=${ended}`,
        });
    } finally {
        req.destroy();
    }
    return { headers: res.headers, events: parser.events, live, ended };
}

function check({ headers, events, live }, sent) {
    assert.equal(headers['last-event-id'], 'earliest');
    const got = events.map((e) => e.id);
    const want = [...sent.map(([id]) => id), ...live];
    assert.equal(got.length, want.length, `got ${got.length} events, want ${want.length}`);
    // Compared in slices, so that a failure names where the order broke.
    for (let i = 0; i < want.length; i += 500) {
        assert.deepEqual(got.slice(i, i + 500), want.slice(i, i + 500), `events ${i}..${i + 499}`);
    }
    for (let i = 0; i < EVENTS; i++) {
        assert.ok(events[i].data.startsWith(sent[i][1]), `event ${i} carries ${events[i].data.slice(0, 12)}, not ${sent[i][1]}`);
    }
}

describe('replay pages: SQLite', () => {
    const dir = makeTempDir('herald-pages-');
    after(() => removeDir(dir));

    test('a resume many pages long, read from the file, comes whole, then the live events', T, async () => {
        // A small cache: the replay reads the file.
        const h = await startStore(`${dir}/herald.db`, {
            env: { HERALD_HISTORY_MAX_BYTES: '100000000', HERALD_STORE_CACHE_EVENTS: '16' },
        });
        try {
            const topic = uniqueTopic('pages');
            const ids = await fill(h.url, topic);
            check(await stalledResume(h.url, topic), ids);
        } finally {
            await stopClean(h);
        }
    });

    test('a gap between two pages ends the stream; the resume after it is told earliest', T, async () => {
        // 3,000 events retained; the stream's parked live events may pass the 1 MiB default.
        const h = await startStore(`${dir}/gap.db`, {
            env: {
                HERALD_HISTORY_MAX_BYTES: '100000000',
                HERALD_HISTORY_MAX_EVENTS: '3000',
                HERALD_STORE_CACHE_EVENTS: '16',
                HERALD_SERVER_SLOW_CLIENT_BYTES: '67108864',
            },
        });
        try {
            const topic = uniqueTopic('gap');
            const sent = await fill(h.url, topic, 3000);
            // While the client does not read, the history turns over whole: the next page
            // the stream reads starts after events retention has dropped.
            const r = await stalledResume(h.url, topic, () => fill(h.url, topic, 3000));
            assert.ok(r.ended, `the stream did not end; it got ${r.events.length} events`);
            const got = r.events.map((e) => e.id);
            assert.ok(got.length > 0 && got.length < sent.length, `got ${got.length} events`);
            // What it got is the history's beginning, in order, and nothing live.
            assert.deepEqual(got, sent.slice(0, got.length).map(([id]) => id));
            const again = await subscribe(h.url, [topic], { headers: { 'Last-Event-ID': got.at(-1) } });
            try {
                assert.equal(again.headers['last-event-id'], 'earliest');
            } finally {
                again.close();
            }
        } finally {
            await stopClean(h);
        }
    });
});

describe('replay pages: cluster', () => {
    const scope = clusterScope();

    test('a resume many pages long, read from Redis, comes whole, then the live events', T, async () => {
        const redis = await scope.redis();
        const a = await scope.node(redis.url(0), {
            name: 'pages-a',
            env: { HERALD_HISTORY_MAX_BYTES: '100000000', HERALD_STORE_CACHE_EVENTS: '16' },
        });
        const topic = uniqueTopic('pages');
        const ids = await fill(a.url, topic);
        check(await stalledResume(a.url, topic), ids);
    });
});
