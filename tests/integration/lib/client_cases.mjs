// The cases every SSE client library in lib/clients.mjs is run through against the real
// herald binary, shared by clients_node.test.mjs and clients_browser.test.mjs. Each case
// becomes one test per library, named `<library>: <case>`. Four groups, one hub each:
//   - content: plain events, multi-line data (LF, CRLF, CR), an empty payload, event
//     types, unicode, a 200 KB event, and the stream's opening retry: line (which must
//     dispatch nothing);
//   - tokens: the Authorization header or ?token=, as the library allows, and what the
//     library does when the hub refuses it (401);
//   - keep-alives: a hub sending a comment every second; an idle client dispatches nothing;
//   - restart: a hub with an SQLite store is stopped with SIGTERM and started again on the
//     same port; each library must reconnect by itself (configured as its users must),
//     wait at least the hub's retry:, resume with the last id it saw and get every event
//     exactly once, in order, including one published after the restart but before it
//     came back.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startHerald, openStream, request, sleep } from './harness.mjs';
import { eventsPath, publishOk, uniqueTopic, waitUntil, spawnHerald, withTimeout } from './util.mjs';
import { bearer, cleanEnv, makeTempDir, tokenEntry, writeConfig } from './auth.mjs';

// The restart group's retry: (ms). Above every library's own default delay (1000 to 3000 ms;
// extended-eventsource's 5000 is set lower in its adapter), so a library that ignored the
// hub's retry: would come back too early and fail the lower-bound check.
export const RESTART_RETRY_MS = 3500;
// The keep-alive group's comment interval (s) and how long its clients stay idle (ms).
const KEEPALIVE_SECONDS = 1;
const IDLE_MS = 3200;
// How long a client whose subscription was refused is watched for another try (ms).
const REFUSED_WATCH_MS = 4500;

const T = { timeout: 60000 };

const slug = (name) => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();

// ---------------------------------------------------------------------------------------
// Helpers.

function summarize(st) {
    if (!st) return 'no snapshot';
    const events = st.events.map((e) => `${e.type}:${JSON.stringify(String(e.data).slice(0, 50))}#${e.id}`);
    const reqs = st.requests.map((r) => {
        const q = new URL(r.url).search;
        const h = r.headers['last-event-id'] ? ` Last-Event-ID=${r.headers['last-event-id']}` : '';
        return `${q}${h} -> ${r.status ?? r.failed ?? 'pending'}`;
    });
    return `events=[${events.join(', ')}] opens=${st.opens} errors=${st.errors} finished=${st.finished} requests=[${reqs.join('; ')}]`;
}

// Polls a client until `pred(snapshot)` holds; fails with the client's state.
async function waitClient(c, pred, what, ms = 10000) {
    let last;
    return waitUntil(async () => {
        last = await c.snapshot();
        return pred(last) ? last : null;
    }, { ms, every: 50, what, describe: () => summarize(last) });
}

const trapsOf = (lib, group) => (lib.traps ?? []).filter((t) => t.group === group);

// Waits until the hub counts `n` subscribers on `topic` (so a publish now must reach them).
// `headers`: an admin's credentials, once auth is on.
async function waitSubscribed(hub, topic, { n = 1, ms = 10000, headers = {} } = {}) {
    let last;
    await waitUntil(async () => {
        const r = await request(`${hub.url}/topics`, { headers });
        last = r.body;
        if (r.status !== 200) return false;
        const t = JSON.parse(r.body).topics.find((x) => x.topic === topic);
        return t && t.subscribers >= n;
    }, { ms, what: `${n} subscriber(s) on ${topic}`, describe: () => last });
}

const brief = (events) => events.map((e) => ({ type: e.type, data: e.data, id: e.id }));
// The events with data. No case publishes an empty payload, and a library that dispatches
// empty messages for blocks without data (the retry: line, keep-alive comments, when a
// server ends them with a blank line) fails the two cases about exactly that, and only
// those: the other cases look at the events that carry data.
const real = (events) => brief(events.filter((e) => e.data !== ''));

