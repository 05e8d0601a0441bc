// Helpers shared by the integration suites, on top of harness.mjs: bounded waits, topic
// query strings, raw HTTP on a TCP socket (for malformed input and slow consumers),
// Prometheus text parsing and starting herald with an exact command line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { HERALD_BIN, SseParser, openStream, publish, request, sleep } from './harness.mjs';

// ---------------------------------------------------------------------------------------
// Waiting, always bounded, always with a message saying what did not happen.

// Polls `pred` (sync or async) every `every` ms until it returns a truthy value, which is
// returned; throws after `ms` with `what` and, if given, `describe()` of the last state.
export async function waitUntil(pred, { ms = 5000, every = 20, what = 'a condition', describe } = {}) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        last = await pred();
        if (last) return last;
        if (Date.now() >= deadline) {
            const extra = describe ? `; last state: ${await describe()}` : '';
            throw new Error(`timed out after ${ms} ms waiting for ${what}${extra}`);
        }
        await sleep(every);
    }
}

// Resolves like `promise`, or rejects after `ms` with a message naming `what`.
export function withTimeout(promise, ms, what) {
    let timer;
    const t = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------
// Topics and subscriptions.

let topicCounter = 0;
// A topic name no other test uses (the suites share one hub per file).
export function uniqueTopic(prefix = 'topic') {
    topicCounter += 1;
    return `${prefix}-${process.pid}-${topicCounter}`;
}

// `/events?topic=a&topic=b&k=v`, everything percent-encoded; `topics` may be empty/null.
export function eventsPath(topics = [], extra = {}, path = '/events') {
    const p = new URLSearchParams();
    for (const t of topics || []) p.append('topic', t);
    for (const [k, v] of Object.entries(extra)) p.append(k, v);
    const q = p.toString();
    return q ? `${path}?${q}` : path;
}

// Opens a stream on `topics` and waits until its first block (the `retry:` line) arrived,
// so that anything published afterwards must reach it. Asserts status 200.
export async function subscribe(base, topics, { headers = {}, query = {}, ms = 5000 } = {}) {
    const s = await openStream(base, eventsPath(topics, query), { headers });
    if (s.status !== 200) {
        s.close();
        assert.fail(`GET ${eventsPath(topics, query)} answered ${s.status}, expected 200`);
    }
    await s.waitFor(0, ms, () => s.body.includes('\n') || s.ended).catch(() => {
        s.close();
        throw new Error(`the stream on ${JSON.stringify(topics)} sent no retry line within ${ms} ms`);
    });
    return s;
}

// Waits until `s` holds at least `n` events; fails with the events it has, never hangs.
export async function waitEvents(s, n, ms = 5000) {
    try {
        await s.waitFor(n, ms, () => s.events.length >= n || s.ended);
    } catch {
        // fall through to the assertion below
    }
    assert.ok(s.events.length >= n,
        `expected at least ${n} events within ${ms} ms, got ${s.events.length} (ended=${s.ended}): ` +
        JSON.stringify(s.events.map((e) => e.data.slice(0, 40))));
    return s.events;
}

// Waits until an event whose data is `data` arrived on `s` and returns it.
export async function waitData(s, data, ms = 5000) {
    const find = () => s.events.find((e) => e.data === data);
    try {
        await s.waitFor(0, ms, () => Boolean(find()) || s.ended);
    } catch {
        // asserted below
    }
    const e = find();
    assert.ok(e, `event with data ${JSON.stringify(data)} did not arrive within ${ms} ms ` +
        `(ended=${s.ended}); got ${JSON.stringify(s.events.map((x) => x.data.slice(0, 40)))}`);
    return e;
}

// POST /events that must succeed; returns the id (response body, trailing newline allowed).
export async function publishOk(base, fields, opts = {}) {
    const res = await publish(base, fields, opts);
    assert.equal(res.status, 200, `publish ${JSON.stringify(fields).slice(0, 200)} -> ${res.status} ${res.body}`);
    const id = res.body.replace(/\r?\n$/, '');
    assert.ok(id.length > 0, 'publish answered 200 with an empty id');
    return id;
}

// Asserts a JSON error response: status, Content-Type application/json, {"error": "..."}.
export function assertJsonError(res, status, what = '') {
    const label = what ? `${what}: ` : '';
    assert.equal(res.status, status, `${label}expected ${status}, got ${res.status} with body ${JSON.stringify(res.body)}`);
    const ct = String(res.headers['content-type'] ?? '');
    assert.match(ct, /^application\/json\b/i, `${label}error Content-Type is ${JSON.stringify(ct)}`);
    let parsed;
    try {
        parsed = JSON.parse(res.body);
    } catch {
        assert.fail(`${label}error body is not JSON: ${JSON.stringify(res.body)}`);
    }
    assert.ok(parsed && typeof parsed === 'object' && !Array.isArray(parsed), `${label}error body is not an object: ${res.body}`);
    assert.equal(typeof parsed.error, 'string', `${label}error body has no "error" string: ${res.body}`);
    assert.ok(parsed.error.trim().length > 0, `${label}"error" is empty`);
    return parsed;
}

export const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------
// HTTP with a caller-chosen agent (keep-alive publishers).

export function requestWith(url, { agent, method = 'GET', headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method, headers, agent }, (res) => {
            let data = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { data += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
            res.on('error', reject);
        });
        req.on('error', reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

export function formBody(fields) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) {
        for (const item of Array.isArray(v) ? v : [v]) p.append(k, String(item));
    }
    return p.toString();
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP.

// Decodes a chunked body. Returns { body, complete }: complete once the last chunk was
// read; a truncated stream yields what its complete chunks (and partial one) held.
export function dechunk(s) {
    let body = '';
    let pos = 0;
    for (;;) {
        const eol = s.indexOf('\r\n', pos);
        if (eol < 0) return { body, complete: false, consumed: pos };
        const size = parseInt(s.slice(pos, eol).split(';')[0].trim(), 16);
        if (Number.isNaN(size)) return { body, complete: false, bad: true, consumed: pos };
        const start = eol + 2;
        if (size === 0) {
            // Trailer section ends with an empty line.
            const end = s.indexOf('\r\n', start);
            if (end < 0) return { body, complete: false, consumed: pos };
            return { body, complete: true, consumed: end + 2 };
        }
        if (s.length < start + size + 2) {
            body += s.slice(start, start + size);
            return { body, complete: false, consumed: pos };
        }
        body += s.slice(start, start + size);
        pos = start + size + 2;
    }
}

// Parses one HTTP response at the start of `raw` (a latin1 string). Returns null while
// the head is incomplete, else { status, headers, body (utf8), complete, rest }.
// A body without length is complete only when `closed`.
export function parseHttpResponse(raw, { closed = false, noBody = false } = {}) {
    const headEnd = raw.indexOf('\r\n\r\n');
    if (headEnd < 0) return null;
    const lines = raw.slice(0, headEnd).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) return { status: NaN, headers: {}, body: '', complete: true, bad: lines[0], rest: '' };
    const headers = {};
    for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
    }
    const status = Number(m[1]);
    const after = raw.slice(headEnd + 4);
    const toUtf8 = (s) => Buffer.from(s, 'latin1').toString('utf8');
    if (noBody || status === 204 || status === 304 || (status >= 100 && status < 200)) {
        return { status, headers, body: '', complete: true, rest: after };
    }
    if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        const d = dechunk(after);
        return { status, headers, body: toUtf8(d.body), complete: d.complete, rest: d.complete ? after.slice(d.consumed) : '' };
    }
    if (headers['content-length'] !== undefined) {
        const len = Number(headers['content-length']);
        const complete = after.length >= len;
        return { status, headers, body: toUtf8(after.slice(0, len)), complete, rest: complete ? after.slice(len) : '' };
    }
    return { status, headers, body: toUtf8(after), complete: closed, rest: '' };
}

