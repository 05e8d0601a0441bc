// `herald pub` and `herald sub` as a user runs them: against the real hub (publish, stdin
// lines, --count, --json, --last-event-id, errors from the hub, unreachable hubs, SIGTERM),
// and against small scripted SSE servers for what the hub cannot be made to do on demand
// (ending streams with `retry:`, close-delimited bodies, the Authorization header).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { HERALD_BIN, startHerald, publish, request, openStream } from './lib/harness.mjs';
import { closedPort } from './lib/util.mjs';

const T = { timeout: 30000 };
const running = new Set();

// Runs `herald ...args` to its end; resolves to { code, signal, stdout, stderr }. Killed
// (and failed) after `ms`.
function herald(args, { stdin = '', env = {}, ms = 15000 } = {}) {
    const child = spawnHerald(args, { env });
    child.proc.stdin.end(stdin);
    return child.done(ms);
}

// Starts `herald ...args` and returns { proc, stdout(), stderr(), lines(),
// waitUntil(pred, what, ms), done(ms) }; the process is killed at the end of the suite if still running.
function spawnHerald(args, { env = {} } = {}) {
    const proc = spawn(HERALD_BIN, args, {
        env: { ...process.env, HERALD_URL: '', HERALD_TOKEN: '', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(proc);
    // A command that needs no stdin may exit before we finish writing it.
    proc.stdin.on('error', () => {});
    let out = '';
    let err = '';
    const waiters = [];
    const lines = () => out.split('\n').slice(0, -1);
    const check = () => {
        for (let i = waiters.length - 1; i >= 0; i--) {
            if (waiters[i].test()) waiters.splice(i, 1)[0].resolve();
        }
    };
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { out += d; check(); });
    proc.stderr.on('data', (d) => { err += d; check(); });
    const exited = once(proc, 'exit').then(([code, signal]) => {
        running.delete(proc);
        check();
        return { code, signal };
    });
    const describeState = () => `stdout=${JSON.stringify(out)} stderr=${JSON.stringify(err)}`;
    return {
        proc,
        stdout: () => out,
        stderr: () => err,
        lines,
        // Resolves once `pred()` holds (checked on each output); rejects if the process
        // exits first or after `ms`.
        waitUntil(pred, what, ms = 10000) {
            return new Promise((resolve, reject) => {
                const w = {
                    test: () => {
                        if (pred()) return true;
                        if (proc.exitCode !== null || proc.signalCode !== null) {
                            clearTimeout(timer);
                            reject(new Error(`herald ${args.join(' ')} exited before ${what}: ${describeState()}`));
                            return true;
                        }
                        return false;
                    },
                    resolve: () => { clearTimeout(timer); resolve(); },
                };
                const timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`timed out waiting for ${what}: ${describeState()}`));
                }, ms);
                if (w.test()) { w.resolve(); return; }
                waiters.push(w);
            });
        },
        async done(ms = 15000) {
            const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
            const { code, signal } = await exited;
            clearTimeout(timer);
            assert.notEqual(signal, 'SIGKILL', `herald ${args.join(' ')} did not end within ${ms} ms: ${describeState()}`);
            return { code, signal, stdout: out, stderr: err };
        },
    };
}

let topicCounter = 0;
const uniqueTopic = (prefix) => `${prefix}-${process.pid}-${++topicCounter}`;

// Publishes through the HTTP API and returns the id.
async function publishOk(base, fields) {
    const res = await publish(base, fields);
    assert.equal(res.status, 200, res.body);
    return res.body.trim();
}

// Opens a stream with the harness and waits for the retry block, after which the hub
// delivers everything published.
async function subscribeRaw(base, topic) {
    const s = await openStream(base, `/events?topic=${encodeURIComponent(topic)}`);
    assert.equal(s.status, 200);
    await s.waitFor(0, 5000, () => s.body.includes('\n'));
    return s;
}


after(() => {
    for (const proc of running) proc.kill('SIGKILL');
});

