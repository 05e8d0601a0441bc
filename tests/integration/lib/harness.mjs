// Shared helpers for the integration suites: start the real herald binary on a loopback
// port chosen by the kernel, talk HTTP to it with Node's own clients, read SSE streams.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';

export const HERALD_BIN = process.env.HERALD_BIN || new URL('../../../build/dev/herald', import.meta.url).pathname;

// Starts `herald serve` on 127.0.0.1 with port 0 and resolves once it listens.
// Returns { port, url, proc, output(), stop() }; stop() sends SIGTERM and resolves to the
// exit code (or the signal name).
export async function startHerald({ args = [], env = {}, threads = 2, stdin = 'ignore' } = {}) {
    const proc = spawn(HERALD_BIN, ['serve', '--host', '127.0.0.1', '--port', '0',
        '--threads', String(threads), ...args], {
        env: { ...process.env, ...env },
        stdio: [stdin, 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const port = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`herald did not start:\n${out}`));
        }, 15000);
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        const check = () => {
            const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(out);
            if (m) { clearTimeout(timer); resolve(Number(m[1])); }
        };
        proc.stderr.on('data', check);
        proc.stdout.on('data', check);
        proc.on('exit', (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`herald exited (${code ?? signal}) before listening:\n${out}`));
        });
    });
    const exited = once(proc, 'exit');
    return {
        port,
        url: `http://127.0.0.1:${port}`,
        proc,
        output: () => out,
        async stop(signal = 'SIGTERM') {
            if (proc.exitCode !== null || proc.signalCode !== null) {
                return proc.exitCode ?? proc.signalCode;
            }
            proc.kill(signal);
            const [code, sig] = await exited;
            return code ?? sig;
        },
    };
}

// One HTTP request; resolves to { status, headers, body } with the whole body as text.
export function request(url, { method = 'GET', headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method, headers, agent: false }, (res) => {
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

// POST /events with form fields ({topic: ['a','b'], data: 'x'}) or, with json: true, a JSON body.
export function publish(base, fields, { json = false, headers = {}, path = '/events' } = {}) {
    let body;
    const h = { ...headers };
    if (json) {
        body = JSON.stringify(fields);
        h['Content-Type'] = 'application/json';
    } else {
        const p = new URLSearchParams();
        for (const [k, v] of Object.entries(fields)) {
            for (const item of Array.isArray(v) ? v : [v]) p.append(k, String(item));
        }
        body = p.toString();
        h['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    return request(base + path, { method: 'POST', headers: h, body });
}

// Sends raw bytes on a new TCP connection; resolves to everything received until the
// server closes or `timeoutMs` passes ({ data, closed }).
export function rawExchange(port, bytes, { timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let data = '';
        let done = false;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            resolve({ data, closed });
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        sock.on('connect', () => { if (bytes) sock.write(bytes); });
        sock.on('data', (d) => { data += d.toString('latin1'); });
        sock.on('end', () => finish(true));
        sock.on('close', () => finish(true));
        // The server may answer (413, 431) and close while we are still writing.
        sock.on('error', (e) => (['ECONNRESET', 'EPIPE'].includes(e.code) ? finish(true) : reject(e)));
    });
}

// Parses an SSE byte stream into events per the WHATWG rules (LF, CR or CRLF line ends).
export class SseParser {
    constructor() { this.buf = ''; this.reset(); this.events = []; this.comments = []; this.retry = null; }
    reset() { this.cur = { id: null, event: null, data: [] }; this.sawField = false; }
    push(chunk) {
        this.buf += chunk;
        const re = /\r\n|\r|\n/g;
        let pos = 0;
        for (;;) {
            re.lastIndex = pos;
            const m = re.exec(this.buf);
            if (!m) break;
            // A lone CR at the end may be the first half of CRLF: wait for more.
            if (m[0] === '\r' && m.index === this.buf.length - 1) break;
            this.line(this.buf.slice(pos, m.index));
            pos = m.index + m[0].length;
        }
        this.buf = this.buf.slice(pos);
    }
    line(line) {
        if (line === '') {
            if (this.sawField && (this.cur.data.length || this.cur.id !== null)) {
                this.events.push({ id: this.cur.id, event: this.cur.event, data: this.cur.data.join('\n'), lines: this.cur.data.length });
            }
            this.reset();
            return;
        }
        if (line.startsWith(':')) { this.comments.push(line.slice(1)); return; }
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        this.sawField = true;
        if (field === 'data') this.cur.data.push(value);
        else if (field === 'id') this.cur.id = value;
        else if (field === 'event') this.cur.event = value;
        else if (field === 'retry') this.retry = Number(value);
    }
}

// Opens GET `path` as an SSE stream. Resolves once the response head arrives, to
// { status, headers, events, comments, parser, waitFor(n, ms), close(), ended }.
export function openStream(base, path = '/events', { headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const parser = new SseParser();
        const waiters = [];
        let ended = false;
        const notify = () => {
            for (let i = waiters.length - 1; i >= 0; i--) {
                if (waiters[i].test()) { waiters[i].resolve(); waiters.splice(i, 1); }
            }
        };
        const req = http.get(base + path, { headers: { Accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; parser.push(d); notify(); });
            const onEnd = () => { ended = true; stream.ended = true; notify(); };
            res.on('end', onEnd);
            res.on('close', onEnd);
            res.on('error', onEnd);
            const stream = {
                status: res.statusCode,
                headers: res.headers,
                parser,
                get events() { return parser.events; },
                get comments() { return parser.comments; },
                get body() { return body; },
                ended: false,
                // Resolves when `pred()` holds (default: n events arrived), rejects after ms.
                waitFor(n, ms = 5000, pred) {
                    const test = pred || (() => parser.events.length >= n);
                    if (test()) return Promise.resolve();
                    return new Promise((res2, rej2) => {
                        const w = { test: () => test() || (ended && !pred ? true : false), resolve: res2 };
                        const t = setTimeout(() => {
                            const idx = waiters.indexOf(w);
                            if (idx >= 0) waiters.splice(idx, 1);
                            rej2(new Error(`timed out waiting; got ${parser.events.length} events, ended=${ended}`));
                        }, ms);
                        w.resolve = () => { clearTimeout(t); res2(); };
                        waiters.push(w);
                    });
                },
                waitEnd(ms = 5000) { return this.waitFor(0, ms, () => ended); },
                close() { req.destroy(); },
            };
            resolve(stream);
        });
        req.on('error', reject);
    });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
