// GET /events: response head, the opening retry line, the SSE framing of ids, types and
// multi-line payloads, per-event retry, topic selectors (exact, several, `*`, URI
// templates, none), one delivery per event, keep-alive comments, `$sys/` topics kept out
// of wildcards, private events kept from anonymous subscribers, and the limits on a
// subscription's selectors and templates (with the near-matching template attack).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, openStream, publish, request } from './lib/harness.mjs';
import {
    subscribe, waitEvents, waitData, publishOk, uniqueTopic, eventsPath, escapeRegex, waitUntil,
    assertJsonError, getMetrics,
} from './lib/util.mjs';

const T = { timeout: 30000 };

// Makes the hub publish on $sys/connections and waits until `watcher` received that
// event: a $sys event then precedes anything published next. The hub samples the count
// (at most ten times a second) and announces it when it differs from the last announced
// one, so subscribers are added, one more each time, until the watcher hears of it.
async function churnConnections(base, watcher) {
    const n0 = watcher.events.length;
    const extra = [];
    try {
        for (let i = 0; i < 5 && watcher.events.length === n0; i++) {
            extra.push(await subscribe(base, [uniqueTopic('churn')]));
            await waitUntil(() => watcher.events.length > n0, { ms: 1000 }).catch(() => {});
        }
        assert.ok(watcher.events.length > n0, 'no event on $sys/connections while 5 subscribers joined');
    } finally {
        for (const s of extra) s.close();
    }
}

