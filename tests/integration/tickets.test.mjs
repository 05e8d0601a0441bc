// The ticket scenario of issue 3, exactly as examples/tickets/README.md walks through it,
// against the real binary started with examples/tickets/herald.toml: tokens `foo` (reads
// TicketFoo), `bar` and `baz` (read TicketFoo and TicketMaster) and `ticket-publisher`
// (publishes to both, reads nothing). Each reader opens its feed with the token in the
// query string and no topic; a `changes` event on TicketFoo reaches all three, one on
// TicketMaster only bar and baz; the refusals are 401/403; then the README's load test,
// autocannon with 5,000 publishes on each topic (10,000 in all), after which each reader
// must hold exactly its share, with no duplicate and in increasing id order.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startHerald, request, openStream } from './lib/harness.mjs';
import { subscribe, waitData, publishOk, assertJsonError, waitUntil, eventsPath } from './lib/util.mjs';

const CONFIG = fileURLToPath(new URL('../../examples/tickets/herald.toml', import.meta.url));
const AUTOCANNON = fileURLToPath(new URL('../node_modules/.bin/autocannon', import.meta.url));
const PUBLISHER = { Authorization: 'Bearer ticket-publisher' };
const READERS = ['foo', 'bar', 'baz'];
const LOAD_PER_TOPIC = 5000; // two runs: 10,000 publishes in all
const T = { timeout: 120000 };

// The example config must decide alone who may do what: drop AUTH_TOKEN and any HERALD_AUTH_*
// or HERALD_SERVER_* setting inherited from the caller (spawn leaves out undefined values).
function exampleEnv() {
    const env = { AUTH_TOKEN: undefined, AUTH_TOKEN_FILE: undefined, PORT: undefined };
    for (const k of Object.keys(process.env)) {
        if (/^HERALD_(AUTH|SERVER|HISTORY|STORE|LOG)_/.test(k)) env[k] = undefined;
    }
    return env;
}