describe('herald pub and sub against the hub', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald();
        base = h.url;
    });
    after(async () => {
        await h.stop('SIGTERM');
    });

    test('pub prints the id, and a subscriber receives the event with it', T, async () => {
        const topic = uniqueTopic('pub');
        const s = await subscribeRaw(base, topic);
        try {
            const r = await herald(['pub', topic, 'hello from pub', '--event', 'greeting', '--url', base]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stderr, '');
            assert.match(r.stdout, /^\S+\n$/, `stdout is the id alone: ${JSON.stringify(r.stdout)}`);
            const id = r.stdout.trim();
            await s.waitFor(1, 5000);
            assert.equal(s.events.length, 1);
            assert.deepEqual(s.events[0], { id, event: 'greeting', data: 'hello from pub', lines: 1 });
        } finally {
            s.close();
        }
    });

    test('pub takes the URL from HERALD_URL', T, async () => {
        const topic = uniqueTopic('env');
        const r = await herald(['pub', topic, 'x'], { env: { HERALD_URL: base } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^\S+\n$/);
    });

    test('pub with no DATA publishes each stdin line, in order, printing each id', T, async () => {
        const topic = uniqueTopic('stdin');
        const s = await subscribeRaw(base, topic);
        try {
            // CRLF and a blank line: three events, no empty one, no CR in the data.
            const r = await herald(['pub', topic, '--url', base], { stdin: 'one\r\ntwo é\n\nthree' });
            assert.equal(r.code, 0, r.stderr);
            const ids = r.stdout.split('\n').slice(0, -1);
            assert.equal(ids.length, 3, r.stdout);
            assert.equal(new Set(ids).size, 3, 'ids are distinct');
            await s.waitFor(3, 5000);
            assert.deepEqual(s.events.map((e) => [e.id, e.data]),
                [[ids[0], 'one'], [ids[1], 'two é'], [ids[2], 'three']]);
        } finally {
            s.close();
        }
    });

    test('sub --count N prints N datas and exits 0', T, async () => {
        const topic = uniqueTopic('count');
        // Everything after this marker reaches the subscriber whenever it connects: no race.
        const marker = await publishOk(base, { topic, data: 'marker' });
        const sub = spawnHerald(['sub', topic, '--count', '3', '--last-event-id', marker, '--url', base]);
        for (const data of ['first', 'second line 1\nsecond line 2', 'third']) {
            await publishOk(base, { topic, data });
        }
        await publishOk(base, { topic, data: 'fourth, never printed' });
        const r = await sub.done();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'first\nsecond line 1\nsecond line 2\nthird\n');
    });

    test('sub prints live events published after it connected; SIGTERM exits 0', T, async () => {
        const topic = uniqueTopic('live');
        const sub = spawnHerald(['sub', topic, '--url', base]);
        // Publish probes until the subscriber shows one: from then on it is connected.
        for (let n = 0; sub.lines().length === 0; n++) {
            assert.ok(n < 100, `sub printed nothing: ${sub.stderr()}`);
            await publishOk(base, { topic, data: `probe ${n}` });
            await new Promise((r) => setTimeout(r, 50));
        }
        await publishOk(base, { topic, data: 'after 1' });
        await publishOk(base, { topic, data: 'after 2' });
        await sub.waitUntil(() => sub.lines().at(-1) === 'after 2', 'the last event');
        const lines = sub.lines();
        assert.deepEqual(lines.slice(-2), ['after 1', 'after 2']);
        assert.ok(lines.slice(0, -2).every((l) => l.startsWith('probe ')), lines.join('|'));
        assert.equal(new Set(lines).size, lines.length, `no duplicate: ${lines}`);
        sub.proc.kill('SIGTERM');
        const r = await sub.done();
        assert.equal(r.code, 0, `SIGTERM ends sub with 0: ${r.signal} ${r.stderr}`);
    });

    test('sub --json prints one {id, event, data} object a line', T, async () => {
        const topic = uniqueTopic('json');
        const marker = await publishOk(base, { topic, data: 'marker' });
        const a = await publishOk(base, { topic, data: 'plain' });
        const b = await publishOk(base, { topic, data: 'multi\nline "quoted" é', event: 'update' });
        const r = await herald(['sub', topic, '--json', '--count', '2', '--last-event-id', marker, '--url', base]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split('\n');
        assert.equal(lines.pop(), '', 'ends with a newline');
        assert.equal(lines.length, 2, r.stdout);
        assert.deepEqual(lines.map((l) => JSON.parse(l)), [
            { id: a, event: 'message', data: 'plain' },
            { id: b, event: 'update', data: 'multi\nline "quoted" é' },
        ]);
        assert.deepEqual(Object.keys(JSON.parse(lines[0])), ['id', 'event', 'data']);
    });

    test('sub --last-event-id replays the events after it, across topics', T, async () => {
        const t1 = uniqueTopic('replay-a');
        const t2 = uniqueTopic('replay-b');
        const e1 = await publishOk(base, { topic: t1, data: 'e1' });
        await publishOk(base, { topic: t2, data: 'e2' });
        await publishOk(base, { topic: t1, data: 'e3' });
        await publishOk(base, { topic: uniqueTopic('other'), data: 'not subscribed' });
        await publishOk(base, { topic: t2, data: 'e4' });
        const r = await herald(['sub', t1, t2, '--count', '3', '--last-event-id', e1, '--url', base]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'e2\ne3\ne4\n');
    });

    test('pub: an error from the hub is printed as "herald pub: STATUS MESSAGE", exit 1', T, async () => {
        for (const topic of ['', 'x'.repeat(2000), '$sys/connections']) {
            // What the hub itself says to the same request.
            const direct = await publish(base, { topic, data: 'x' });
            assert.ok(direct.status >= 400 && direct.status < 500, `status ${direct.status}`);
            const { error } = JSON.parse(direct.body);
            const r = await herald(['pub', topic, 'x', '--url', base]);
            assert.equal(r.code, 1, `topic ${topic.slice(0, 20)}: ${r.stdout}`);
            assert.equal(r.stdout, '');
            assert.equal(r.stderr, `herald pub: ${direct.status} ${error}\n`);
        }
    });

    test('pub from stdin goes on after a refused line and exits 1', T, async () => {
        const topic = uniqueTopic('partial');
        const r = await herald(['pub', topic, '--url', base, '--id', 'fixed-id-' + topic],
            { stdin: 'a\nb\n' });
        // The second line reuses the publisher id: the hub refuses it as a duplicate.
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout.split('\n').slice(0, -1).length, 1, r.stdout);
        assert.match(r.stderr, /^herald pub: 4\d\d .+\n$/);
    });

    test('sub: a refusal by the hub (4xx) is fatal, with its message', T, async () => {
        const direct = await request(`${base}/events?topic=`, { headers: { Accept: 'text/event-stream' } });
        assert.ok(direct.status >= 400 && direct.status < 500, `status ${direct.status}`);
        const { error } = JSON.parse(direct.body);
        const r = await herald(['sub', '', '--url', base]);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr, `herald sub: ${direct.status} ${error}\n`);
    });
});

