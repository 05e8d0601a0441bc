// examples/nginx: herald behind a real nginx, started the way a user starts it, through
// examples/nginx/run.sh. Small events pass through one at a time; a deliberately buffering
// config holds them (the negative control) while the shipped one and one that merely
// forgets `proxy_buffering off` do not; resume and an EventSource's own reconnection work
// through the proxy; publish answers and herald's JSON errors pass unchanged; run.sh
// stops everything and removes its work directory on SIGTERM, and refuses clearly when
// something is missing or taken.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Conn } from './lib/conn.mjs';
import { EventSource, openEventSource } from './lib/eventsource.mjs';
import { HERALD_BIN, SseParser, publish, request, sleep } from './lib/harness.mjs';
import {
    assertJsonError, closedPort, getMetrics, parseHttpResponse, parseMetrics, publishOk, subscribe, uniqueTopic,
    waitData, waitEvents, waitUntil, withTimeout,
} from './lib/util.mjs';

const RUN_SH = new URL('../../examples/nginx/run.sh', import.meta.url).pathname;
const TEMPLATE = new URL('../../examples/nginx/nginx.conf', import.meta.url).pathname;
const T = { timeout: 30000 };
// How long a small event may take through the proxy; with response buffering it never
// comes (it sits in a half-empty 4 KiB buffer).
const DELIVERY_MS = 3000;
// The retry: hint herald sends (HERALD_SERVER_RETRY_MS): long enough for the reconnection
// test to publish while the EventSource waits, short enough to keep the suite quick.
const RETRY_MS = 1000;

// ---------------------------------------------------------------------------------------
// Processes, seen through /proc.

function procStat(pid) {
    let stat;
    try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
        return null;
    }
    // Fields after the command name (which may hold spaces): state ppid ... starttime (22).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]), start: rest[19] };
}

// A process identity that survives pid reuse: pid plus start time.
function identity(pid) {
    const s = procStat(pid);
    assert.ok(s && s.state !== 'Z', `process ${pid} is not running`);
    return { pid, start: s.start };
}

function running({ pid, start }) {
    const s = procStat(pid);
    return Boolean(s) && s.state !== 'Z' && s.start === start;
}

function childrenOf(ppid) {
    const out = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        const s = procStat(name);
        if (s && s.ppid === ppid && s.state !== 'Z') out.push(identity(Number(name)));
    }
    return out;
}

function portRefuses(port) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('connect', () => { sock.destroy(); resolve(false); });
        sock.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
}

// ---------------------------------------------------------------------------------------
// run.sh

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-nginx-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

// The shipped template with some lines changed; each `from` must be in it.
function derivedConf(name, replacements) {
    let text = fs.readFileSync(TEMPLATE, 'utf8');
    for (const [from, to] of replacements) {
        assert.ok(text.includes(from), `examples/nginx/nginx.conf no longer contains ${JSON.stringify(from)}`);
        text = text.replace(from, to);
    }
    const file = path.join(scratch, name);
    fs.writeFileSync(file, text);
    return file;
}

// Spawns run.sh with its own TMPDIR (so that leftovers can be seen) and free ports.
function spawnRunSh({ env = {}, args = [], port, heraldPort }) {
    const tmp = fs.mkdtempSync(path.join(scratch, 'tmp-'));
    const proc = spawn(RUN_SH, args, {
        env: {
            ...process.env,
            HERALD_BIN,
            PORT: String(port),
            HERALD_PORT: String(heraldPort),
            TMPDIR: tmp,
            HERALD_SERVER_RETRY_MS: String(RETRY_MS),
            ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, so that a failed test can still clean up
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, sig) => resolve(code ?? sig));
        proc.on('error', (e) => resolve(`spawn error: ${e.message}`));
    });
    const r = { proc, tmp, exited, output: () => out };
    started.push(r);
    return r;
}

// Every run.sh started, for the file-level after() should a test time out mid-way.
const started = [];
after(async () => {
    for (const r of started) await forceStop(r);
});