// Writes `bytes` (string or Buffer, or an array of them written `gapMs` apart) on a new
// connection and resolves once `count` complete responses arrived (with `untilClose`: once
// the server closed) or after `timeoutMs`: { responses, response (the first), closed,
// timedOut, raw }.
export function rawRequest(port, bytes, { timeoutMs = 5000, count = 1, gapMs = 0, keepOpen = false, untilClose = false } = {}) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let raw = '';
        let done = false;
        const parseAll = (closed) => {
            const responses = [];
            let rest = raw;
            while (rest.length) {
                const r = parseHttpResponse(rest, { closed });
                if (!r || !r.complete) break;
                responses.push(r);
                if (r.bad) break;
                rest = r.rest;
            }
            return responses;
        };
        const finish = (closed, timedOut = false) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            const responses = parseAll(closed);
            if (!keepOpen || closed) sock.destroy();
            resolve({ responses, response: responses[0], closed, timedOut, raw, sock });
        };
        const timer = setTimeout(() => finish(false, true), timeoutMs);
        sock.on('connect', async () => {
            const parts = Array.isArray(bytes) ? bytes : [bytes];
            for (let i = 0; i < parts.length && !done && !sock.destroyed; i++) {
                if (i > 0 && gapMs) await sleep(gapMs);
                if (!done && !sock.destroyed && parts[i] !== undefined && parts[i].length) sock.write(parts[i]);
            }
        });
        sock.on('data', (d) => {
            raw += d.toString('latin1');
            if (!untilClose && parseAll(false).length >= count) finish(false);
        });
        sock.on('end', () => finish(true));
        sock.on('close', () => finish(true));
        // EPIPE / ECONNRESET: the server closed while we were still writing.
        sock.on('error', () => finish(true));
    });
}