// The README's command: `npx autocannon -c 50 -a 5000 -m POST -H ... -b ... URL`, plus
// `-j` so that the figures can be read here. Resolves to autocannon's JSON result.
function autocannon(url, topic, amount) {
    const args = ['-c', '50', '-a', String(amount), '-m', 'POST',
        '-H', 'Authorization=Bearer ticket-publisher',
        '-H', 'Content-Type=application/x-www-form-urlencoded',
        '-b', `topic=${topic}&event=changes&data=${topic}+changed`,
        '-j', `${url}/events`];
    return new Promise((resolve, reject) => {
        const proc = spawn(AUTOCANNON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        proc.stdout.on('data', (d) => { out += d; });
        proc.stderr.on('data', (d) => { err += d; });
        const timer = setTimeout(() => proc.kill('SIGKILL'), 60000);
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        proc.on('close', (code, sig) => {
            clearTimeout(timer);
            if (code !== 0) {
                reject(new Error(`autocannon ${args.join(' ')} exited ${code ?? sig}:\n${err}\n${out}`));
                return;
            }
            try {
                resolve(JSON.parse(out));
            } catch {
                reject(new Error(`autocannon printed no JSON result:\n${out}\n${err}`));
            }
        });
    });
}

// GET `path` that must be refused: resolves to { status, headers, body } once the answer
// ended. A stream that opens (200) is closed at once and fails the test, never hangs it.
async function getRefused(base, path) {
    const s = await openStream(base, path);
    if (s.status === 200) {
        s.close();
        assert.fail(`GET ${path} opened a stream (200); expected a refusal`);
    }
    await s.waitEnd(5000);
    return { status: s.status, headers: s.headers, body: s.body };
}

describe('the ticket scenario (examples/tickets)', () => {
    let hub;
    const feeds = {};

    before(async () => {
        hub = await startHerald({ args: ['--config', CONFIG], env: exampleEnv() });
        // Each reader's feed: the token in the query string and no topic, so the token's
        // own topics. subscribe() waits for the `retry:` line, so each feed is registered
        // before anything below is published.
        for (const token of READERS) {
            feeds[token] = await subscribe(hub.url, [], { query: { token } });
        }
    });

    after(async () => {
        for (const s of Object.values(feeds)) s.close();
        if (hub) await hub.stop();
    });

    test('the hub starts with the four tokens of the example config', () => {
        assert.match(hub.output(), /auth on: 4 static token/, hub.output());
    });

    test('a changes event on TicketFoo reaches foo, bar and baz', T, async () => {
        const data = JSON.stringify({ ticket: 'TicketFoo', status: 'open' });
        const id = await publishOk(hub.url, { topic: 'TicketFoo', event: 'changes', data }, { headers: PUBLISHER });
        for (const token of READERS) {
            const e = await waitData(feeds[token], data);
            assert.equal(e.event, 'changes', `${token}: event type`);
            assert.equal(e.id, id, `${token}: the id the publish answered`);
        }
    });

    test('a changes event on TicketMaster reaches bar and baz, never foo', T, async () => {
        const data = JSON.stringify({ ticket: 'TicketMaster', status: 'assigned' });
        const id = await publishOk(hub.url, { topic: 'TicketMaster', event: 'changes', data }, { headers: PUBLISHER });
        for (const token of ['bar', 'baz']) {
            const e = await waitData(feeds[token], data);
            assert.equal(e.event, 'changes', `${token}: event type`);
            assert.equal(e.id, id, `${token}: the id the publish answered`);
        }
        // A later TicketFoo event does reach foo: everything published before it has had
        // its chance to arrive, so its absence from foo's feed means something.
        const later = JSON.stringify({ ticket: 'TicketFoo', status: 'closed' });
        const laterId = await publishOk(hub.url, { topic: 'TicketFoo', event: 'changes', data: later }, { headers: PUBLISHER });
        for (const token of READERS) await waitData(feeds[token], later);
        const foo = feeds.foo.events;
        assert.ok(!foo.some((e) => e.data === data || e.id === id),
            `foo received the TicketMaster event: ${JSON.stringify(foo)}`);
        assert.deepEqual(foo.map((e) => e.data),
            [JSON.stringify({ ticket: 'TicketFoo', status: 'open' }), later], 'foo received exactly the TicketFoo events');
        assert.equal(foo.at(-1).id, laterId);
        for (const token of ['bar', 'baz']) {
            assert.equal(feeds[token].events.length, 3, `${token}: ${JSON.stringify(feeds[token].events)}`);
        }
    });

    test('foo asking for TicketMaster by name: 403', T, async () => {
        const res = await getRefused(hub.url, eventsPath(['TicketMaster'], { token: 'foo' }));
        const body = assertJsonError(res, 403, 'foo on TicketMaster');
        assert.match(body.error, /TicketMaster/);
        assert.ok(!body.error.includes('foo'), `the error names the token: ${body.error}`);
    });

    test('no token: 401 with WWW-Authenticate', T, async () => {
        for (const topics of [[], ['TicketFoo']]) {
            const res = await getRefused(hub.url, eventsPath(topics));
            assertJsonError(res, 401, `no token, topics ${JSON.stringify(topics)}`);
            assert.match(String(res.headers['www-authenticate']), /^Bearer realm="herald"/);
        }
    });

    test('the publisher token cannot subscribe: 403', T, async () => {
        for (const topics of [[], ['TicketFoo']]) {
            const res = await getRefused(hub.url, eventsPath(topics, { token: 'ticket-publisher' }));
            assertJsonError(res, 403, `publisher subscribing to ${JSON.stringify(topics)}`);
        }
    });

    test('a reader cannot publish: 403', T, async () => {
        const res = await request(`${hub.url}/events`, {
            method: 'POST',
            headers: { Authorization: 'Bearer foo', 'Content-Type': 'application/x-www-form-urlencoded' },
            body: 'topic=TicketFoo&event=changes&data=forged',
        });
        assertJsonError(res, 403, 'foo publishing');
    });

    test('load: 10,000 publishes with autocannon, each reader gets exactly its share', T, async () => {
        assert.ok(fs.existsSync(AUTOCANNON),
            `${AUTOCANNON} is missing: run \`npm ci\` in tests/ (scripts/install-deps.sh does)`);
        const start = Object.fromEntries(READERS.map((t) => [t, feeds[t].events.length]));

        for (const topic of ['TicketFoo', 'TicketMaster']) {
            const r = await autocannon(hub.url, topic, LOAD_PER_TOPIC);
            const summary = JSON.stringify({
                '2xx': r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
                resets: r.resets, sent: r.requests?.sent, latency: r.latency?.p99,
            });
            assert.equal(r['2xx'], LOAD_PER_TOPIC, `${topic}: 2xx responses; ${summary}`);
            assert.equal(r.non2xx, 0, `${topic}: non-2xx responses; ${summary}`);
            assert.equal(r.errors, 0, `${topic}: errors; ${summary}`);
            assert.equal(r.timeouts, 0, `${topic}: timeouts; ${summary}`);
        }

        // A last event on TicketFoo, published once every load request was answered: each
        // feed delivers in id order, so once it arrived, every load event has too.
        const sentinel = 'after the load';
        await publishOk(hub.url, { topic: 'TicketFoo', event: 'changes', data: sentinel }, { headers: PUBLISHER });
        for (const token of READERS) {
            await waitUntil(() => feeds[token].events.some((e) => e.data === sentinel) || feeds[token].ended, {
                ms: 60000,
                what: `${token} to receive the event published after the load`,
                describe: () => `${feeds[token].events.length - start[token]} load events so far`,
            });
            assert.ok(!feeds[token].ended, `${token}'s feed ended during the load`);
        }

        const load = {};
        for (const token of READERS) {
            const events = feeds[token].events.slice(start[token]);
            assert.equal(events.at(-1).data, sentinel, `${token}: the sentinel is the last event`);
            load[token] = events.slice(0, -1);
            for (const e of load[token]) assert.equal(e.event, 'changes', `${token}: event type of ${e.id}`);
            // Ids: no duplicate, increasing (as numbers: the hub's ids are decimal integers).
            const ids = load[token].map((e) => BigInt(e.id));
            for (let i = 1; i < ids.length; i++) {
                assert.ok(ids[i] > ids[i - 1], `${token}: id ${ids[i]} after ${ids[i - 1]} (position ${i})`);
            }
            assert.equal(new Set(ids).size, ids.length, `${token}: duplicate ids`);
        }

        const count = (token, data) => load[token].filter((e) => e.data === data).length;
        assert.equal(load.foo.length, LOAD_PER_TOPIC, 'foo: every TicketFoo publish and nothing else');
        assert.equal(count('foo', 'TicketFoo changed'), LOAD_PER_TOPIC, 'foo: TicketFoo events');
        for (const token of ['bar', 'baz']) {
            assert.equal(load[token].length, 2 * LOAD_PER_TOPIC, `${token}: all 10,000 publishes`);
            assert.equal(count(token, 'TicketFoo changed'), LOAD_PER_TOPIC, `${token}: TicketFoo events`);
            assert.equal(count(token, 'TicketMaster changed'), LOAD_PER_TOPIC, `${token}: TicketMaster events`);
        }
        // The same events, with the same ids, for everyone who may read them.
        assert.deepEqual(load.baz.map((e) => e.id), load.bar.map((e) => e.id), 'bar and baz got the same ids');
        assert.deepEqual(load.foo.map((e) => e.id),
            load.bar.filter((e) => e.data === 'TicketFoo changed').map((e) => e.id),
            'foo got exactly the TicketFoo ids bar got');
    });
});