describe('herald pub with a hub out of reach', () => {
    test('connection refused: a message naming the hub, exit 1', T, async () => {
        const port = await closedPort();
        const r = await herald(['pub', 't', 'x', '--url', `http://127.0.0.1:${port}`]);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, new RegExp(`^herald pub: cannot connect to http://127\\.0\\.0\\.1:${port}: .*refused`, 'i'));
    });

    test('https:// and malformed URLs are refused with a reason, exit 1', T, async () => {
        for (const [url, why] of [
            ['https://127.0.0.1:8443', /https:\/\/ is not supported/],
            ['http://:8080', /host is missing/],
            ['http://127.0.0.1:99999', /port/],
            ['ftp://example.com', /scheme/],
        ]) {
            for (const cmd of [['pub', 't', 'x'], ['sub', 't']]) {
                const r = await herald([...cmd, '--url', url]);
                assert.equal(r.code, 1, `${cmd[0]} ${url}`);
                assert.match(r.stderr, new RegExp(`^herald ${cmd[0]}: invalid hub URL`), r.stderr);
                assert.match(r.stderr, why);
            }
        }
    });

    test('stdin lines with the hub down: every line fails, exit 1, no output', T, async () => {
        const port = await closedPort();
        const r = await herald(['pub', 't', '--url', `http://127.0.0.1:${port}`], { stdin: 'a\nb\n' });
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.trim().split('\n').length, 2, r.stderr);
    });
});