describe('subscribe', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald({ env: { HERALD_SERVER_RETRY_MS: '1500' } });
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('response head and the opening retry line', T, async () => {
        const s = await openStream(base, eventsPath([uniqueTopic('head')]));
        try {
            assert.equal(s.status, 200);
            assert.match(String(s.headers['content-type']), /^text\/event-stream;\s*charset=utf-8$/i);
            assert.equal(s.headers['cache-control'], 'no-cache');
            assert.equal(s.headers['x-accel-buffering'], 'no');
            await s.waitFor(0, 5000, () => s.body.length >= 'retry: 1500\n'.length);
            assert.ok(s.body.startsWith('retry: 1500\n'), `stream starts with ${JSON.stringify(s.body.slice(0, 40))}`);
            // No blank line after it: an empty block makes several client libraries
            // (extended-eventsource, fetch-event-source) fire an empty message.
            assert.ok(!s.body.startsWith('retry: 1500\n\n'), `the retry line has a blank line of its own: ${JSON.stringify(s.body.slice(0, 40))}`);
            assert.equal(s.parser.retry, 1500);
        } finally {
            s.close();
        }
    });

    test('an event is framed as id, event and data lines and a blank line', T, async () => {
        const topic = uniqueTopic('frame');
        const s = await subscribe(base, [topic]);
        try {
            const typed = await publishOk(base, { topic, data: 'hello', event: 'greeting' });
            const plain = await publishOk(base, { topic, data: 'plain' });
            const [e1, e2] = await waitEvents(s, 2);
            assert.deepEqual(e1, { id: typed, event: 'greeting', data: 'hello', lines: 1 });
            assert.deepEqual(e2, { id: plain, event: null, data: 'plain', lines: 1 });
            assert.match(s.body, new RegExp(`(^|\\n)id: ?${escapeRegex(typed)}\\nevent: ?greeting\\ndata: ?hello\\n\\n`));
            // No `event:` line when the publisher gave no type.
            assert.match(s.body, new RegExp(`(^|\\n)id: ?${escapeRegex(plain)}\\ndata: ?plain\\n\\n`));
            assert.ok(!s.body.includes('\r'), 'the stream uses LF line ends only');
        } finally {
            s.close();
        }
    });

    test('LF, CR and CRLF in a payload each become a new data line', T, async () => {
        const topic = uniqueTopic('newlines');
        const s = await subscribe(base, [topic]);
        try {
            await publishOk(base, { topic, data: 'one\ntwo\rthree\r\nfour' });
            await publishOk(base, { topic, data: 'crlf\r\n\r\nafter-blank' }, { json: true });
            const [e1, e2] = await waitEvents(s, 2);
            assert.equal(e1.data, 'one\ntwo\nthree\nfour');
            assert.equal(e1.lines, 4);
            assert.equal(e2.data, 'crlf\n\nafter-blank');
            assert.equal(e2.lines, 3);
            assert.ok(!s.body.includes('\r'), 'a CR of the payload must not reach the wire');
        } finally {
            s.close();
        }
    });

    test('empty data, blank lines, a trailing newline and leading spaces survive', T, async () => {
        const topic = uniqueTopic('edges');
        const s = await subscribe(base, [topic]);
        const payloads = ['', 'a\n\nb', 'tail\n', ' lead', 'x\n  indented', ':colon', 'data: inner', 'é ✓ 😀'];
        try {
            for (const data of payloads) await publishOk(base, { topic, data });
            const events = await waitEvents(s, payloads.length);
            assert.deepEqual(events.map((e) => e.data), payloads);
            assert.equal(events[0].lines, 1, 'empty data is one empty data line');
        } finally {
            s.close();
        }
    });

    test('a per-event retry is sent with the event', T, async () => {
        const topic = uniqueTopic('retry');
        const s = await subscribe(base, [topic]);
        try {
            const id = await publishOk(base, { topic, data: 'with retry', retry: 2500 });
            const [e] = await waitEvents(s, 1);
            assert.equal(e.id, id);
            assert.equal(e.data, 'with retry');
            assert.equal(s.parser.retry, 2500);
            assert.match(s.body, /(^|\n)retry: ?2500\n/);
        } finally {
            s.close();
        }
    });

    test('an exact topic selector receives only that topic', T, async () => {
        const topic = uniqueTopic('exact');
        const s = await subscribe(base, [topic]);
        try {
            await publishOk(base, { topic: `${topic}-other`, data: 'other' });
            await publishOk(base, { topic: `${topic}/sub`, data: 'sub' });
            await publishOk(base, { topic, data: 'mine' });
            await publishOk(base, { topic, data: 'sentinel' });
            await waitData(s, 'sentinel');
            assert.deepEqual(s.events.map((e) => e.data), ['mine', 'sentinel']);
        } finally {
            s.close();
        }
    });

    test('several topic selectors receive each of their topics', T, async () => {
        const a = uniqueTopic('multi-a');
        const b = uniqueTopic('multi-b');
        const c = uniqueTopic('multi-c');
        const s = await subscribe(base, [a, b]);
        try {
            await publishOk(base, { topic: a, data: 'a1' });
            await publishOk(base, { topic: c, data: 'c1' });
            await publishOk(base, { topic: b, data: 'b1' });
            await publishOk(base, { topic: a, data: 'a2' });
            await waitData(s, 'a2');
            assert.deepEqual(s.events.map((e) => e.data), ['a1', 'b1', 'a2']);
        } finally {
            s.close();
        }
    });

    test('topics with reserved and non-ASCII characters', T, async () => {
        const topics = [uniqueTopic('café/☕'), uniqueTopic('a&b=c?d#e f+g'), uniqueTopic('%41')];
        const s = await subscribe(base, topics);
        try {
            for (const topic of topics) await publishOk(base, { topic, data: `to ${topic}` });
            // '%41' must not be confused with 'A': publish to the decoded form as well.
            await publishOk(base, { topic: topics[2].replace('%41', 'A'), data: 'decoded' });
            await publishOk(base, { topic: topics[0], data: 'sentinel' });
            await waitData(s, 'sentinel');
            assert.deepEqual(s.events.map((e) => e.data), [...topics.map((t) => `to ${t}`), 'sentinel']);
        } finally {
            s.close();
        }
    });

    test('* selects every topic but $sys/ ones', T, async () => {
        const star = await subscribe(base, ['*']);
        const watcher = await subscribe(base, ['$sys/connections']);
        try {
            const names = [uniqueTopic('star'), uniqueTopic('https://example.com/star'), uniqueTopic('star/x/y')];
            for (const topic of names) await publishOk(base, { topic, data: topic });
            // Make the subscriber count move so that the hub publishes on $sys/connections,
            // wait until it did, then publish a sentinel: `*` must see the sentinel only.
            await churnConnections(base, watcher);
            await publishOk(base, { topic: names[0], data: 'sentinel' });
            await waitData(star, 'sentinel');
            assert.deepEqual(star.events.map((e) => e.data), [...names, 'sentinel']);
        } finally {
            star.close();
            watcher.close();
        }
    });

    test('a URI template matches a single path segment', T, async () => {
        const prefix = `https://example.com/${uniqueTopic('books')}`;
        const s = await subscribe(base, [`${prefix}/{id}`]);
        try {
            await publishOk(base, { topic: `${prefix}/1`, data: 'book 1' });
            await publishOk(base, { topic: `${prefix}/1/chapters/2`, data: 'chapter' });
            await publishOk(base, { topic: `${prefix}`, data: 'collection' });
            await publishOk(base, { topic: `${prefix}-other/3`, data: 'other collection' });
            await publishOk(base, { topic: `https://example.com/authors/1`, data: 'author' });
            await publishOk(base, { topic: `${prefix}/abc-DEF_42`, data: 'book abc' });
            await waitData(s, 'book abc');
            assert.deepEqual(s.events.map((e) => e.data), ['book 1', 'book abc']);
        } finally {
            s.close();
        }
    });

    test('no topic parameter receives every topic but $sys/ ones', T, async () => {
        const s = await openStream(base, '/events');
        const watcher = await subscribe(base, ['$sys/connections']);
        try {
            assert.equal(s.status, 200);
            await s.waitFor(0, 5000, () => s.body.includes('\n'));
            const a = uniqueTopic('all-a');
            const b = uniqueTopic('https://example.com/all-b');
            await publishOk(base, { topic: a, data: 'a' });
            await publishOk(base, { topic: b, data: 'b' });
            await churnConnections(base, watcher);
            await publishOk(base, { topic: a, data: 'sentinel' });
            await waitData(s, 'sentinel');
            assert.deepEqual(s.events.map((e) => e.data), ['a', 'b', 'sentinel']);
        } finally {
            s.close();
            watcher.close();
        }
    });

    test('an event on several matching topics is delivered once', T, async () => {
        const a = uniqueTopic('once-a');
        const b = uniqueTopic('once-b');
        const prefix = `https://example.com/${uniqueTopic('once')}`;
        const s1 = await subscribe(base, [a, b]);
        const s2 = await subscribe(base, [a, '*', `${prefix}/{x}`]);
        try {
            const id = await publishOk(base, { topic: [a, b, `${prefix}/1`], data: 'multi' });
            const id2 = await publishOk(base, { topic: [b, a], data: 'multi-json' }, { json: true });
            await publishOk(base, { topic: a, data: 'sentinel' });
            await waitData(s1, 'sentinel');
            await waitData(s2, 'sentinel');
            for (const s of [s1, s2]) {
                assert.deepEqual(s.events.map((e) => e.data), ['multi', 'multi-json', 'sentinel']);
                assert.equal(s.events[0].id, id);
                assert.equal(s.events[1].id, id2);
            }
        } finally {
            s1.close();
            s2.close();
        }
    });

    test('private events do not reach anonymous subscribers', T, async () => {
        const topic = uniqueTopic('private');
        const exact = await subscribe(base, [topic]);
        const star = await subscribe(base, ['*']);
        const all = await openStream(base, '/events');
        try {
            await all.waitFor(0, 5000, () => all.body.includes('\n'));
            const r1 = await publish(base, { topic, data: 'secret form', private: 'true' });
            assert.equal(r1.status, 200, r1.body);
            const r2 = await publish(base, { topic, data: 'secret json', private: true }, { json: true });
            assert.equal(r2.status, 200, r2.body);
            await publishOk(base, { topic, data: 'public' });
            for (const s of [exact, star, all]) {
                await waitData(s, 'public');
                const mine = s.events.filter((e) => e.data.startsWith('secret') || e.data === 'public');
                assert.deepEqual(mine.map((e) => e.data), ['public']);
            }
        } finally {
            exact.close();
            star.close();
            all.close();
        }
    });
});