// Opens `name` on a new topic of `hub`, waits until the hub counts it, runs `fn`, closes it.
async function withClient(binding, hub, name, opts, fn) {
    const topic = uniqueTopic(slug(name));
    const c = await binding.open(name, `${hub.url}${eventsPath([topic])}`, opts);
    try {
        await waitSubscribed(hub, topic);
        await fn(c, topic);
    } finally {
        await c.close();
    }
}

// A 200 KB (204,800 bytes of UTF-8) single-line payload of ASCII, 2-, 3- and 4-byte
// characters, so that the stream's chunks split characters wherever they fall.
function bigPayload(bytes = 200 * 1024) {
    const unit = 'herald 200KB é ñ 漢字 カタカナ 🎉 👩‍👩‍👧 a\u0301 | ';
    let s = '';
    while (Buffer.byteLength(s) + Buffer.byteLength(unit) <= bytes) s += unit;
    while (Buffer.byteLength(s) < bytes) s += 'x';
    return s;
}

const sha = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 16);

// Payloads with newlines: [published, what EventSource must dispatch].
const MULTILINE = [
    ['first\nsecond\nthird', 'first\nsecond\nthird'],
    ['crlf one\r\ncrlf two\r\ncrlf three', 'crlf one\ncrlf two\ncrlf three'],
    ['cr one\rcr two', 'cr one\ncr two'],
    ['an empty line\n\nin the middle', 'an empty line\n\nin the middle'],
    ['ends with a newline\n', 'ends with a newline\n'],
    ['  two leading spaces\n\tand a tab', '  two leading spaces\n\tand a tab'],
    ['data: looks like a field\r\nid: so does this', 'data: looks like a field\nid: so does this'],
];

const UNICODE = [
    'emoji 🎉🚀 family 👩‍👩‍👧‍👦 flag 🏳️‍🌈 skin 👍🏽',
    'CJK 漢字 日本語のテキスト 中文 한국어',
    'combining marks: e\u0301 n\u0303 a\u030a\u0323 (not normalised) and precomposed é',
    'RTL עברית العربية, math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∞, zero width \u200b and joiner \u200d, BOM \ufeff inside',
];

// ---------------------------------------------------------------------------------------
// The suites. `env`: { start(), stop(), hubArgs() (extra `herald serve` flags), bind(hub)
// (-> { open(name, url, opts), close() }) }.

