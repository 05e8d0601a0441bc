// `herald demo`, the test event source for people who write SSE clients, against the real
// binary: the command line (--port, PORT, --host, --interval and its bad values), /stream
// (hello with the client's address, message-N with pretty-printed JSON whose random string
// depends only on N, ?count, Last-Event-ID and ?lastEventId), /status, /api/time,
// /api/client-count (also with clients coming and going in bursts), AUTH_TOKEN /
// AUTH_TOKEN_FILE, 404 / 405, SIGTERM, and the npm `eventsource` client resuming by itself.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EventSource, openEventSource } from './lib/eventsource.mjs';
import { HERALD_BIN, SseParser, request } from './lib/harness.mjs';
import { assertJsonError, closedPort, runHerald, waitUntil, withTimeout } from './lib/util.mjs';

const T = { timeout: 30000 };
const INTERVAL = '100ms';
const running = new Set();

// ---------------------------------------------------------------------------------------
// Helpers.

// The environment without anything that would change how demo starts (PORT, auth).
function demoEnv(extra = {}) {
    const env = { ...process.env };
    for (const k of ['PORT', 'AUTH_TOKEN', 'AUTH_TOKEN_FILE']) delete env[k];
    return { ...env, ...extra };
}

// Starts `herald demo ...args` and resolves once it logged, on stderr,
// `herald demo: listening on http://HOST:PORT`: { port, url, proc, stdout(), stderr(), stop() }.
// stop(signal) resolves to { code, signal, ms } (ms: from the signal to the exit).
function startDemo(args = ['--host', '127.0.0.1', '--port', '0', '--interval', INTERVAL], { env = {}, ms = 15000 } = {}) {
    const proc = spawn(HERALD_BIN, ['demo', ...args], { env: demoEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    let out = '';
    let err = '';
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
        running.delete(proc);
        resolve({ code, signal });
    }));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`herald demo ${args.join(' ')} did not log that it listens within ${ms} ms: ` +
                `stdout=${JSON.stringify(out)} stderr=${JSON.stringify(err)}`));
        }, ms);
        proc.stdout.setEncoding('utf8');
        proc.stderr.setEncoding('utf8');
        proc.stdout.on('data', (d) => { out += d; });
        let done = false;
        proc.stderr.on('data', (d) => {
            err += d;
            const m = /herald demo: listening on http:\/\/(\S+):(\d+)$/m.exec(err);
            if (!m || done) return;
            done = true;
            clearTimeout(timer);
            const port = Number(m[2]);
            resolve({
                port,
                host: m[1],
                url: `http://127.0.0.1:${port}`,
                proc,
                stdout: () => out,
                stderr: () => err,
                async stop(signal = 'SIGTERM') {
                    if (proc.exitCode !== null || proc.signalCode !== null) return { ...(await exited), ms: 0 };
                    const t0 = Date.now();
                    proc.kill(signal);
                    const r = await exited;
                    return { ...r, ms: Date.now() - t0 };
                },
            });
        });
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        exited.then(({ code, signal }) => {
            clearTimeout(timer);
            if (!done) {
                reject(new Error(`herald demo ${args.join(' ')} exited (${code ?? signal}) before listening: ` +
                    `stdout=${JSON.stringify(out)} stderr=${JSON.stringify(err)}`));
            }
        });
    });
}