async function twoPorts() {
    const port = await closedPort();
    let heraldPort = await closedPort();
    while (heraldPort === port) heraldPort = await closedPort();
    return { port, heraldPort };
}

// Starts the example and waits for run.sh's "ready" line. A port taken by someone else
// between closedPort() and run.sh's check is retried with new ports.
async function startExample({ env = {}, args = [] } = {}) {
    for (let attempt = 1; ; attempt++) {
        const ports = await twoPorts();
        const r = spawnRunSh({ env, args, ...ports });
        let code;
        r.exited.then((c) => { code = c; });
        await waitUntil(() => /run\.sh: ready at /.test(r.output()) || code !== undefined, {
            ms: 30000, what: 'run.sh to print its ready line', describe: () => r.output(),
        }).catch(async (e) => {
            await forceStop(r);
            throw e;
        });
        if (code !== undefined) {
            fs.rmSync(r.tmp, { recursive: true, force: true });
            if (attempt < 3 && /already in use/.test(r.output())) continue;
            assert.fail(`run.sh exited (${code}) before it was ready:\n${r.output()}`);
        }
        const out = r.output();
        const num = (re) => {
            const m = re.exec(out);
            assert.ok(m, `run.sh printed no ${re}:\n${out}`);
            return m[1];
        };
        const ex = Object.assign(r, {
            ...ports,
            url: num(/run\.sh: ready at (http:\/\/\S+?)\/?\n/),
            heraldUrl: `http://127.0.0.1:${ports.heraldPort}`,
            herald: identity(Number(num(/run\.sh: herald \(pid (\d+),/))),
            nginx: identity(Number(num(/run\.sh: nginx \(pid (\d+),/))),
            workdir: num(/run\.sh: work dir (\S+) /),
        });
        assert.equal(ex.url, `http://127.0.0.1:${ports.port}`);
        assert.ok(fs.existsSync(path.join(ex.workdir, 'nginx.conf')), `no nginx.conf in ${ex.workdir}`);
        assert.ok(ex.workdir.startsWith(`${r.tmp}/`), `work dir ${ex.workdir} is not under TMPDIR ${r.tmp}`);
        return ex;
    }
}

// SIGTERM to run.sh alone, as Ctrl-C or a service manager would: run.sh must stop nginx
// (master and workers) and herald, remove its work dir and exit 0.
async function stopExample(ex) {
    const workers = childrenOf(ex.nginx.pid);
    assert.ok(workers.length >= 1, 'nginx has no worker processes');
    ex.proc.kill('SIGTERM');
    const code = await withTimeout(ex.exited, 15000, 'run.sh to exit after SIGTERM');
    ex.stopped = true;
    assert.equal(code, 0, `run.sh exited with ${code}:\n${ex.output()}`);
    for (const [what, p] of [['herald', ex.herald], ['the nginx master', ex.nginx],
        ...workers.map((w) => ['an nginx worker', w])]) {
        assert.ok(!running(p), `${what} (pid ${p.pid}) still runs after run.sh exited`);
    }
    assert.ok(!fs.existsSync(ex.workdir), `run.sh left its work dir ${ex.workdir}`);
    assert.deepEqual(fs.readdirSync(ex.tmp), [], 'run.sh left files in its TMPDIR');
    assert.ok(await portRefuses(ex.port), `something still listens on nginx's port ${ex.port}`);
    assert.ok(await portRefuses(ex.heraldPort), `something still listens on herald's port ${ex.heraldPort}`);
    assert.match(ex.output(), /SIGTERM: shutting down/, 'herald did not log a clean shutdown');
}

// Last resort after a failed test: TERM, then KILL the process group run.sh leads, and
// KILL whatever of herald and nginx outlived it (it would hold the output pipes open).
async function forceStop(r) {
    if (!r) return;
    if (!r.stopped) {
        r.stopped = true;
        try { r.proc.kill('SIGTERM'); } catch { /* gone */ }
        const code = await withTimeout(r.exited, 10000, 'run.sh').catch(() => undefined);
        if (code === undefined) {
            try { process.kill(-r.proc.pid, 'SIGKILL'); } catch { /* gone */ }
        }
    }
    const left = [r.herald, r.nginx, ...(r.nginx ? childrenOf(r.nginx.pid) : [])];
    for (const p of left) {
        if (p && running(p)) process.kill(p.pid, 'SIGKILL');
    }
}

// Runs run.sh where it must refuse: resolves to { code, output, tmpLeft } (bounded).
async function runExpectingFailure({ env = {}, args = [], ports } = {}) {
    const r = spawnRunSh({ env, args, ...(ports ?? await twoPorts()) });
    const code = await withTimeout(r.exited, 20000, 'run.sh to give up').catch(async (e) => {
        await forceStop(r);
        throw new Error(`${e.message}; output:\n${r.output()}`);
    });
    const tmpLeft = fs.readdirSync(r.tmp);
    fs.rmSync(r.tmp, { recursive: true, force: true });
    return { code, output: r.output(), tmpLeft };
}

// ---------------------------------------------------------------------------------------
// Clients.

// subscribe() with a bound on the response head too: a buffering proxy may hold even that.
function subscribeVia(base, topics, opts = {}) {
    return withTimeout(subscribe(base, topics, { ...opts, ms: DELIVERY_MS }), DELIVERY_MS,
        `the response head and the retry line of GET /events?topic=${topics.join(',')} through nginx`);
}

const idsAndData = (events) => events.map((e) => ({ id: e.id, data: e.data }));

// Subscribers herald itself counts on `topic` (asked directly, not through nginx).
async function heraldSubscribers(ex, topic) {
    const r = await request(`${ex.heraldUrl}/topics`);
    assert.equal(r.status, 200, `herald's /topics answered ${r.status}`);
    return JSON.parse(r.body).topics.find((t) => t.topic === topic)?.subscribers ?? 0;
}

// ---------------------------------------------------------------------------------------

describe('herald behind nginx (examples/nginx/run.sh)', () => {
    let ex;
    before(async () => {
        // Arguments after run.sh go to `herald serve`.
        ex = await startExample({ args: ['--threads', '1'] });
    });
    after(async () => {
        await forceStop(ex);
    });

    test('run.sh passed its arguments to herald serve', T, () => {
        assert.match(ex.output(), /herald \S+ listening on http:\/\/127\.0\.0\.1:\d+ \(1 workers?\b/);
    });

    test('small events pass through one at a time, unbuffered', T, async () => {
        const topic = uniqueTopic('nginx');
        // subscribe() waits for the opening `retry:` block, which already has to pass nginx.
        const s = await subscribeVia(ex.url, [topic]);
        try {
            assert.equal(s.status, 200);
            assert.match(String(s.headers.server), /^nginx\b/, 'the answer did not come through nginx');
            assert.match(String(s.headers['content-type']), /^text\/event-stream\b/);
            assert.equal(s.headers['content-length'], undefined, 'a stream must not have a length');
            assert.equal(s.headers['transfer-encoding'], 'chunked');
            assert.equal(s.headers['cache-control'], 'no-cache');
            const sent = [];
            for (let i = 0; i < 5; i++) {
                const data = `small event ${i}`;
                sent.push({ id: await publishOk(ex.url, { topic, data }), data });
                await waitEvents(s, i + 1, DELIVERY_MS);
                assert.deepEqual(idsAndData(s.events), sent);
                assert.equal(s.ended, false, 'the stream ended');
            }
        } finally {
            s.close();
        }
    });

    test('resume through the proxy, by header and by query: the missed events, in order, once', T, async () => {
        const topic = uniqueTopic('resume');
        const s1 = await subscribeVia(ex.url, [topic]);
        const seen = [];
        try {
            for (let i = 0; i < 3; i++) {
                const data = `seen ${i}`;
                seen.push({ id: await publishOk(ex.url, { topic, data }), data });
                await waitEvents(s1, i + 1, DELIVERY_MS);
            }
            assert.deepEqual(idsAndData(s1.events), seen);
        } finally {
            s1.close();
        }
        await waitUntil(async () => (await heraldSubscribers(ex, topic)) === 0, {
            what: 'herald to notice the first subscriber left',
        });
        const missed = [];
        for (let i = 0; i < 4; i++) {
            const data = `missed ${i}`;
            missed.push({ id: await publishOk(ex.url, { topic, data }), data });
        }
        const lastSeen = seen[seen.length - 1].id;
        const ways = [
            ['the Last-Event-ID header', { headers: { 'Last-Event-ID': lastSeen } }],
            ['?lastEventID=', { query: { lastEventID: lastSeen } }],
        ];
        for (const [how, opts] of ways) {
            const s = await subscribeVia(ex.url, [topic], opts);
            try {
                assert.equal(s.headers['last-event-id'], lastSeen,
                    `resuming with ${how}: the Last-Event-ID response header did not come through`);
                // A live event after the replay: everything before it is the whole replay.
                const data = `live after ${how}`;
                const live = { id: await publishOk(ex.url, { topic, data }), data };
                await waitData(s, data, DELIVERY_MS);
                missed.push(live);
                assert.deepEqual(idsAndData(s.events), missed, `resuming with ${how}`);
            } finally {
                s.close();
            }
        }
    });

    test('an EventSource reconnects by itself when nginx drops its stream, and misses nothing', T, async () => {
        const topic = uniqueTopic('es');
        const client = openEventSource(`${ex.url}/events?topic=${encodeURIComponent(topic)}`);
        try {
            await waitUntil(() => client.opens === 1, { ms: 10000, what: 'the EventSource to open' });
            const sent = [];
            for (let i = 0; i < 2; i++) {
                const data = `before ${i}`;
                sent.push({ id: await publishOk(ex.url, { topic, data }), data });
                await waitUntil(() => client.messages.length === i + 1, {
                    ms: DELIVERY_MS, what: `message ${i}`, describe: () => JSON.stringify(client.messages),
                });
            }
            // A crashed nginx worker: the connection drops mid-stream, the master starts
            // a new worker. (What a client sees is the same as for a reload past
            // worker_shutdown_timeout or a proxy restart.)
            const workers = childrenOf(ex.nginx.pid);
            assert.ok(workers.length >= 1, 'nginx has no workers');
            for (const w of workers) process.kill(w.pid, 'SIGKILL');
            await waitUntil(() => client.errors >= 1, {
                ms: 5000, what: 'the EventSource to notice that its stream was cut',
            });
            assert.notEqual(client.es.readyState, EventSource.CLOSED, 'the EventSource gave up');
            // While it waits its retry (RETRY_MS), publish straight to herald.
            for (let i = 0; i < 3; i++) {
                const data = `during the gap ${i}`;
                sent.push({ id: await publishOk(ex.heraldUrl, { topic, data }), data });
            }
            assert.equal(client.opens, 1, 'the EventSource was back before the gap events were published');
            await waitUntil(() => client.opens === 2, { ms: 10000, what: 'the EventSource to reconnect' });
            const data = 'after the reconnection';
            sent.push({ id: await publishOk(ex.url, { topic, data }), data });
            await waitUntil(() => client.messages.length >= sent.length, {
                ms: DELIVERY_MS, what: 'the replayed and live messages', describe: () => JSON.stringify(client.messages),
            });
            assert.deepEqual(client.messages.map((m) => ({ id: m.lastEventId, data: m.data })), sent);

            assert.equal(client.requests.length, 2, JSON.stringify(client.requests));
            const again = client.requests[1];
            assert.equal(again.status, 200);
            assert.equal(again.headers['Last-Event-ID'], sent[1].id, 'the reconnection did not carry the last id');
            assert.equal(again.lastEventId, sent[1].id, 'the Last-Event-ID response header did not come through');
            const now = childrenOf(ex.nginx.pid);
            assert.ok(now.length >= 1 && now.every((w) => !workers.some((k) => k.pid === w.pid)),
                'the nginx master did not replace its killed workers');
        } finally {
            client.es.close();
        }
    });

    test('publish through the proxy: form and JSON get 200 and the id', T, async () => {
        const topic = uniqueTopic('pub');
        const s = await subscribeVia(ex.url, [topic]);
        try {
            const form = await publish(ex.url, { topic, data: 'by form' });
            assert.equal(form.status, 200, form.body);
            assert.match(String(form.headers['content-type']), /^text\/plain\b/);
            const json = await publish(ex.url, { topic, data: { n: 1 } }, { json: true });
            assert.equal(json.status, 200, json.body);
            const asJson = await publish(ex.url, { topic, data: 'asked for JSON' },
                { json: true, headers: { Accept: 'application/json' } });
            assert.equal(asJson.status, 200, asJson.body);
            assert.match(String(asJson.headers['content-type']), /^application\/json\b/);
            const ids = [form.body.trim(), json.body.trim(), JSON.parse(asJson.body).id];
            await waitEvents(s, 3, DELIVERY_MS);
            assert.deepEqual(idsAndData(s.events), [
                { id: ids[0], data: 'by form' },
                { id: ids[1], data: '{"n":1}' },
                { id: ids[2], data: 'asked for JSON' },
            ]);
        } finally {
            s.close();
        }
    });

    test('publishers through nginx reuse its connections to herald (upstream keep-alive)', T, async () => {
        const topic = uniqueTopic('keepalive');
        const workers = childrenOf(ex.nginx.pid).length;
        const before = (await getMetrics(ex.heraldUrl)).sum('herald_connections_total');
        const n = 12;
        for (let i = 0; i < n; i++) await publishOk(ex.url, { topic, data: `p${i}` });
        const after = (await getMetrics(ex.heraldUrl)).sum('herald_connections_total');
        // This second /metrics request is one connection; each nginx worker may open one
        // of its own. Without HTTP/1.1 and an empty Connection header it would be n.
        assert.ok(after - before <= 1 + workers,
            `${n} publishes through nginx opened ${after - before - 1} connections to herald (${workers} workers)`);
    });

    test("herald's errors pass through unchanged: status, JSON body", T, async () => {
        const cases = [
            ['POST /events without a topic', '/events', {
                method: 'POST',
                headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                body: 'data=x',
            }, 400],
            ['POST /events with broken JSON', '/events', {
                method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"topic":',
            }, 400],
            ['GET of an unknown path', '/no/such/path', {}, 404],
            ['GET /events with a topic over 1 KiB', `/events?topic=${'t'.repeat(1100)}`, {}, 400],
        ];
        for (const [what, p, opts, status] of cases) {
            const direct = await request(ex.heraldUrl + p, opts);
            const proxied = await request(ex.url + p, opts);
            assertJsonError(direct, status, `${what}, straight to herald`);
            assertJsonError(proxied, status, `${what}, through nginx`);
            assert.match(String(proxied.headers.server), /^nginx\b/);
            assert.equal(proxied.body, direct.body, `${what}: nginx changed the body`);
            assert.equal(proxied.headers['content-type'], direct.headers['content-type']);
        }
        // Over herald's body limit (1 MiB) but under nginx's (2m in the template): herald's
        // JSON 413, not nginx's HTML page.
        const big = await request(`${ex.url}/events`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: `topic=t&data=${'x'.repeat(1200 * 1024)}`,
        });
        const err = assertJsonError(big, 413, 'a 1.2 MB publish through nginx');
        assert.match(err.error, /max_body_bytes/);
    });

    test('SIGTERM to run.sh stops herald and nginx and removes the work dir', T, async () => {
        await stopExample(ex);
    });
});

describe('what proxy buffering does to a stream', () => {
    // The only difference from the shipped template: the line that matters most.
    test('the negative control: buffering on and X-Accel-Buffering ignored holds a small event', T, async () => {
        const conf = derivedConf('buffering-forced.conf', [
            ['proxy_buffering off;', 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;'],
        ]);
        const ex = await startExample({ env: { NGINX_CONF: conf } });
        const topic = uniqueTopic('held');
        // A raw socket, not openStream(): with buffering on, nginx holds even the response
        // head (its write filter sends less than postpone_output, 1460 bytes, only when
        // asked to flush, which unbuffered proxying does and buffered proxying does not).
        const sock = net.connect(ex.port, '127.0.0.1');
        let raw = '';
        sock.on('data', (d) => { raw += d.toString('latin1'); });
        sock.on('error', () => {});
        try {
            sock.write(`GET /events?topic=${encodeURIComponent(topic)} HTTP/1.1\r\n` +
                `Host: 127.0.0.1:${ex.port}\r\nAccept: text/event-stream\r\n\r\n`);
            await waitUntil(async () => (await heraldSubscribers(ex, topic)) === 1, {
                ms: DELIVERY_MS, what: 'herald to count the subscriber behind nginx',
            });
            const data = 'small and stuck';
            const id = await publishOk(ex.url, { topic, data });
            // herald wrote it to nginx: its /status shows the event as the last one sent.
            await waitUntil(async () => {
                const st = JSON.parse((await request(`${ex.heraldUrl}/status`)).body);
                return Object.values(st).some((c) => c.topics.includes(topic) && c.lastEventId === id);
            }, { ms: DELIVERY_MS, what: 'herald to send the event to nginx' });
            await sleep(DELIVERY_MS);
            assert.ok(!raw.includes(data), `the event came through although nginx buffers:\n${raw}`);
            assert.equal(raw, '', 'nginx sent something (the head, the retry line) while buffering');
            assert.ok(!sock.destroyed && sock.readyState === 'open', 'nginx closed the connection');
            // It is held, not lost: a big event fills nginx's buffers and pushes it out.
            await publishOk(ex.url, { topic, data: 'x'.repeat(64 * 1024) });
            await waitUntil(() => raw.includes(data), {
                ms: DELIVERY_MS, what: 'the held event once buffers filled', describe: () => raw.slice(0, 500),
            });
            const res = parseHttpResponse(raw);
            assert.equal(res.status, 200);
            const parser = new SseParser();
            parser.push(res.body);
            assert.deepEqual(idsAndData(parser.events.slice(0, 1)), [{ id, data }]);
        } finally {
            sock.destroy();
            await forceStop(ex);
        }
    });

    test("a config that forgets `proxy_buffering off` still streams: herald's X-Accel-Buffering: no", T, async () => {
        const conf = derivedConf('buffering-on.conf', [['proxy_buffering off;', 'proxy_buffering on;']]);
        const ex = await startExample({ env: { NGINX_CONF: conf } });
        try {
            const topic = uniqueTopic('forgot');
            const s = await subscribeVia(ex.url, [topic]);
            try {
                // nginx consumes the header: the client does not see it.
                assert.equal(s.headers['x-accel-buffering'], undefined);
                const sent = [];
                for (let i = 0; i < 3; i++) {
                    const data = `small ${i}`;
                    sent.push({ id: await publishOk(ex.url, { topic, data }), data });
                    await waitEvents(s, i + 1, DELIVERY_MS);
                    assert.deepEqual(idsAndData(s.events), sent);
                }
            } finally {
                s.close();
            }
            await stopExample(ex);
        } finally {
            await forceStop(ex);
        }
    });
});

// Behind nginx every connection to herald comes from 127.0.0.1. run.sh makes herald trust
// that address (server.trusted_proxies), so herald reads each client from the
// X-Forwarded-For nginx sets: clients connect to nginx from 127.0.0.2, 127.0.0.3... (all
// loopback) and herald must see those, in /status and in its per-IP limit.
describe('client addresses behind nginx (server.trusted_proxies)', () => {
    const path = () => `/events?topic=${uniqueTopic('behind')}`;

    // A stream through nginx from `localAddress`; resolves to { c, status, body }.
    async function streamVia(ex, localAddress, p, headers = {}) {
        const c = await Conn.open(ex.port, { localAddress });
        const r = await c.stream(p, { headers });
        return { c, status: r.status, body: r.body };
    }

    // The `remote` of every stream, from herald's own /status (asked from an address of its
    // own, which no per-IP limit has used up).
    async function remotes(ex) {
        const c = await Conn.open(ex.heraldPort, { localAddress: '127.0.0.9' });
        try {
            const r = await c.request('/status');
            assert.equal(r.status, 200, r.body);
            return Object.values(JSON.parse(r.body)).map((s) => s.remote).sort();
        } finally {
            c.close();
        }
    }

    const rejectedPerIp = async (ex) => {
        const c = await Conn.open(ex.heraldPort, { localAddress: '127.0.0.9' });
        try {
            const r = await c.request('/metrics');
            return parseMetrics(r.body).filter((m) => m.name === 'herald_requests_rejected_total' &&
                m.labels === '{reason="max_connections_per_ip"}').reduce((a, m) => a + m.value, 0);
        } finally {
            c.close();
        }
    };

    test("/status shows each client's address, the per-IP limit applies per client, a forged header counts for nothing", T, async () => {
        const ex = await startExample({ env: { HERALD_SERVER_MAX_CONNECTIONS_PER_IP: '2' } });
        const conns = [];
        try {
            assert.match(ex.output(), /trusted proxies: 127\.0\.0\.1\/32/);
            const p = path();
            for (const from of ['127.0.0.2', '127.0.0.2', '127.0.0.3']) {
                const s = await streamVia(ex, from, p);
                conns.push(s.c);
                assert.equal(s.status, 200, `a stream from ${from}: ${s.status} ${s.body}`);
            }
            // A client that claims another address: nginx appends the one it saw.
            const forged = await streamVia(ex, '127.0.0.3', p, { 'X-Forwarded-For': '203.0.113.66' });
            conns.push(forged.c);
            assert.equal(forged.status, 200);
            assert.deepEqual(await remotes(ex), ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);

            const before = await rejectedPerIp(ex);
            // A third stream from 127.0.0.2 is over its limit; nginx passes the 429 on.
            const third = await streamVia(ex, '127.0.0.2', p);
            conns.push(third.c);
            assert.equal(third.status, 429, third.body);
            assert.match(JSON.parse(third.body).error, /too many connections from 127\.0\.0\.2: at most 2 \(server\.max_connections_per_ip\)/);
            // So is a third from 127.0.0.3 that pretends to be someone else.
            const pretends = await streamVia(ex, '127.0.0.3', p, { 'X-Forwarded-For': '203.0.113.67' });
            conns.push(pretends.c);
            assert.equal(pretends.status, 429, pretends.body);
            // Another client is served, though nginx holds more than 2 connections to herald.
            const other = await streamVia(ex, '127.0.0.4', p);
            conns.push(other.c);
            assert.equal(other.status, 200, other.body);
            await waitUntil(async () => (await rejectedPerIp(ex)) === before + 2,
                { ms: 5000, what: 'the two refusals counted as max_connections_per_ip' });

            // Sent straight to herald from an untrusted peer, the same header is ignored.
            const direct = await Conn.open(ex.heraldPort, { localAddress: '127.0.0.5' });
            conns.push(direct);
            assert.equal((await direct.stream(p, { headers: { 'X-Forwarded-For': '127.0.0.4' } })).status, 200);
            const seen = await remotes(ex);
            assert.ok(seen.includes(`127.0.0.5:${direct.localPort}`), seen.join(', '));
            assert.ok(!seen.some((r) => r.startsWith('127.0.0.1') || r.startsWith('203.0.113.')), seen.join(', '));
            for (const c of conns) c.close();
            await stopExample(ex);
        } finally {
            for (const c of conns) c.close();
            await forceStop(ex);
        }
    });

    test('the negative control: trusting nobody, every client has nginx\'s address and one limit', T, async () => {
        const ex = await startExample({
            env: { HERALD_SERVER_TRUSTED_PROXIES: '', HERALD_SERVER_MAX_CONNECTIONS_PER_IP: '2' },
        });
        const conns = [];
        try {
            assert.match(ex.output(), /trusted proxies: none/);
            const p = path();
            const streams = [];
            for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
                const st = await streamVia(ex, from, p);
                conns.push(st.c);
                streams.push(st);
            }
            // Three clients, one address: nginx's connections share herald's per-IP limit
            // of 2, so three streams from three clients cannot all be served.
            const served = streams.filter((st) => st.status === 200).length;
            assert.ok(served >= 1 && served <= 2, `streams served: ${streams.map((st) => st.status)}`);
            const seen = await remotes(ex);
            assert.equal(seen.length, served);
            for (const r of seen) assert.match(r, /^127\.0\.0\.1:\d+$/, seen.join(', '));
        } finally {
            for (const c of conns) c.close();
            await forceStop(ex);
        }
    });
});

describe('run.sh refuses clearly', () => {
    let taken;
    before(async () => {
        taken = net.createServer((c) => c.destroy());
        taken.listen(0, '127.0.0.1');
        await new Promise((resolve) => taken.on('listening', resolve));
    });
    after(() => taken?.close());

    const refusal = (name, expected, make) => test(name, T, async () => {
        const r = await runExpectingFailure(await make());
        assert.equal(r.code, 1, `run.sh exited with ${r.code}:\n${r.output}`);
        assert.match(r.output, expected);
        assert.deepEqual(r.tmpLeft, [], 'run.sh left files in its TMPDIR');
        assert.doesNotMatch(r.output, /run\.sh: ready at/);
        return r;
    });

    refusal('a HERALD_BIN that does not exist',
        /run\.sh: HERALD_BIN=\/nonexistent\/herald: no such executable file/,
        () => ({ env: { HERALD_BIN: '/nonexistent/herald' } }));
    refusal('a herald that exits at start',
        /fake herald: cannot start[\s\S]*run\.sh: herald exited \(status 3\) before it answered/,
        () => {
            const fake = path.join(scratch, 'fake-herald');
            fs.writeFileSync(fake, '#!/bin/sh\necho "fake herald: cannot start" >&2\nexit 3\n', { mode: 0o755 });
            return { env: { HERALD_BIN: fake } };
        });
    refusal("nginx's port already taken",
        /run\.sh: 127\.0\.0\.1:\d+ \(PORT, for nginx\) is already in use/,
        async () => ({ ports: { port: taken.address().port, heraldPort: await closedPort() } }));
    refusal("herald's port already taken",
        /run\.sh: 127\.0\.0\.1:\d+ \(HERALD_PORT, for herald\) is already in use/,
        async () => ({ ports: { port: await closedPort(), heraldPort: taken.address().port } }));
    refusal('an NGINX that does not exist',
        /run\.sh: NGINX=\/nonexistent\/nginx: no such executable file/,
        () => ({ env: { NGINX: '/nonexistent/nginx' } }));
    refusal('a template nginx rejects',
        /invalid value "maybe"[\s\S]*run\.sh: nginx refused the configuration/,
        () => ({ env: { NGINX_CONF: derivedConf('invalid.conf', [['proxy_buffering off;', 'proxy_buffering maybe;']]) } }));
    refusal('a template with a placeholder run.sh does not know',
        /run\.sh: .*no value for @@NOPE@@/,
        () => ({ env: { NGINX_CONF: derivedConf('unknown.conf', [['keepalive 16;', 'keepalive 16; # @@NOPE@@']]) } }));

    test('herald dying takes nginx down too, and the work dir goes', T, async () => {
        const ex = await startExample();
        try {
            const workers = childrenOf(ex.nginx.pid);
            process.kill(ex.herald.pid, 'SIGKILL');
            const code = await withTimeout(ex.exited, 15000, 'run.sh to notice that herald died');
            ex.stopped = true;
            assert.equal(code, 1, ex.output());
            assert.match(ex.output(), /run\.sh: herald \(pid \d+\) exited; stopping nginx/);
            for (const p of [ex.nginx, ...workers]) assert.ok(!running(p), `nginx (pid ${p.pid}) still runs`);
            assert.deepEqual(fs.readdirSync(ex.tmp), [], 'run.sh left files in its TMPDIR');
        } finally {
            await forceStop(ex);
        }
    });
});