export function defineClientSuites(clients, env) {
    before(() => env.start());
    after(() => env.stop());

    describe('content', () => {
        let hub;
        let binding;
        before(async () => {
            hub = await startHerald({ args: env.hubArgs(), env: cleanEnv() });
            binding = await env.bind(hub);
        });
        after(async () => {
            await binding?.close();
            if (hub) assert.equal(await hub.stop(), 0, hub.output().slice(-2000));
        });

        for (const lib of clients) {
            const { name } = lib;

            test(`${name}: plain events, in order, with their ids`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const ids = [];
                    for (const data of ['one', 'two', 'three']) ids.push(await publishOk(hub.url, { topic, data }));
                    const json = await publishOk(hub.url, { topic, data: { list: [1, 2], n: 4 } }, { json: true });
                    const st = await waitClient(c, (s) => real(s.events).length >= 4, '4 events');
                    assert.deepEqual(real(st.events), [
                        { type: 'message', data: 'one', id: ids[0] },
                        { type: 'message', data: 'two', id: ids[1] },
                        { type: 'message', data: 'three', id: ids[2] },
                        { type: 'message', data: '{"list":[1,2],"n":4}', id: json },
                    ]);
                    assert.ok(st.opens >= 1, `no open was reported: ${summarize(st)}`);
                });
            });

            test(`${name}: multi-line data (LF, CRLF and CR in the published payload)`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const ids = [];
                    for (const [sent] of MULTILINE) ids.push(await publishOk(hub.url, { topic, data: sent }));
                    const st = await waitClient(c, (s) => real(s.events).length >= MULTILINE.length, `${MULTILINE.length} events`);
                    assert.deepEqual(real(st.events),
                        MULTILINE.map(([, want], i) => ({ type: 'message', data: want, id: ids[i] })));
                });
            });

            const leadTitle = lib.dropsLeadingEmptyLine
                ? 'multi-line data whose first line is empty (the library drops that line)'
                : 'multi-line data whose first line is empty';
            test(`${name}: ${leadTitle}`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const sent = '\nafter an empty first line';
                    const id = await publishOk(hub.url, { topic, data: sent });
                    const st = await waitClient(c, (s) => real(s.events).length >= 1, '1 event');
                    // herald sends `data: ` then `data: after…`: the data is "\nafter…".
                    const want = lib.dropsLeadingEmptyLine ? 'after an empty first line' : sent;
                    assert.deepEqual(real(st.events), [{ type: 'message', data: want, id }]);
                });
            });

            test(`${name}: an empty payload is one event with empty data`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const empty = await publishOk(hub.url, { topic, data: '' });
                    const next = await publishOk(hub.url, { topic, data: 'next' });
                    const st = await waitClient(c, (s) => s.events.some((e) => e.id === next), 'the event after the empty one');
                    // Only the published ones: a stray empty message of the stream's own (see
                    // the retry: case) would carry no id of these.
                    assert.deepEqual(brief(st.events.filter((e) => e.id === empty || e.id === next)), [
                        { type: 'message', data: '', id: empty },
                        { type: 'message', data: 'next', id: next },
                    ], summarize(st));
                });
            });

            test(`${name}: named events reach their own listener, not message`, T, async () => {
                await withClient(binding, hub, name, { types: ['greeting'] }, async (c, topic) => {
                    const plain = await publishOk(hub.url, { topic, data: 'plain' });
                    const hi = await publishOk(hub.url, { topic, data: 'hi', event: 'greeting' });
                    const other = await publishOk(hub.url, { topic, data: 'nobody listens', event: 'other' });
                    const ho = await publishOk(hub.url, { topic, data: 'ho', type: 'greeting' }); // Mercure's name
                    const last = await publishOk(hub.url, { topic, data: 'last' });
                    const st = await waitClient(c, (s) => s.events.some((e) => e.data === 'last'), 'the last event');
                    const want = [
                        { type: 'message', data: 'plain', id: plain },
                        { type: 'greeting', data: 'hi', id: hi },
                        { type: 'other', data: 'nobody listens', id: other },
                        { type: 'greeting', data: 'ho', id: ho },
                        { type: 'message', data: 'last', id: last },
                    ];
                    // A listener library dispatches `other` to nobody (no listener for it);
                    // a single-callback library hands it over with its type, for the user to
                    // switch on.
                    assert.deepEqual(real(st.events),
                        lib.dispatch === 'listeners' ? want.filter((e) => e.type !== 'other') : want);
                });
            });

            test(`${name}: unicode (emoji, CJK, combining marks) byte for byte`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const ids = [];
                    for (const data of UNICODE) ids.push(await publishOk(hub.url, { topic, data }, { json: true }));
                    // And a form body too (percent-encoded UTF-8).
                    ids.push(await publishOk(hub.url, { topic, data: UNICODE[0] }));
                    const want = [...UNICODE, UNICODE[0]];
                    const st = await waitClient(c, (s) => real(s.events).length >= want.length, `${want.length} events`);
                    const got = real(st.events);
                    assert.equal(got.length, want.length, summarize(st));
                    got.forEach((e, i) => {
                        assert.equal(e.id, ids[i]);
                        assert.ok(Buffer.from(e.data, 'utf8').equals(Buffer.from(want[i], 'utf8')),
                            `event ${i}: got ${JSON.stringify(e.data)} (${Buffer.byteLength(e.data)} bytes), ` +
                            `want ${JSON.stringify(want[i])} (${Buffer.byteLength(want[i])} bytes)`);
                    });
                });
            });

            test(`${name}: a 200 KB event arrives whole, and the stream goes on`, T, async () => {
                await withClient(binding, hub, name, {}, async (c, topic) => {
                    const big = bigPayload();
                    const bigId = await publishOk(hub.url, { topic, data: big }, { json: true });
                    const afterId = await publishOk(hub.url, { topic, data: 'after the big one' });
                    const st = await waitClient(c, (s) => real(s.events).length >= 2, 'the big event and the next', 20000);
                    const got = real(st.events)[0];
                    assert.equal(got.id, bigId);
                    assert.equal(Buffer.byteLength(got.data), Buffer.byteLength(big),
                        `the big event has ${Buffer.byteLength(got.data)} bytes, want ${Buffer.byteLength(big)}`);
                    assert.equal(sha(got.data), sha(big), 'the big event differs from what was published');
                    assert.deepEqual(real(st.events).slice(1), [{ type: 'message', data: 'after the big one', id: afterId }]);
                });
            });

            test(`${name}: the opening retry: line dispatches nothing`, T, async () => {
                await withClient(binding, hub, name, { types: ['greeting'] }, async (c, topic) => {
                    // Opened and counted by the hub: the retry: line is already sent.
                    await sleep(200);
                    const id = await publishOk(hub.url, { topic, data: 'first real event' });
                    const st = await waitClient(c, (s) => s.events.some((e) => e.id === id), 'the first real event');
                    assert.deepEqual(brief(st.events), [{ type: 'message', data: 'first real event', id }],
                        'something was dispatched before the first event');
                });
            });
        }
    });

    describe(`keep-alives (a comment every ${KEEPALIVE_SECONDS} s)`, () => {
        let hub;
        let binding;
        let control;
        let comments = 0;
        const runs = new Map();
        before(async () => {
            hub = await startHerald({ args: env.hubArgs(), env: cleanEnv({ HERALD_SERVER_KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS) }) });
            binding = await env.bind(hub);
            // A raw subscriber on the same hub counts the keep-alives sent meanwhile.
            control = await openStream(hub.url, eventsPath([uniqueTopic('keepalive-control')]));
            await Promise.all(clients.map(async ({ name }) => {
                const run = { topic: uniqueTopic(slug(name)) };
                runs.set(name, run);
                try {
                    run.client = await binding.open(name, `${hub.url}${eventsPath([run.topic])}`, { types: ['greeting'] });
                    await waitSubscribed(hub, run.topic);
                    run.id = await publishOk(hub.url, { topic: run.topic, data: 'marker' });
                    await waitClient(run.client, (s) => s.events.some((e) => e.id === run.id), 'the marker');
                } catch (e) {
                    run.error = e;
                }
            }));
            const before = control.comments.length;
            await sleep(IDLE_MS);
            comments = control.comments.length - before;
            for (const run of runs.values()) {
                if (run.client) run.final = await run.client.snapshot().catch((e) => { run.error ??= e; });
            }
        });
        after(async () => {
            control?.close();
            for (const run of runs.values()) await run.client?.close();
            await binding?.close();
            if (hub) assert.equal(await hub.stop(), 0, hub.output().slice(-2000));
        });

        for (const { name } of clients) {
            test(`${name}: keep-alive comments dispatch nothing`, T, async () => {
                const run = runs.get(name);
                if (run.error) throw run.error;
                assert.ok(comments >= 2, `the hub sent only ${comments} keep-alives in ${IDLE_MS} ms to a raw subscriber`);
                assert.deepEqual(brief(run.final.events), [{ type: 'message', data: 'marker', id: run.id }],
                    `events were dispatched while the stream only carried keep-alives: ${summarize(run.final)}`);
                assert.equal(run.final.requests.length, 1, `the client reconnected meanwhile: ${summarize(run.final)}`);
            });
        }
    });

    describe('tokens', () => {
        const READER = 'reader-secret';
        const BACKEND = 'backend-secret';
        const admin = bearer(BACKEND);
        let dir;
        let hub;
        let binding;
        const runs = new Map(); // `${name}` (a good token), `${name}#401`, `${name}#401#${variant}`
        before(async () => {
            dir = makeTempDir('herald-clients-tokens-');
            const config = writeConfig(dir, 'herald.toml', {
                auth: { tokens: [tokenEntry(READER, { subscribe: ['*'] }), tokenEntry(BACKEND, { publish: ['*'], admin: true })] },
            });
            hub = await startHerald({ args: ['--config', config, ...env.hubArgs()], env: cleanEnv() });
            binding = await env.bind(hub);
            // The way each library can carry a token: the Authorization header, else ?token=.
            const open = (lib, topic, token, variant) => {
                const url = `${hub.url}${eventsPath([topic], lib.headers ? {} : { token })}`;
                return binding.open(lib.name, url, { variant, headers: lib.headers ? { Authorization: `Bearer ${token}` } : {} });
            };
            const good = clients.map(async (lib) => {
                const run = { lib, topic: uniqueTopic(slug(lib.name)) };
                runs.set(lib.name, run);
                try {
                    run.client = await open(lib, run.topic, READER);
                    await waitSubscribed(hub, run.topic, { headers: admin });
                    run.id = await publishOk(hub.url, { topic: run.topic, data: 'for readers only' }, { headers: admin });
                    run.final = await waitClient(run.client, (s) => s.events.some((e) => e.id === run.id), 'the event');
                } catch (e) {
                    run.error = e;
                }
            });
            // Refused: what the library does about a 401, watched for longer than any
            // library's own retry delay (1000 to 3000 ms).
            const refused = clients.flatMap((lib) => [undefined, ...trapsOf(lib, 'tokens').map((t) => t.variant)].map(async (variant) => {
                const run = { lib, variant, topic: uniqueTopic(slug(lib.name)) };
                runs.set(`${lib.name}#401${variant ? `#${variant}` : ''}`, run);
                try {
                    run.client = await open(lib, run.topic, 'not-a-token', variant);
                    await sleep(REFUSED_WATCH_MS);
                    run.final = await run.client.snapshot();
                } catch (e) {
                    run.error = e;
                }
            }));
            await Promise.all([...good, ...refused]);
        });
        after(async () => {
            for (const run of runs.values()) await run.client?.close();
            await binding?.close();
            if (hub) assert.equal(await hub.stop(), 0, hub.output().slice(-2000));
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
        });

        for (const lib of clients) {
            const { name } = lib;
            const how = lib.headers ? 'in the Authorization header' : 'in ?token= (it cannot send headers)';
            test(`${name}: a token ${how}`, T, () => {
                const run = runs.get(name);
                if (run.error) throw run.error;
                assert.deepEqual(real(run.final.events), [{ type: 'message', data: 'for readers only', id: run.id }]);
                const [req] = run.final.requests;
                assert.ok(req, 'no request recorded');
                if (lib.headers) {
                    assert.equal(req.headers.authorization, `Bearer ${READER}`);
                    assert.equal(new URL(req.url).searchParams.get('token'), null);
                } else {
                    assert.equal(new URL(req.url).searchParams.get('token'), READER);
                }
            });

            const variants = [[undefined, lib.on401], ...trapsOf(lib, 'tokens').map((t) => [t.variant, 'retries', t.title])];
            for (const [variant, on401, title] of variants) {
                const what = title ? `trap: ${title}` : on401 === 'final'
                    ? 'a refused subscription (401) is final'
                    : 'a refused subscription (401) is retried for ever';
                test(`${name}: ${what}`, T, (t) => {
                    const run = runs.get(`${name}#401${variant ? `#${variant}` : ''}`);
                    if (run.error) throw run.error;
                    const st = run.final;
                    t.diagnostic(`in ${REFUSED_WATCH_MS} ms: ${st.requests.length} request(s), ${st.opens} open(s), ${st.errors} error(s)`);
                    assert.deepEqual(real(st.events), [], `events were dispatched from the 401 answer: ${summarize(st)}`);
                    assert.ok(st.requests.length >= 1 && st.requests.every((q) => q.status === 401), summarize(st));
                    if (on401 === 'final') {
                        assert.equal(st.requests.length, 1, `it tried again: ${summarize(st)}`);
                    } else {
                        assert.ok(st.requests.length >= 2, `it did not try again within ${REFUSED_WATCH_MS} ms: ${summarize(st)}`);
                    }
                });
            }
        }
    });

    describe(`restart (SQLite store, retry ${RESTART_RETRY_MS} ms)`, () => {
        const R = RESTART_RETRY_MS;
        const hubEnv = cleanEnv({ HERALD_SERVER_RETRY_MS: String(R) });
        let dir;
        let hub1;
        let hub2;
        let binding;
        let stoppedAt;
        let stopCode;
        let sentRetry;
        const runs = new Map(); // key: name, or name#variant for the traps
        const reconnecting = () => [...runs.values()].filter((r) => !r.variant);

        before(async () => {
            dir = makeTempDir('herald-clients-restart-');
            const store = `sqlite:${path.join(dir, 'herald.db')}`;
            hub1 = await startHerald({ args: ['--store', store, ...env.hubArgs()], env: hubEnv });
            binding = await env.bind(hub1);
            const probe = await openStream(hub1.url, eventsPath([uniqueTopic('retry-probe')]));
            await probe.waitFor(0, 5000, () => probe.parser.retry !== null).catch(() => {});
            sentRetry = probe.parser.retry;
            probe.close();

            for (const lib of clients) {
                runs.set(lib.name, { name: lib.name, lib });
                for (const trap of trapsOf(lib, 'restart')) runs.set(`${lib.name}#${trap.variant}`, { name: lib.name, lib, variant: trap.variant });
            }
            await Promise.all([...runs.values()].map(async (run) => {
                run.topic = uniqueTopic(slug(`${run.name}-${run.variant ?? 'restart'}`));
                run.ids = [];
                try {
                    run.client = await binding.open(run.name, `${hub1.url}${eventsPath([run.topic])}`, { variant: run.variant });
                    await waitSubscribed(hub1, run.topic);
                    for (const data of ['before 1', 'before 2']) run.ids.push(await publishOk(hub1.url, { topic: run.topic, data }));
                    await waitClient(run.client, (s) => real(s.events).length >= 2, 'the two events before the restart');
                } catch (e) {
                    run.error = e;
                }
            }));

            // Stop the hub; each client sees its stream end and retries after retry: while
            // nothing listens on the port. Wait until each has tried once.
            stoppedAt = Date.now();
            stopCode = await withTimeout(hub1.stop('SIGTERM'), 15000, 'the first hub to exit on SIGTERM');
            const live = reconnecting().filter((r) => !r.error);
            await waitUntil(async () => {
                for (const run of live) {
                    run.snap = await run.client.snapshot();
                }
                return live.every((run) => run.snap.requests.some((q) => q.at >= stoppedAt));
            }, { ms: R + 5000, what: 'every client to try to reconnect' }).catch(() => {});

            // The same store, the same port: one event published before the clients are back.
            hub2 = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', String(hub1.port), '--threads', '2',
                '--store', store, ...env.hubArgs()], { env: hubEnv });
            for (const run of runs.values()) {
                if (run.error) continue;
                run.publishedAt = Date.now();
                run.ids.push(await publishOk(hub2.url, { topic: run.topic, data: 'published while away' }));
            }
            await Promise.all(reconnecting().filter((r) => !r.error).map(async (run) => {
                try {
                    // The next try comes a retry after the failed one (the polyfill doubles it).
                    await waitClient(run.client, (s) => s.events.some((e) => e.id === run.ids[2]),
                        'the event published while it was away', 3 * R + 10000);
                    run.ids.push(await publishOk(hub2.url, { topic: run.topic, data: 'after the reconnect' }));
                    await waitClient(run.client, (s) => s.events.some((e) => e.id === run.ids[3]), 'the event after the reconnect');
                } catch (e) {
                    run.error = e;
                }
            }));
            for (const run of runs.values()) {
                if (run.client) run.final = await run.client.snapshot().catch((e) => { run.error ??= e; });
                run.finalAt = Date.now();
            }
        });
        after(async () => {
            for (const run of runs.values()) await run.client?.close();
            await binding?.close();
            if (hub1) await hub1.stop('SIGKILL').catch(() => {});
            if (hub2) assert.equal(await hub2.stop(), 0, hub2.output().slice(-2000));
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
        });

        const common = () => {
            assert.equal(sentRetry, R, `the hub opened its streams with retry: ${sentRetry}`);
            assert.equal(stopCode, 0, `the first hub exited with ${stopCode}:\n${hub1.output().slice(-2000)}`);
        };

        for (const lib of clients) {
            const { name } = lib;
            test(`${name}: reconnects across a hub restart, resumes with no gap and no duplicate`, T, () => {
                common();
                const run = runs.get(name);
                const st = run.final;
                if (run.error) throw new Error(`${run.error.message}\n${summarize(st ?? run.snap)}`);
                assert.deepEqual(real(st.events), [
                    { type: 'message', data: 'before 1', id: run.ids[0] },
                    { type: 'message', data: 'before 2', id: run.ids[1] },
                    { type: 'message', data: 'published while away', id: run.ids[2] },
                    { type: 'message', data: 'after the reconnect', id: run.ids[3] },
                ], summarize(st));
                const resumed = st.requests.filter((q) => q.at >= stoppedAt && q.status === 200);
                assert.equal(resumed.length, 1, `expected one successful reconnection: ${summarize(st)}`);
                const [req] = resumed;
                assert.ok(req.at > run.publishedAt,
                    `it came back ${run.publishedAt - req.at} ms before the event was published, so that event was not replayed`);
                const query = new URL(req.url).searchParams.get('lastEventId');
                if (lib.resume === 'header') {
                    assert.equal(req.headers['last-event-id'], run.ids[1], `the reconnection sent ${summarize(st)}`);
                    assert.equal(query, null);
                } else {
                    assert.equal(query, run.ids[1], `the reconnection was ${req.url}`);
                    assert.equal(req.headers['last-event-id'], undefined);
                }
                // The restarted hub still knows that id (SQLite): the replay starts right after it.
                assert.equal(req.lastEventId, run.ids[1], 'the hub\'s Last-Event-ID response header');
            });

            test(`${name}: waits at least the hub's retry: before reconnecting`, T, (t) => {
                common();
                const run = runs.get(name);
                const st = run.final ?? run.snap;
                if (!st) throw run.error;
                const first = st.requests.find((q) => q.at >= stoppedAt);
                assert.ok(first, `no reconnection attempt at all: ${summarize(st)}`);
                const waited = first.at - stoppedAt;
                const ok = st.requests.find((q) => q.at >= stoppedAt && q.status === 200);
                t.diagnostic(`first attempt ${waited} ms after SIGTERM (${first.status ?? first.failed}); ` +
                    `back ${ok ? ok.at - stoppedAt : '-'} ms after it`);
                assert.ok(waited >= R - 100, `the first attempt came ${waited} ms after the hub was stopped; retry: is ${R} ms`);
            });

            for (const trap of trapsOf(lib, 'restart')) {
                test(`${name}: trap: ${trap.title}`, T, () => {
                    common();
                    const run = runs.get(`${name}#${trap.variant}`);
                    const st = run.final;
                    if (run.error) throw new Error(`${run.error.message}\n${summarize(st)}`);
                    assert.deepEqual(real(st.events).map((e) => e.data), ['before 1', 'before 2'], summarize(st));
                    const tries = st.requests.filter((q) => q.at >= stoppedAt);
                    assert.equal(tries.length, 0, `it reconnected after all: ${summarize(st)}`);
                    // Watched for longer than any library's own delay: a reconnect would show.
                    assert.ok(run.finalAt - stoppedAt > 1.5 * R, `watched for ${run.finalAt - stoppedAt} ms only`);
                });
            }
        }
    });
}