// A scripted SSE server: `handler(req, res, n)` answers the n-th request (from 1).
async function scriptedServer(handler) {
    const requests = [];
    const srv = http.createServer((req, res) => {
        requests.push({ url: req.url, headers: req.headers });
        handler(req, res, requests.length);
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return {
        url: `http://127.0.0.1:${srv.address().port}`,
        requests,
        close: () => { srv.closeAllConnections(); srv.close(); },
    };
}

describe('herald pub against a scripted server', () => {
    // dump() of the parsed answer recursed once per level: a foreign server's answer nested
    // 100,000 deep ended `herald pub --json` with SIGSEGV.
    test('--json: an answer nesting JSON more than 64 deep is an error, exit 1', T, async () => {
        const deep = `{"id":"1","x":${'{"k":'.repeat(100000)}1${'}'.repeat(100000)}}`;
        const srv = await scriptedServer((req, res) => {
            req.resume();
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(deep);
        });
        try {
            const r = await herald(['pub', 't', 'x', '--json', '--url', srv.url]);
            assert.equal(r.code, 1, `exit ${r.code ?? r.signal}: ${r.stderr.slice(0, 300)}`);
            assert.equal(r.stdout, '');
            assert.match(r.stderr, /more than 64 levels deep/);
            // 64 levels, the answer's own object included, still print.
            const ok = await scriptedServer((req, res) => {
                req.resume();
                res.writeHead(200, { 'Content-Type': 'application/json' });
                res.end(`{"id":"7","x":${'['.repeat(63)}${']'.repeat(63)}}`);
            });
            try {
                const r2 = await herald(['pub', 't', 'x', '--json', '--url', ok.url]);
                assert.equal(r2.code, 0, r2.stderr);
                assert.equal(JSON.parse(r2.stdout).id, '7');
            } finally {
                ok.close();
            }
        } finally {
            srv.close();
        }
    });
});

describe('herald sub against scripted servers', () => {
    test('reconnects after the stream ends, after the retry delay, with Last-Event-ID', T, async () => {
        // Each response sends two events after the id it was given, then ends.
        const srv = await scriptedServer((req, res) => {
            const last = Number(req.headers['last-event-id'] || 0);
            res.writeHead(200, { 'Content-Type': 'text/event-stream' });
            res.write('retry: 100\n\n');
            res.end(`id: ${last + 1}\ndata: event ${last + 1}\n\nid: ${last + 2}\ndata: event ${last + 2}\n\n`);
        });
        try {
            const r = await herald(['sub', 'a b', 'c/d', '--count', '5', '--url', srv.url, '--token', 's3cret']);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, 'event 1\nevent 2\nevent 3\nevent 4\nevent 5\n');
            assert.equal(srv.requests.length, 3);
            assert.deepEqual(srv.requests.map((q) => q.headers['last-event-id']), [undefined, '2', '4']);
            for (const q of srv.requests) {
                assert.equal(q.url, '/events?topic=a%20b&topic=c%2Fd');
                assert.equal(q.headers.accept, 'text/event-stream');
                assert.equal(q.headers.authorization, 'Bearer s3cret');
            }
            assert.match(r.stderr, /reconnecting in 100 ms/);
        } finally {
            srv.close();
        }
    });

    test('reads a close-delimited stream split at every byte, with CR line ends and a BOM', T, async () => {
        // Raw TCP: no chunking, Connection: close, one byte per write.
        const conns = [];
        const srv = net.createServer((sock) => {
            conns.push(sock);
            sock.once('data', () => {
                const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]),
                    Buffer.from(': hi\rretry: 50\rid: x1\revent: e\rdata: caf\u00e9\rdata: 2\r\r')]);
                sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n');
                let i = 0;
                const next = () => {
                    if (i < body.length) { sock.write(body.subarray(i, i + 1)); i++; setImmediate(next); }
                };
                next();
            });
        });
        srv.listen(0, '127.0.0.1');
        await once(srv, 'listening');
        try {
            const r = await herald(['sub', 't', '--json', '--count', '1', '--url', `http://127.0.0.1:${srv.address().port}`]);
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual(JSON.parse(r.stdout), { id: 'x1', event: 'e', data: 'café\n2' });
        } finally {
            for (const c of conns) c.destroy();
            srv.close();
        }
    });

    test('a 200 that is not an event stream is fatal', T, async () => {
        const srv = await scriptedServer((req, res) => {
            res.writeHead(200, { 'Content-Type': 'text/html' });
            res.end('<html></html>');
        });
        try {
            const r = await herald(['sub', 't', '--url', srv.url]);
            assert.equal(r.code, 1);
            assert.match(r.stderr, /^herald sub: unexpected response 200 \(text\/html\)/);
        } finally {
            srv.close();
        }
    });

    test('a 5xx is retried, backing off from the retry delay', T, async () => {
        const srv = await scriptedServer((req, res, n) => {
            if (n === 1 || n === 4) {
                // The first stream only sets the retry delay; the last one carries an event.
                res.writeHead(200, { 'Content-Type': 'text/event-stream' });
                res.end(n === 1 ? 'retry: 100\n\n' : 'data: finally\n\n');
                return;
            }
            res.writeHead(503, { 'Content-Type': 'application/json' });
            res.end('{"error":"busy"}');
        });
        try {
            const r = await herald(['sub', 't', '--count', '1', '--url', srv.url]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout, 'finally\n');
            assert.equal(r.stderr, [
                'herald sub: the hub ended the stream; reconnecting in 100 ms',
                'herald sub: 503 busy; reconnecting in 100 ms',
                'herald sub: 503 busy; reconnecting in 200 ms',
                ''].join('\n'));
            assert.equal(srv.requests.length, 4);
        } finally {
            srv.close();
        }
    });

    test('SIGINT while waiting to reconnect exits 0', T, async () => {
        const port = await closedPort();
        const sub = spawnHerald(['sub', 't', '--url', `http://127.0.0.1:${port}`]);
        // Wait for the first failed attempt, then interrupt the wait that follows.
        await sub.waitUntil(() => sub.stderr().includes('reconnecting'), 'a failed attempt');
        assert.match(sub.stderr(), /cannot connect to .*; reconnecting in 3000 ms/);
        sub.proc.kill('SIGINT');
        const r = await sub.done(5000);
        assert.equal(r.code, 0, `${r.signal}`);
    });
});

