// Bad input on the wire: malformed requests (400), oversized headers (431), unknown paths
// (404), wrong methods (405 + Allow), oversized bodies (413), invalid subscriptions (400),
// headers that never complete (closed after server.request_timeout_seconds, even 300 at
// once), each answered with a JSON error where there is an answer, and through it all the
// hub keeps serving and an open stream keeps receiving.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHerald, request, publish } from './lib/harness.mjs';
import {
    subscribe, waitEvents, waitData, publishOk, uniqueTopic, assertJsonError, rawRequest,
    getMetrics, withTimeout, sleep,
} from './lib/util.mjs';

const T = { timeout: 60000 };
const MAX_BODY = 1024;

describe('errors', () => {
    let h;
    let base;
    let survivor;
    const survivorTopic = uniqueTopic('survivor');
    before(async () => {
        h = await startHerald({
            env: {
                HERALD_SERVER_REQUEST_TIMEOUT_SECONDS: '1',
                HERALD_SERVER_MAX_BODY_BYTES: String(MAX_BODY),
            },
        });
        base = h.url;
        survivor = await subscribe(base, [survivorTopic]);
    });
    after(async () => {
        survivor?.close();
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('malformed requests answer 400 with a JSON error and the connection closes', T, async () => {
        const cases = [
            ['garbage request line', 'GARBAGE\r\n\r\n'],
            ['method only', 'GET\r\n\r\n'],
            ['no HTTP version', 'GET /healthz\r\n\r\n'],
            ['bad HTTP version token', 'GET /healthz HTTX/1.1\r\nHost: x\r\n\r\n'],
            ['trailing junk after the version', 'GET /healthz HTTP/1.1 junk\r\nHost: x\r\n\r\n'],
            ['control bytes as a method', '\x01\x02\x03 /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
            ['header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'],
            ['invalid Content-Length', 'POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: abc\r\n\r\n'],
            ['two different Content-Lengths', 'POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\ntopic=a'],
            ['bad chunk size', 'POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
        ];
        const results = await Promise.all(cases.map(([, bytes]) => rawRequest(h.port, bytes, { untilClose: true, timeoutMs: 8000 })));
        results.forEach((r, i) => {
            const what = cases[i][0];
            assert.ok(r.response, `${what}: no complete response; got ${JSON.stringify(r.raw.slice(0, 200))}`);
            assertJsonError(r.response, 400, what);
            assert.equal(r.closed, true, `${what}: the server kept the connection open after a 400`);
        });
    });

    test('a header section over 8 KiB answers 431; under it is fine', T, async () => {
        const big = await rawRequest(h.port,
            `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9 * 1024)}\r\n\r\n`, { timeoutMs: 8000 });
        assert.ok(big.response, `no response to a 9 KiB header; got ${JSON.stringify(big.raw.slice(0, 200))}`);
        assertJsonError(big.response, 431, 'one 9 KiB header');

        const many = Array.from({ length: 90 }, (_, i) => `X-H${i}: ${'b'.repeat(100)}\r\n`).join('');
        const r2 = await rawRequest(h.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`, { timeoutMs: 8000 });
        assert.ok(r2.response, 'no response to 90 headers of 100 bytes');
        assertJsonError(r2.response, 431, '90 headers totalling 9 KiB');

        // In two writes: the fields taken from the first still count toward the limit.
        const half = Array.from({ length: 60 }, (_, i) => `X-C${i}: ${'e'.repeat(100)}\r\n`).join('');
        const cut = await rawRequest(h.port, [`GET /healthz HTTP/1.1\r\nHost: x\r\n${half}`, `${half}\r\n`],
            { timeoutMs: 8000, gapMs: 100 });
        assert.ok(cut.response, 'no response to 13 KiB of headers in two writes');
        assertJsonError(cut.response, 431, '13 KiB of headers in two writes');

        const longUrl = await rawRequest(h.port, `GET /events?topic=${'c'.repeat(9 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 8000 });
        assert.ok(longUrl.response, 'no response to a 9 KiB request line');
        assert.ok([414, 431].includes(longUrl.response.status), `a 9 KiB request line answered ${longUrl.response.status}`);
        assertJsonError(longUrl.response, longUrl.response.status, '9 KiB request line');

        const ok = await rawRequest(h.port,
            `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: ${'d'.repeat(7 * 1024)}\r\n\r\n`, { timeoutMs: 8000 });
        assert.equal(ok.response?.status, 200, `7 KiB of headers: ${JSON.stringify(ok.raw.slice(0, 200))}`);
    });

    test('unknown paths answer 404', T, async () => {
        for (const [method, path] of [['GET', '/nope'], ['POST', '/nope'], ['GET', '/events-x'], ['GET', '/metrics.json'], ['DELETE', '/no/such/thing']]) {
            assertJsonError(await request(`${base}${path}`, { method }), 404, `${method} ${path}`);
        }
    });

    test('wrong methods answer 405 with an Allow header', T, async () => {
        const cases = [
            ['DELETE', '/events', ['GET', 'POST']],
            ['PUT', '/events', ['GET', 'POST']],
            ['PATCH', '/events', ['GET', 'POST']],
            ['POST', '/status', ['GET']],
            ['DELETE', '/topics', ['GET']],
            ['POST', '/metrics', ['GET']],
            ['POST', '/healthz', ['GET']],
            ['PUT', '/readyz', ['GET']],
        ];
        for (const [method, path, allowed] of cases) {
            const r = await request(`${base}${path}`, { method });
            assertJsonError(r, 405, `${method} ${path}`);
            const allow = String(r.headers.allow ?? '').split(',').map((m) => m.trim().toUpperCase());
            for (const m of allowed) assert.ok(allow.includes(m), `${method} ${path}: Allow is ${JSON.stringify(r.headers.allow)}, lacks ${m}`);
            assert.ok(!allow.includes(method), `${method} ${path}: Allow lists the refused method`);
        }
    });

    test('bodies over max_body_bytes answer 413, even before they are sent', T, async () => {
        const head = (extra) => `POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n${extra}\r\n`;
        const body = `topic=t&data=${'x'.repeat(2 * MAX_BODY)}`;
        const sent = await rawRequest(h.port, head(`Content-Length: ${body.length}\r\n`) + body, { timeoutMs: 8000 });
        assert.ok(sent.response, 'no response to a 2 KiB body');
        assertJsonError(sent.response, 413, 'a body over the limit');

        // A huge Content-Length is refused from the head alone: the hub does not wait for
        // (or buffer) 100 MB that never come.
        const declared = await rawRequest(h.port, head('Content-Length: 100000000\r\n'), { timeoutMs: 8000 });
        assert.ok(declared.response, `no response to Content-Length: 100000000 within 8 s (closed=${declared.closed})`);
        assertJsonError(declared.response, 413, 'a declared Content-Length over the limit');

        const chunk = 'x'.repeat(512);
        const chunks = Array.from({ length: 5 }, () => `${(512).toString(16)}\r\n${chunk}\r\n`).join('');
        const chunked = await rawRequest(h.port, `${head('Transfer-Encoding: chunked\r\n')}${chunks}0\r\n\r\n`, { timeoutMs: 8000 });
        assert.ok(chunked.response, 'no response to a 2.5 KiB chunked body');
        assertJsonError(chunked.response, 413, 'a chunked body over the limit');

        const fits = await publish(base, { topic: uniqueTopic('fits'), data: 'y'.repeat(MAX_BODY - 100) });
        assert.equal(fits.status, 200, fits.body);
    });

    test('invalid subscriptions answer 400 with a JSON error', T, async () => {
        for (const [what, query] of [
            ['invalid UTF-8 topic', 'topic=%FF'],
            ['truncated UTF-8 topic', 'topic=abc%C3'],
            ['topic over 1024 bytes', `topic=${'t'.repeat(1025)}`],
        ]) {
            assertJsonError(await request(`${base}/events?${query}`, { headers: { Accept: 'text/event-stream' } }), 400, what);
        }
    });

    test('pipelined requests are answered in order', T, async () => {
        const r = await rawRequest(h.port,
            'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n',
            { count: 3, timeoutMs: 8000 });
        assert.deepEqual(r.responses.map((x) => x.status), [200, 404, 200]);
    });

    test('a request whose headers do not complete in time is closed', T, async () => {
        const [half, silent, trickle] = await Promise.all([
            rawRequest(h.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { untilClose: true, timeoutMs: 8000 }),
            rawRequest(h.port, '', { untilClose: true, timeoutMs: 8000 }),
            // One byte every 200 ms: the clock runs from the first byte, not the last.
            rawRequest(h.port, [...'GET /healthz HTTP/1.1\r\nHost: slowloris.example\r\nX-Pad: aaaaaaaaaa\r\n\r\n'],
                { untilClose: true, timeoutMs: 12000, gapMs: 200 }),
        ]);
        for (const [what, r] of [['half a request', half], ['no request at all', silent], ['a trickled request', trickle]]) {
            assert.equal(r.closed, true, `${what}: still open after the bounded wait`);
            if (r.response) assertJsonError(r.response, 408, what);
        }
        assert.ok(!trickle.responses.some((x) => x.status === 200), 'the trickled request was served');
    });

    test('300 stalled connections do not keep a normal request from being served', T, async () => {
        const socks = [];
        const closed = [];
        try {
            await withTimeout(Promise.all(Array.from({ length: 300 }, () => new Promise((resolve, reject) => {
                const sock = net.connect(h.port, '127.0.0.1');
                socks.push(sock);
                // Read what the hub says (a 408 before it closes), as a real client would.
                let said = '';
                sock.on('data', (d) => { said += d.toString('latin1'); });
                const c = new Promise((r) => sock.on('close', () => r(said)));
                closed.push(c);
                sock.on('error', () => {});
                sock.on('connect', () => { sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); resolve(); });
                sock.on('close', () => reject(new Error('a stalled connection was closed before it connected')));
            }))), 10000, '300 connections to open');
            const health = await request(`${base}/healthz`);
            assert.equal(health.status, 200);
            const id = await publishOk(base, { topic: survivorTopic, data: 'during the stall' });
            const e = await waitData(survivor, 'during the stall');
            assert.equal(e.id, id);
            // And the hub closes all of them.
            const said = await withTimeout(Promise.all(closed), 20000, 'the hub to close 300 stalled connections');
            for (const text of said) {
                assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n[^]*\r\n\r\n\{"error":"[^"]+"\}\n$/,
                    `a stalled request was closed without its 408: ${JSON.stringify(text.slice(0, 80))}`);
            }
        } finally {
            for (const s of socks) s.destroy();
        }
    });

    test('an open stream is not subject to the request timeout', T, async () => {
        const topic = uniqueTopic('idle');
        const s = await subscribe(base, [topic]);
        try {
            await sleep(2500);
            assert.equal(s.ended, false, 'an idle stream was closed by the request timeout');
            const id = await publishOk(base, { topic, data: 'still here' });
            const [e] = await waitEvents(s, 1);
            assert.equal(e.id, id);
        } finally {
            s.close();
        }
    });

    test('after all the bad input the hub serves and the open stream still receives', T, async () => {
        // One more burst of nonsense at the same time as real traffic.
        const storm = await Promise.all([
            rawRequest(h.port, 'NONSENSE\r\n\r\n', { untilClose: true, timeoutMs: 5000 }),
            rawRequest(h.port, `GET / HTTP/1.1\r\n${'X: y\r\n'.repeat(2000)}\r\n`, { untilClose: true, timeoutMs: 5000 }),
            rawRequest(h.port, Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]), { untilClose: true, timeoutMs: 5000 }),
        ]);
        assert.deepEqual(storm.map((r) => r.response?.status), [400, 431, 400]);
        assert.equal(survivor.ended, false, 'the open stream was closed');
        const id = await publishOk(base, { topic: survivorTopic, data: 'after the storm' });
        const e = await waitData(survivor, 'after the storm');
        assert.equal(e.id, id);
        const datas = survivor.events.map((x) => x.data);
        assert.equal(new Set(datas).size, datas.length, `the open stream got an event twice: ${JSON.stringify(datas)}`);
        assert.equal((await request(`${base}/healthz`)).status, 200);
        assert.equal((await request(`${base}/readyz`)).status, 200);
        const m = await getMetrics(base);
        assert.ok(m.has('herald_requests_rejected_total'), 'herald_requests_rejected_total is missing');
        assert.ok(m.sum('herald_requests_rejected_total') > 0, 'no rejected request was counted');
        assert.ok(/herald_requests_rejected_total\{[^}]*reason="[^"]+"/.test(m.text), 'rejections carry no reason label');
    });
});