// Opens GET `path` as an SSE stream with Node's http client; resolves once the response
// head arrived, to { status, headers, localPort, events (each with `at`, its arrival time),
// body, ended, openedAt, waitFor(pred, what, ms), waitEvents(n, ms), waitEnd(ms), close() }.
function openSse(base, p, { headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const parser = new SseParser();
        const waiters = [];
        const openedAt = Date.now();
        const notify = () => {
            for (let i = waiters.length - 1; i >= 0; i--) {
                if (waiters[i].test()) waiters.splice(i, 1)[0].resolve();
            }
        };
        const req = http.get(base + p, { headers: { Accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
            let body = '';
            const s = {
                status: res.statusCode,
                headers: res.headers,
                localPort: res.socket.localPort,
                openedAt,
                headAt: Date.now(),
                ended: false,
                get events() { return parser.events; },
                get body() { return body; },
                describe() {
                    const ev = parser.events;
                    const shown = ev.length > 12 ? ev.slice(-12) : ev;
                    return `${ev.length} events (ended=${s.ended})${ev.length > 12 ? ', the last 12' : ''}: ` +
                        JSON.stringify(shown.map((e) => [e.id, e.event, e.data.slice(0, 60)]));
                },
                waitFor(pred, what, ms = 5000) {
                    if (pred()) return Promise.resolve();
                    return new Promise((res2, rej2) => {
                        const w = { test: pred, resolve: null };
                        const t = setTimeout(() => {
                            waiters.splice(waiters.indexOf(w), 1);
                            rej2(new Error(`GET ${p}: timed out after ${ms} ms waiting for ${what}; got ${s.describe()}`));
                        }, ms);
                        w.resolve = () => { clearTimeout(t); res2(); };
                        waiters.push(w);
                    });
                },
                // Waits for n events; fails early (with what arrived) if the stream ends first.
                async waitEvents(n, ms = 5000) {
                    await s.waitFor(() => parser.events.length >= n || s.ended, `${n} events`, ms);
                    assert.ok(parser.events.length >= n, `GET ${p}: the stream ended after ${s.describe()}, expected at least ${n} events`);
                    return parser.events;
                },
                waitEnd(ms = 5000) { return s.waitFor(() => s.ended, 'the server to end the response', ms); },
                close() { req.destroy(); },
            };
            res.setEncoding('utf8');
            res.on('data', (d) => {
                body += d;
                const before = parser.events.length;
                parser.push(d);
                const now = Date.now();
                for (let i = before; i < parser.events.length; i++) parser.events[i].at = now;
                notify();
            });
            const onEnd = () => { if (!s.ended) { s.ended = true; s.endedAt = Date.now(); } notify(); };
            res.on('end', onEnd);
            res.on('close', onEnd);
            res.on('error', onEnd);
            resolve(s);
        });
        req.on('error', reject);
    });
}

// Opens a stream that must answer 200 as an event stream.
async function openOk(base, p, opts) {
    const s = await openSse(base, p, opts);
    if (s.status !== 200) {
        s.close();
        assert.fail(`GET ${p} answered ${s.status}, expected 200: ${s.body}`);
    }
    return s;
}

// Reads a ?count stream to its end and returns its events.
async function readAll(base, p, { headers = {}, ms = 10000 } = {}) {
    const s = await openOk(base, p, { headers });
    try {
        await s.waitEnd(ms);
        return s.events;
    } finally {
        s.close();
    }
}

const PRETTY = /^\{\n {2}"time": (\d+),\n {2}"random": "([a-z]{16})"\n\}$/;

// Checks one message-N event exactly and returns { time, random }.
function checkMessage(e, n) {
    assert.equal(e.id, `message-${n}`, `expected message-${n}, got ${JSON.stringify(e)}`);
    assert.equal(e.event, null, `message-${n} has an event type: ${JSON.stringify(e)}`);
    assert.equal(e.lines, 4, `message-${n} is not 4 data lines: ${JSON.stringify(e.data)}`);
    const m = PRETTY.exec(e.data);
    assert.ok(m, `message-${n} data is not the pretty-printed {time, random}: ${JSON.stringify(e.data)}`);
    const parsed = JSON.parse(e.data);
    assert.deepEqual(Object.keys(parsed), ['time', 'random']);
    assert.ok(Number.isInteger(parsed.time), `time is not an integer: ${parsed.time}`);
    const now = Date.now() / 1000;
    assert.ok(Math.abs(parsed.time - now) <= 5, `time ${parsed.time} is not close to now (${Math.floor(now)})`);
    return parsed;
}

// The hello event, exactly.
function checkHello(e, localPort) {
    assert.deepEqual({ id: e.id, event: e.event, data: e.data, lines: e.lines },
        { id: 'hello', event: null, data: `Hello, 127.0.0.1:${localPort}!`, lines: 1 });
}

