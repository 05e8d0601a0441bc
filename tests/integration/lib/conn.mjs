// One raw HTTP/1.1 connection from a chosen local address (127.0.0.2, 127.0.0.3... are all
// loopback on Linux: binding the client's end tells clients apart for per-IP limits and
// /status), kept open between requests, that can also tell how the server ended it: a FIN
// after a complete answer, or a reset.
import net from 'node:net';
import { once } from 'node:events';
import { parseHttpResponse } from './util.mjs';

export class Conn {
    static async open(port, { localAddress = '127.0.0.1', host = '127.0.0.1' } = {}) {
        const c = new Conn(net.connect({ port, host, localAddress }));
        await Promise.race([
            once(c.sock, 'connect'),
            once(c.sock, 'error').then(([e]) => { throw e; }),
        ]);
        c.localPort = c.sock.localPort;
        return c;
    }

    constructor(sock) {
        this.sock = sock;
        this.raw = '';
        this.ended = null; // 'fin' | 'reset' | 'closed' once the server ended the connection
        this.waiters = [];
        sock.on('data', (d) => { this.raw += d.toString('latin1'); this.notify(); });
        sock.on('end', () => { this.ended ??= 'fin'; this.notify(); });
        sock.on('error', (e) => { this.ended ??= e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`; this.notify(); });
        sock.on('close', () => { this.ended ??= 'closed'; this.notify(); });
    }

    notify() {
        for (const w of [...this.waiters]) {
            if (w.test()) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                w.resolve();
            }
        }
    }

    // Resolves once test() holds; rejects after ms with what arrived.
    until(test, ms = 5000, what = 'the server') {
        if (test()) return Promise.resolve();
        return new Promise((resolve, reject) => {
            const w = { test, resolve: () => { clearTimeout(t); resolve(); } };
            const t = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.raw.slice(0, 500))}, ended=${this.ended}`));
            }, ms);
            this.waiters.push(w);
        });
    }

    // Sends one keep-alive request and resolves to its complete response
    // ({ status, headers, body }); what it answered is then dropped from `raw`.
    async request(path, { method = 'GET', headers = {}, body } = {}) {
        const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
        for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
        if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
        this.sock.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
        let r = null;
        await this.until(() => {
            r = parseHttpResponse(this.raw, { closed: this.ended !== null });
            return (r && r.complete) || this.ended !== null;
        }, 5000, `the answer to ${method} ${path}`);
        if (!r || !r.complete) throw new Error(`no answer to ${method} ${path}: ${JSON.stringify(this.raw)}, ended=${this.ended}`);
        this.raw = r.rest;
        return r;
    }

    // Opens an SSE stream on this connection; resolves to the status once the head and,
    // for a 200, the retry: line arrived (for a refusal: once its whole body did).
    async stream(path, { headers = {} } = {}) {
        const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Accept: text/event-stream'];
        for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
        this.sock.write(`${lines.join('\r\n')}\r\n\r\n`);
        await this.until(() => {
            const r = parseHttpResponse(this.raw, { closed: this.ended !== null });
            if (!r) return this.ended !== null;
            return r.status === 200 ? /retry: \d+\n/.test(r.body) : r.complete || this.ended !== null;
        }, 5000, `the stream ${path}`);
        const r = parseHttpResponse(this.raw, { closed: this.ended !== null });
        if (r.status !== 200 && r.complete) this.raw = r.rest; // a refusal: the connection may go on
        return r;
    }

    // Waits until the server ended the connection: resolves to 'fin', 'reset' or 'closed'.
    async waitEnd(ms = 5000) {
        await this.until(() => this.ended !== null, ms, 'the connection to end');
        return this.ended;
    }

    close() {
        this.sock.destroy();
    }
}