// Opens a raw TCP SSE subscription that never reads (a slow consumer): the request is
// sent and the socket paused before Node reads anything. `drain()` starts reading and
// resolves once the server closed the connection, with the parsed events.
export function openStalledStream(port, path) {
    const sock = net.connect(port, '127.0.0.1');
    sock.pause();
    const chunks = [];
    let closed = false;
    let error = null;
    const closedP = new Promise((resolve) => {
        sock.on('close', () => { closed = true; resolve(); });
    });
    sock.on('error', (e) => { error = e; });
    const connected = once(sock, 'connect').then(() => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    return {
        sock,
        connected,
        get closed() { return closed; },
        get error() { return error; },
        // Reads everything until the server closes (at most `ms`); returns
        // { closed, bytes, status, headers, events }.
        async drain(ms = 15000) {
            sock.on('data', (d) => chunks.push(d));
            sock.resume();
            await withTimeout(closedP, ms, 'the server to close the slow consumer\'s connection').catch(() => {});
            const raw = Buffer.concat(chunks).toString('latin1');
            const bytes = raw.length;
            const head = parseHttpResponse(raw, { closed: true });
            const parser = new SseParser();
            // SseParser re-scans its buffer per line: feed megabytes in small pieces.
            if (head) for (let i = 0; i < head.body.length; i += 16384) parser.push(head.body.slice(i, i + 16384));
            sock.destroy();
            return { closed, bytes, status: head?.status, headers: head?.headers, events: parser.events };
        },
        destroy() { sock.destroy(); },
    };
}

// ---------------------------------------------------------------------------------------
// Metrics.

// Parses Prometheus text into [{ name, labels (string), value }].
export function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
        if (!m) continue;
        out.push({ name: m[1], labels: m[2] || '', value: Number(m[3]) });
    }
    return out;
}

export async function getMetrics(base) {
    const r = await request(`${base}/metrics`);
    assert.equal(r.status, 200, `/metrics answered ${r.status}`);
    const samples = parseMetrics(r.body);
    return {
        text: r.body,
        headers: r.headers,
        samples,
        has: (name) => samples.some((s) => s.name === name),
        // Sum over every series of `name` (optionally those whose labels match `labelRe`).
        sum: (name, labelRe) => samples.filter((s) => s.name === name && (!labelRe || labelRe.test(s.labels)))
            .reduce((a, s) => a + s.value, 0),
    };
}

// ---------------------------------------------------------------------------------------
// Starting herald with an exact command line (startHerald always passes --port 0).

// Spawns `HERALD_BIN ...argv` and resolves once it logs that it listens:
// { port, url, proc, output(), stop(signal) } like startHerald.
export async function spawnHerald(argv, { env = {}, stdin = 'ignore', startMs = 15000 } = {}) {
    const proc = spawn(HERALD_BIN, argv, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig)));
    const port = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`herald ${argv.join(' ')} did not start within ${startMs} ms:\n${out}`));
        }, startMs);
        const check = () => {
            const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(out);
            if (m) { clearTimeout(timer); resolve(Number(m[1])); }
        };
        proc.stdout.on('data', (d) => { out += d; check(); });
        proc.stderr.on('data', (d) => { out += d; check(); });
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        exited.then((code) => {
            clearTimeout(timer);
            reject(new Error(`herald exited (${code}) before listening:\n${out}`));
        });
    });
    return {
        port,
        url: `http://127.0.0.1:${port}`,
        proc,
        output: () => out,
        async stop(signal = 'SIGTERM') {
            if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode;
            proc.kill(signal);
            return exited;
        },
    };
}

// Runs `HERALD_BIN ...argv` to completion (killed after `ms`): { code, output, timedOut }.
export function runHerald(argv, { env = {}, ms = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const proc = spawn(HERALD_BIN, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let timedOut = false;
        proc.stdout.on('data', (d) => { out += d; });
        proc.stderr.on('data', (d) => { out += d; });
        const timer = setTimeout(() => { timedOut = true; proc.kill('SIGKILL'); }, ms);
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        proc.on('close', (code, sig) => {
            clearTimeout(timer);
            resolve({ code: code ?? sig, output: out, timedOut });
        });
    });
}

// A port nothing listens on.
export async function closedPort() {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    srv.close();
    await once(srv, 'close');
    return port;
}

export { sleep };

// Compares two hub ids for sorting: numerically when both are decimal (the stores' ids),
// else by length, then bytes.
export function cmpId(a, b) {
    if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
        const x = BigInt(a);
        const y = BigInt(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.length !== b.length) return a.length - b.length;
    return a < b ? -1 : a > b ? 1 : 0;
}