// GET /status parsed (asserting 200 and a JSON object).
async function status(base, headers = {}) {
    const r = await request(`${base}/status`, { headers });
    assert.equal(r.status, 200, `/status answered ${r.status}: ${r.body}`);
    assert.match(String(r.headers['content-type']), /^application\/json\b/i);
    const body = JSON.parse(r.body);
    assert.ok(body && typeof body === 'object' && !Array.isArray(body), `/status is not an object: ${r.body}`);
    return body;
}

// Waits until /status lists no streaming client (closed streams are noticed on the next write).
async function waitNoClients(base) {
    let last;
    await waitUntil(async () => { last = await status(base); return Object.keys(last).length === 0; },
        { ms: 5000, what: '/status to list no clients', describe: () => JSON.stringify(last) });
}

after(() => {
    for (const proc of running) proc.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------
// The command line.

describe('herald demo: command line', () => {
    test('--port 0 picks a free port and the listening line is on stderr', T, async () => {
        const d = await startDemo(['--host', '127.0.0.1', '--port', '0', '--interval', INTERVAL]);
        try {
            assert.equal(d.host, '127.0.0.1');
            assert.ok(d.port > 0);
            assert.match(d.stderr(), new RegExp(`herald demo: listening on http://127\\.0\\.0\\.1:${d.port}$`, 'm'));
            const r = await request(`${d.url}/status`);
            assert.equal(r.status, 200);
        } finally {
            const r = await d.stop();
            assert.equal(r.code, 0, d.stderr());
        }
    });

    test('PORT is used without --port, and --port wins over PORT', T, async () => {
        const p1 = await closedPort();
        let p2 = await closedPort();
        while (p2 === p1) p2 = await closedPort();
        const a = await startDemo(['--host', '127.0.0.1', '--interval', INTERVAL], { env: { PORT: String(p1) } });
        try {
            assert.equal(a.port, p1);
            assert.equal((await request(`http://127.0.0.1:${p1}/status`)).status, 200);
        } finally {
            assert.equal((await a.stop()).code, 0);
        }
        const b = await startDemo(['--host', '127.0.0.1', '--port', String(p2), '--interval', INTERVAL],
            { env: { PORT: String(p1) } });
        try {
            assert.equal(b.port, p2);
            assert.equal((await request(`http://127.0.0.1:${p2}/status`)).status, 200);
        } finally {
            assert.equal((await b.stop()).code, 0);
        }
    });

    test('a bad --interval exits 2 with a message naming --interval', T, async () => {
        const bad = [['--interval', '0s'], ['--interval=-1s'], ['--interval', 'abc'], ['--interval', '5h'],
            ['--interval', '3601s'], ['--interval', '']];
        const results = await Promise.all(bad.map((extra) => runHerald(['demo', '--host', '127.0.0.1', '--port', '0', ...extra],
            { ms: 5000 })));
        results.forEach((r, i) => {
            const what = `herald demo ${bad[i].join(' ')}`;
            assert.equal(r.timedOut, false, `${what} did not exit (it accepted the interval): ${r.output}`);
            assert.equal(r.code, 2, `${what} exited ${r.code}: ${r.output}`);
            assert.match(r.output, /--interval/, `${what}: the message does not name --interval: ${r.output}`);
        });
    });

    test('a bad PORT or an unreadable AUTH_TOKEN_FILE exits 2 naming it', T, async () => {
        const cases = [
            [{ PORT: 'eighty' }, /PORT/],
            [{ PORT: '70000' }, /PORT/],
            [{ AUTH_TOKEN_FILE: '/nonexistent/herald-token' }, /AUTH_TOKEN_FILE/],
        ];
        for (const [env, named] of cases) {
            const r = await runHerald(['demo', '--host', '127.0.0.1', '--interval', '100ms'],
                { env: { PORT: undefined, AUTH_TOKEN: undefined, AUTH_TOKEN_FILE: undefined, ...env }, ms: 5000 });
            assert.equal(r.timedOut, false, `${JSON.stringify(env)}: demo started: ${r.output}`);
            assert.equal(r.code, 2, `${JSON.stringify(env)}: exit ${r.code}: ${r.output}`);
            assert.match(r.output, named, r.output);
        }
    });

    test('--interval takes 250ms: one message per interval', T, async () => {
        const d = await startDemo(['--host', '127.0.0.1', '--port', '0', '--interval', '250ms']);
        try {
            const s = await openOk(d.url, '/stream?count=3');
            await s.waitEnd(5000);
            const ev = s.events;
            assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-1', 'message-2', 'message-3']);
            const span = ev[3].at - ev[1].at;
            assert.ok(span >= 400 && span < 3000, `message-1 to message-3 took ${span} ms (2 intervals of 250 ms)`);
        } finally {
            assert.equal((await d.stop()).code, 0);
        }
    });

    test('--interval 3600s (one hour) is still accepted', T, async () => {
        const d = await startDemo(['--host', '127.0.0.1', '--port', '0', '--interval', '3600s']);
        try {
            const s = await openOk(d.url, '/stream?count=1');
            await s.waitEnd(3000);
            assert.deepEqual(s.events.map((e) => e.id), ['hello', 'message-1']);
        } finally {
            assert.equal((await d.stop()).code, 0);
        }
    });

    test('--interval takes 1.5s, the default interval is 1s, and message-1 comes right after hello', T, async () => {
        const a = await startDemo(['--host', '127.0.0.1', '--port', '0', '--interval', '1.5s']);
        const b = await startDemo(['--host', '127.0.0.1', '--port', '0']);
        try {
            const sa = await openOk(a.url, '/stream?count=2');
            const sb = await openOk(b.url, '/stream?count=2');
            await Promise.all([sa.waitEnd(6000), sb.waitEnd(6000)]);
            for (const [s, ms] of [[sa, 1500], [sb, 1000]]) {
                const ev = s.events;
                assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-1', 'message-2']);
                assert.ok(ev[1].at - ev[0].at < 500, `message-1 came ${ev[1].at - ev[0].at} ms after hello`);
                const gap = ev[2].at - ev[1].at;
                assert.ok(gap >= ms * 0.8 && gap < ms + 1500, `message-1 to message-2 took ${gap} ms, interval ${ms} ms`);
            }
        } finally {
            assert.equal((await a.stop()).code, 0);
            assert.equal((await b.stop()).code, 0);
        }
    });
});

// ---------------------------------------------------------------------------------------
// The endpoints, on one demo with a short interval.

describe('herald demo: endpoints', () => {
    let d;
    let base;
    before(async () => {
        d = await startDemo();
        base = d.url;
    });
    after(async () => {
        const r = await d.stop();
        assert.equal(r.code, 0, d.stderr());
    });

    test('/stream: headers, hello with the client address, then message-1, message-2, ...', T, async () => {
        const s = await openOk(base, '/stream');
        try {
            assert.equal(s.headers['content-type'], 'text/event-stream; charset=utf-8');
            assert.equal(s.headers['cache-control'], 'no-cache');
            assert.equal(s.headers['x-expected-events'], undefined);
            await s.waitEvents(6);
            checkHello(s.events[0], s.localPort);
            for (let n = 1; n <= 5; n++) checkMessage(s.events[n], n);
            // On the wire: id line, then exactly these data lines.
            const block = /(?:^|\n)id: message-1\n((?:data: .*\n)+)\n/.exec(s.body);
            assert.ok(block, `no "id: message-1" block followed by data lines in ${JSON.stringify(s.body.slice(0, 400))}`);
            assert.match(block[1], /^data: \{\ndata: {3}"time": \d+,\ndata: {3}"random": "[a-z]{16}"\ndata: \}\n$/);
            assert.match(s.body, /^(?::.*\n|retry: \d+\n)*id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\n/);
        } finally {
            s.close();
        }
    });

    test('random depends only on N: the same on two connections and in another process', T, async () => {
        const [a, b] = await Promise.all([readAll(base, '/stream?count=3'), readAll(base, '/stream?count=3')]);
        const other = await startDemo();
        let c;
        try {
            c = await readAll(other.url, '/stream?count=3');
        } finally {
            assert.equal((await other.stop()).code, 0);
        }
        const randoms = (ev) => ev.slice(1).map((e, i) => checkMessage(e, i + 1).random);
        const ra = randoms(a);
        assert.equal(ra.length, 3);
        assert.deepEqual(randoms(b), ra);
        assert.deepEqual(randoms(c), ra);
        assert.notEqual(ra[0], ra[1], 'message-1 and message-2 have the same random string');
        assert.notEqual(ra[1], ra[2], 'message-2 and message-3 have the same random string');
    });

    test('?count=K: X-Expected-Events, exactly K messages, then the response ends', T, async () => {
        const s = await openOk(base, '/stream?count=3');
        try {
            assert.equal(s.headers['x-expected-events'], '3');
            assert.equal(s.headers['content-type'], 'text/event-stream; charset=utf-8');
            await s.waitEnd(5000);
            assert.deepEqual(s.events.map((e) => e.id), ['hello', 'message-1', 'message-2', 'message-3']);
            checkHello(s.events[0], s.localPort);
            for (let n = 1; n <= 3; n++) checkMessage(s.events[n], n);
        } finally {
            s.close();
        }
        const one = await readAll(base, '/stream?count=1');
        assert.deepEqual(one.map((e) => e.id), ['hello', 'message-1']);
    });

    test('?count=0, -1 and x are 400 with a JSON error', T, async () => {
        for (const k of ['0', '-1', 'x']) {
            const r = await request(`${base}/stream?count=${k}`, { headers: { Accept: 'text/event-stream' } });
            assertJsonError(r, 400, `count=${k}`);
        }
    });

    test('Last-Event-ID: message-N resumes at N+1; ?count counts from there', T, async () => {
        const fresh = await readAll(base, '/stream?count=7');
        const want = fresh.slice(1).map((e, i) => checkMessage(e, i + 1).random);
        const s = await openOk(base, '/stream?count=2', { headers: { 'Last-Event-ID': 'message-5' } });
        try {
            assert.equal(s.headers['x-expected-events'], '2');
            await s.waitEnd(5000);
            assert.deepEqual(s.events.map((e) => e.id), ['hello', 'message-6', 'message-7']);
            checkHello(s.events[0], s.localPort);
            assert.equal(checkMessage(s.events[1], 6).random, want[5]);
            assert.equal(checkMessage(s.events[2], 7).random, want[6]);
        } finally {
            s.close();
        }
        // Without count it keeps going from there.
        const open = await openOk(base, '/stream', { headers: { 'Last-Event-ID': 'message-40' } });
        try {
            await open.waitEvents(3);
            assert.deepEqual(open.events.slice(0, 3).map((e) => e.id), ['hello', 'message-41', 'message-42']);
        } finally {
            open.close();
        }
    });

    test('?lastEventId=message-N resumes like the header', T, async () => {
        const ev = await readAll(base, '/stream?lastEventId=message-5&count=2');
        assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-6', 'message-7']);
        const ev2 = await readAll(base, '/stream?count=1&lastEventId=message-99');
        assert.deepEqual(ev2.map((e) => e.id), ['hello', 'message-100']);
    });

    test('a Last-Event-ID that is not message-N starts at message-1', T, async () => {
        for (const id of ['hello', 'garbage', 'message-', 'message-x', 'message']) {
            const ev = await readAll(base, '/stream?count=2', { headers: { 'Last-Event-ID': id } });
            assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-1', 'message-2'], `Last-Event-ID: ${id}`);
        }
        const ev = await readAll(base, '/stream?count=1&lastEventId=hello');
        assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-1'], '?lastEventId=hello');
    });

    test('/status lists the connected streaming clients', T, async () => {
        await waitNoClients(base);
        const t0 = Date.now();
        const s = await openOk(base, '/stream');
        const tm = await openOk(base, '/api/time');
        const cc = await openOk(base, '/api/client-count');
        try {
            await s.waitEvents(3);
            await tm.waitEvents(1);
            await cc.waitEvents(1);
            const t1 = Date.now();
            const lastSeen = Number(s.events[s.events.length - 1].id.slice('message-'.length));
            const st = await status(base);
            const entries = Object.entries(st);
            assert.equal(entries.length, 3, `/status: ${JSON.stringify(st)}`);
            for (const [key] of entries) assert.ok(key.length > 0, 'an empty client id');
            const byPort = (port) => {
                const found = entries.filter(([, v]) => v.remote === `127.0.0.1:${port}`);
                assert.equal(found.length, 1, `no single client with remote 127.0.0.1:${port} in ${JSON.stringify(st)}`);
                return found[0][1];
            };
            const es = byPort(s.localPort);
            assert.deepEqual(Object.keys(es).sort(), ['connectedAt', 'lastEventId', 'remote', 'topics']);
            assert.deepEqual(es.topics, ['stream']);
            assert.ok(Number.isInteger(es.connectedAt) && es.connectedAt >= t0 - 1000 && es.connectedAt <= t1 + 1000,
                `connectedAt ${es.connectedAt} is not between ${t0} and ${t1} (ms)`);
            const m = /^message-(\d+)$/.exec(es.lastEventId);
            assert.ok(m, `lastEventId of the /stream client is ${JSON.stringify(es.lastEventId)}`);
            assert.ok(Number(m[1]) >= lastSeen, `lastEventId ${es.lastEventId} is behind what the client got (message-${lastSeen})`);
            assert.deepEqual(byPort(tm.localPort).topics, ['time']);
            assert.deepEqual(byPort(cc.localPort).topics, ['client-count']);
            for (const c of [byPort(tm.localPort), byPort(cc.localPort)]) {
                assert.equal(typeof c.lastEventId, 'string');
                assert.ok(Number.isInteger(c.connectedAt));
            }
        } finally {
            s.close();
            tm.close();
            cc.close();
        }
        await waitNoClients(base);
    });

    test('/api/time: event time with an RFC 3339 time, at once and then every second', T, async () => {
        const s = await openOk(base, '/api/time');
        try {
            assert.match(String(s.headers['content-type']), /^text\/event-stream\b/);
            await s.waitEvents(2, 5000);
            const [a, b] = s.events;
            assert.ok(a.at - s.headAt < 700, `the first time event came ${a.at - s.headAt} ms after the response head`);
            const times = [a, b].map((e) => {
                assert.equal(e.event, 'time', JSON.stringify(e));
                assert.equal(e.lines, 1, JSON.stringify(e));
                const v = JSON.parse(e.data);
                assert.equal(typeof v, 'string', `data is not a JSON string: ${e.data}`);
                assert.match(v, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(?:Z|[+-]\d{2}:\d{2})$/);
                const t = Date.parse(v);
                assert.ok(Math.abs(t - e.at) < 5000, `${v} is not close to now`);
                return t;
            });
            const gap = times[1] - times[0];
            assert.ok(gap >= 800 && gap < 2500, `the two times are ${gap} ms apart, not about a second`);
            const arrival = b.at - a.at;
            assert.ok(arrival >= 700 && arrival < 3000, `the second event came ${arrival} ms after the first`);
        } finally {
            s.close();
        }
    });

    test('/api/client-count: the count at once and on every change, the watcher included', T, async () => {
        await waitNoClients(base);
        const w = await openOk(base, '/api/client-count');
        const counts = () => w.events.map((e) => {
            assert.equal(e.event, 'client-count', JSON.stringify(e));
            return JSON.parse(e.data);
        });
        const waitCount = (n) => w.waitFor(() => {
            const c = w.events.map((e) => JSON.parse(e.data));
            return c.length && c[c.length - 1].Count === n;
        }, `Count ${n}`, 5000);
        let s;
        let tm;
        try {
            assert.match(String(w.headers['content-type']), /^text\/event-stream\b/);
            await waitCount(1);
            s = await openOk(base, '/stream');
            await waitCount(2);
            tm = await openOk(base, '/api/time');
            await waitCount(3);
            s.close();
            await waitCount(2);
            tm.close();
            await waitCount(1);
            assert.deepEqual(counts(), [{ Count: 1 }, { Count: 2 }, { Count: 3 }, { Count: 2 }, { Count: 1 }]);
        } finally {
            s?.close();
            tm?.close();
            w.close();
        }
    });

    test('/api/client-count keeps up with bursts of clients coming and going together', T, async () => {
        // Every count change must reach the watcher, also one that happens while the watcher
        // is still writing the previous count: after each burst the last count is right.
        await waitNoClients(base);
        const w = await openOk(base, '/api/client-count');
        const last = () => (w.events.length ? JSON.parse(w.events[w.events.length - 1].data).Count : undefined);
        const waitCount = (n, what) => w.waitFor(() => last() === n, `Count ${n} ${what}`, 3000);
        const port = Number(new URL(base).port);
        let socks = [];
        try {
            await waitCount(1, 'for the watcher alone');
            for (let round = 1; round <= 15; round++) {
                socks = [0, 1, 2].map(() => net.connect(port, '127.0.0.1', function send() {
                    this.write(`GET /stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
                }));
                for (const sock of socks) sock.on('error', () => {});
                await waitCount(4, `after 3 clients connected at once (round ${round})`);
                for (const sock of socks) sock.destroy();
                await waitCount(1, `after 3 clients left at once (round ${round})`);
            }
        } finally {
            for (const sock of socks) sock.destroy();
            w.close();
        }
        await waitNoClients(base);
    });

    test('an unknown path is 404 with a JSON error', T, async () => {
        for (const p of ['/nope', '/api/nope', '/streams']) {
            assertJsonError(await request(base + p), 404, p);
        }
    });

    test('another method than GET or HEAD on a known path is 405 with Allow: GET', T, async () => {
        for (const [method, p] of [['POST', '/stream'], ['PUT', '/status'], ['DELETE', '/api/time'],
            ['POST', '/api/client-count']]) {
            const r = await request(base + p, { method, headers: { 'Content-Type': 'text/plain' }, body: 'x' });
            assertJsonError(r, 405, `${method} ${p}`);
            assert.equal(r.headers.allow, 'GET', `${method} ${p}: Allow is ${JSON.stringify(r.headers.allow)}`);
        }
        const head = await request(`${base}/status`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.body, '');
    });

    test('eventsource resumes by itself with Last-Event-ID after a ?count stream ends', T, async () => {
        const fresh = await readAll(base, '/stream?count=4');
        const want = fresh.slice(1).map((e, i) => checkMessage(e, i + 1).random);
        const c = openEventSource(`${base}/stream?count=2`);
        try {
            // The client waits its default 3 s before reconnecting.
            await waitUntil(() => c.messages.length >= 6, {
                ms: 10000, what: 'hello, message-1, message-2 and, after the reconnect, hello, message-3, message-4',
                describe: () => JSON.stringify({ messages: c.messages, requests: c.requests }),
            });
            c.es.close();
            const got = c.messages.slice(0, 6);
            assert.deepEqual(got.map((m) => m.lastEventId), ['hello', 'message-1', 'message-2', 'hello', 'message-3', 'message-4']);
            assert.match(got[0].data, /^Hello, 127\.0\.0\.1:\d+!$/);
            assert.match(got[3].data, /^Hello, 127\.0\.0\.1:\d+!$/);
            assert.deepEqual([got[1], got[2], got[4], got[5]].map((m) => JSON.parse(m.data).random), want);
            assert.ok(c.requests.length >= 2);
            assert.equal(c.requests[0].status, 200);
            assert.equal(c.requests[0].headers['Last-Event-ID'], undefined);
            assert.equal(c.requests[1].status, 200);
            assert.equal(c.requests[1].headers['Last-Event-ID'], 'message-2');
        } finally {
            c.es.close();
        }
    });

    test('eventsource with ?lastEventId=message-5 starts at message-6', T, async () => {
        const c = openEventSource(`${base}/stream?lastEventId=message-5`);
        try {
            await waitUntil(() => c.messages.length >= 3, {
                ms: 5000, what: 'three messages', describe: () => JSON.stringify(c.messages),
            });
            c.es.close();
            assert.deepEqual(c.messages.slice(0, 3).map((m) => m.lastEventId), ['hello', 'message-6', 'message-7']);
            assert.equal(c.requests.length, 1);
            assert.equal(c.requests[0].headers['Last-Event-ID'], undefined);
            assert.deepEqual(Object.keys(JSON.parse(c.messages[1].data)), ['time', 'random']);
        } finally {
            c.es.close();
        }
    });
});

// ---------------------------------------------------------------------------------------
// Auth.

describe('herald demo: AUTH_TOKEN and AUTH_TOKEN_FILE', () => {
    const TOKEN = 'demo-secret-1';
    let d;
    let base;
    before(async () => {
        d = await startDemo(undefined, { env: { AUTH_TOKEN: TOKEN } });
        base = d.url;
    });
    after(async () => {
        assert.equal((await d.stop()).code, 0, d.stderr());
    });

    const assert401 = (r, what) => {
        assertJsonError(r, 401, what);
        assert.match(String(r.headers['www-authenticate'] ?? ''), /^Bearer\b/, `${what}: WWW-Authenticate is ${r.headers['www-authenticate']}`);
    };

    test('without a token, or with a wrong one, every endpoint is 401 with WWW-Authenticate: Bearer', T, async () => {
        for (const p of ['/stream', '/stream?count=1', '/status', '/api/time', '/api/client-count']) {
            assert401(await request(base + p), `${p} without a token`);
            assert401(await request(base + p, { headers: { Authorization: 'Bearer wrong' } }), `${p} with a wrong bearer`);
            const sep = p.includes('?') ? '&' : '?';
            assert401(await request(`${base}${p}${sep}token=wrong`), `${p} with a wrong ?token`);
        }
        assert401(await request(`${base}/status`, { headers: { Authorization: TOKEN } }), 'a token without "Bearer "');
    });

    test('Authorization: Bearer T or ?token=T lets the request through', T, async () => {
        const auth = { Authorization: `Bearer ${TOKEN}` };
        await status(base, auth);
        const a = await readAll(base, '/stream?count=2', { headers: auth });
        assert.deepEqual(a.map((e) => e.id), ['hello', 'message-1', 'message-2']);
        const b = await readAll(base, `/stream?count=1&token=${TOKEN}`);
        assert.deepEqual(b.map((e) => e.id), ['hello', 'message-1']);
        const r = await request(`${base}/status?token=${TOKEN}`);
        assert.equal(r.status, 200, r.body);
        const tm = await openOk(base, `/api/time?token=${TOKEN}`);
        try {
            await tm.waitEvents(1);
            assert.equal(tm.events[0].event, 'time');
        } finally {
            tm.close();
        }
        const cc = await openOk(base, '/api/client-count', { headers: auth });
        try {
            await cc.waitEvents(1);
            assert.equal(cc.events[0].event, 'client-count');
        } finally {
            cc.close();
        }
    });

    test('AUTH_TOKEN_FILE holds the token (its trailing newline stripped)', T, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-demo-'));
        const file = path.join(dir, 'token');
        fs.writeFileSync(file, 'from-a-file-2\n');
        const f = await startDemo(undefined, { env: { AUTH_TOKEN_FILE: file } });
        try {
            assert401(await request(`${f.url}/status`), 'no token');
            assert401(await request(`${f.url}/status`, { headers: { Authorization: `Bearer ${TOKEN}` } }), 'another token');
            assert.equal((await request(`${f.url}/status`, { headers: { Authorization: 'Bearer from-a-file-2' } })).status, 200);
            const ev = await readAll(f.url, '/stream?count=1&token=from-a-file-2');
            assert.deepEqual(ev.map((e) => e.id), ['hello', 'message-1']);
        } finally {
            assert.equal((await f.stop()).code, 0, f.stderr());
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

// ---------------------------------------------------------------------------------------
// Shutdown.

describe('herald demo: SIGTERM', () => {
    test('exits 0 promptly with streams open', T, async () => {
        const d = await startDemo();
        const streams = await Promise.all(['/stream', '/api/time', '/api/client-count'].map((p) => openOk(d.url, p)));
        try {
            await Promise.all(streams.map((s) => s.waitEvents(1)));
            await streams[0].waitEvents(3);
            const r = await withTimeout(d.stop('SIGTERM'), 10000, 'herald demo to exit after SIGTERM');
            assert.equal(r.signal, null, `herald demo died of ${r.signal}`);
            assert.equal(r.code, 0, d.stderr());
            assert.ok(r.ms < 3000, `herald demo took ${r.ms} ms to exit after SIGTERM`);
            await Promise.all(streams.map((s) => s.waitEnd(3000)));
        } finally {
            for (const s of streams) s.close();
        }
    });
});