describe('keep-alive', () => {
    let h;
    before(async () => {
        h = await startHerald({ env: { HERALD_SERVER_KEEPALIVE_SECONDS: '1' } });
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0);
    });

    test('an idle stream receives comment lines every keepalive_seconds', T, async () => {
        const topic = uniqueTopic('idle');
        const s = await subscribe(h.url, [topic]);
        try {
            await waitUntil(() => s.comments.length >= 2, {
                ms: 8000, what: 'two keep-alive comments on an idle stream', describe: () => JSON.stringify(s.body),
            });
            assert.match(s.body, /(^|\n):[^\n]*\n/);
            assert.equal(s.events.length, 0, 'a comment is not an event');
            // Neither the retry line nor the comments end an (empty) block of their own.
            assert.ok(!s.body.includes('\n\n'), `an empty block on an idle stream: ${JSON.stringify(s.body)}`);
            // The stream still works after the comments.
            const id = await publishOk(h.url, { topic, data: 'after idle' });
            const [e] = await waitEvents(s, 1);
            assert.equal(e.id, id);
            assert.equal(e.data, 'after idle');
            assert.equal(s.ended, false);
        } finally {
            s.close();
        }
    });
});

// Limits on what one subscription may ask the hub to match: at most
// server.max_topics_per_subscription selectors (1000 by default), each at most 1024 bytes,
// a URI template with at most 32 {var} expressions; beyond them 400. Template matching is
// linear in the topic, so near-matching templates against long topics cannot stall a worker:
// asserted here by what is delivered and by /healthz answering, never by timing.
describe('subscription limits and URI templates', () => {
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

    const invalidTopics = async (b) => (await getMetrics(b)).sum('herald_requests_rejected_total', /reason="invalid_topic"/);
    // GET /events that must be refused with 400; returns the error sentence.
    async function refused(b, topics, what) {
        const s = await openStream(b, eventsPath(topics));
        try {
            assert.notEqual(s.status, 200, `${what}: the subscription was accepted`);
            await s.waitEnd(5000);
        } finally {
            s.close();
        }
        return assertJsonError({ status: s.status, headers: s.headers, body: s.body }, 400, what).error;
    }
    const vars = (n, sep = '') => Array.from({ length: n }, (_, k) => `{v${k}}`).join(sep);

    test('the attack shape: 16 near-matching templates, 64 topics of 1 KiB, delivered exactly while /healthz answers', { timeout: 60000 }, async () => {
        const host = 'https://example.com/';
        const long = 'x'.repeat(990);
        // 32 expressions each, the most a template may hold, with literal text between them.
        const selectors = Array.from({ length: 16 }, (_, i) => `${host}${vars(32, 'x')}-s${i}`);
        const subs = [];
        try {
            // One expression more is refused, as documented.
            const err = await refused(base, [`${host}${vars(33, 'x')}-s0`], 'the shape with 33 expressions');
            assert.match(err, /at most 32/, err);
            for (const sel of selectors) subs.push(await subscribe(base, [sel]));
            // Topics 0..7 match subscribers 0..7; the other 56 miss every template at the very end.
            const topics = Array.from({ length: 64 }, (_, j) => `${host}${long}-${j < 8 ? 's' : 'n'}${j}`);
            assert.ok(topics.every((t) => t.length <= 1024));
            for (let k = 0; k < 5; k++) {
                const [pub, health] = await Promise.all([
                    publish(base, { topic: topics, data: `attack-${k}` }, { json: true }),
                    request(`${base}/healthz`),
                ]);
                assert.equal(pub.status, 200, `attack publish ${k}: ${pub.status} ${pub.body}`);
                assert.equal(health.status, 200, `/healthz during attack ${k}: ${health.status} ${health.body}`);
                assert.equal(JSON.parse(health.body).status, 'ok');
            }
            const mine = Array.from({ length: 16 }, (_, i) => `${host}${'x'.repeat(63)}-s${i}`);
            await publishOk(base, { topic: mine, data: 'marker' }, { json: true });
            for (let i = 0; i < 16; i++) {
                await waitData(subs[i], 'marker');
                const attacks = i < 8 ? ['attack-0', 'attack-1', 'attack-2', 'attack-3', 'attack-4'] : [];
                assert.deepEqual(subs[i].events.map((e) => e.data), [...attacks, 'marker'], `subscriber ${i}`);
            }
        } finally {
            for (const s of subs) s.close();
        }
    });

    test('a template with more than 32 expressions or over 1024 bytes is refused with 400, counted', T, async () => {
        const before = await invalidTopics(base);
        const many = await refused(base, [`https://example.com/${vars(33, '-')}`], '33 expressions');
        assert.match(many, /\b32\b/, `the error does not name the limit: ${many}`);
        assert.match(many, /template/, many);
        const adjacent = await refused(base, [`https://example.com/${vars(40)}`], '40 adjacent expressions');
        assert.match(adjacent, /\b32\b/, adjacent);
        const long = await refused(base, [`https://example.com/{id}/${'a'.repeat(1024)}`], 'a template over 1 KiB');
        assert.match(long, /1024 bytes/, long);
        await waitUntil(async () => (await invalidTopics(base)) === before + 3, {
            ms: 5000, what: 'three invalid_topic refusals counted',
        });
        // 32 is accepted, and matches.
        const topic = uniqueTopic('tpl32');
        const sel = `${topic}/${vars(32, '.')}`;
        const s = await subscribe(base, [sel]);
        try {
            await publishOk(base, { topic: `${topic}/${Array.from({ length: 32 }, (_, k) => k).join('.')}`, data: 'fits' });
            await publishOk(base, { topic: `${topic}/${Array.from({ length: 31 }, (_, k) => k).join('.')}`, data: 'too few parts' });
            await publishOk(base, { topic: `${topic}/end`, data: 'too short' });
            await publishOk(base, { topic: sel, data: 'marker' }); // the template's own text matches it
            await waitData(s, 'marker');
            assert.deepEqual(s.events.map((e) => e.data), ['fits', 'marker']);
        } finally {
            s.close();
        }
    });

    test('up to 1000 selectors by default (server.max_topics_per_subscription); 1001 is refused with 400, counted', T, async () => {
        // One-character topics: 1001 of them still fit in the 8 KiB request head.
        const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
        const topics = (n) => Array.from({ length: n }, (_, i) => chars[i % chars.length]);
        const s = await subscribe(base, topics(1000));
        try {
            await publishOk(base, { topic: ['q', 'w'], data: 'one event on two of its topics' });
            await publishOk(base, { topic: 'not-one-of-them', data: 'no' });
            await publishOk(base, { topic: '9', data: 'marker' });
            await waitData(s, 'marker');
            assert.deepEqual(s.events.map((e) => e.data), ['one event on two of its topics', 'marker']);
        } finally {
            s.close();
        }
        const before = await invalidTopics(base);
        const err = await refused(base, topics(1001), '1001 selectors');
        assert.match(err, /at most 1000 topics/, err);
        assert.match(err, /server\.max_topics_per_subscription/, err);
        await waitUntil(async () => (await invalidTopics(base)) === before + 1, {
            ms: 5000, what: 'the refusal counted as invalid_topic',
        });
    });

    test('at most 64 URI templates (or *) in one subscription, beside any number of exact topics', T, async () => {
        const templates = (n) => Array.from({ length: n }, (_, i) => `b${i}/{id}`);
        const exact = Array.from({ length: 100 }, (_, i) => `e${i}`);
        const s = await subscribe(base, [...exact, ...templates(64)]);
        try {
            await publishOk(base, { topic: 'b63/7', data: 'by the last template' });
            await publishOk(base, { topic: 'e99', data: 'by an exact topic' });
            await waitData(s, 'by an exact topic');
            assert.deepEqual(s.events.map((e) => e.data), ['by the last template', 'by an exact topic']);
        } finally {
            s.close();
        }
        const err = await refused(base, [...exact, ...templates(64), '*'], '65 patterns');
        assert.match(err, /at most 64 URI templates/, err);
    });

    test('HERALD_SERVER_MAX_TOPICS_PER_SUBSCRIPTION sets the limit', T, async () => {
        const small = await startHerald({ env: { HERALD_SERVER_MAX_TOPICS_PER_SUBSCRIPTION: '4' } });
        try {
            const s = await subscribe(small.url, ['a', 'b', 'c', 'books/{id}']);
            s.close();
            const before = await invalidTopics(small.url);
            const err = await refused(small.url, ['a', 'b', 'c', 'd', 'books/{id}'], 'five selectors with a limit of 4');
            assert.match(err, /at most 4 topics/, err);
            await waitUntil(async () => (await invalidTopics(small.url)) === before + 1, {
                ms: 5000, what: 'the refusal counted as invalid_topic',
            });
        } finally {
            assert.equal(await small.stop('SIGTERM'), 0);
        }
    });
});