describe('herald serve on a port already taken', () => {
    // The workers share their port through SO_REUSEPORT, which would let a second herald
    // join it silently and take part of the connections; it must refuse instead.
    test('a second herald on the same port exits 1 naming the address, the first serves on', async () => {
        const first = await startHerald();
        try {
            const second = spawn(HERALD_BIN, ['serve', '--host', '127.0.0.1', '--port', String(first.port)],
                { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            second.stdout.on('data', (d) => { out += d; });
            second.stderr.on('data', (d) => { out += d; });
            const timer = setTimeout(() => second.kill('SIGKILL'), 10000);
            const [code] = await once(second, 'exit');
            clearTimeout(timer);
            assert.equal(code, 1, out);
            assert.match(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: Address already in use`));
            // Every connection still reaches the first one.
            for (let i = 0; i < 20; i += 1) {
                const r = await request(`${first.url}/healthz`);
                assert.equal(r.status, 200);
            }
        } finally {
            assert.equal(await first.stop(), 0);
        }
    });

    test('something else on the port: the same refusal', async () => {
        const other = net.createServer().listen(0, '127.0.0.1');
        await once(other, 'listening');
        const { port } = other.address();
        try {
            const proc = spawn(HERALD_BIN, ['serve', '--host', '127.0.0.1', '--port', String(port)],
                { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            proc.stderr.on('data', (d) => { out += d; });
            const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
            const [code] = await once(proc, 'exit');
            clearTimeout(timer);
            assert.equal(code, 1, out);
            assert.match(out, /Address already in use/);
        } finally {
            other.close();
        }
    });
});
