// The connection limits against the real binary (DESIGN.md "Limits"): server.max_connections
// at its edge (503 written whole and ended with a FIN, a freed slot usable again, the
// clients already in unaffected), its default from the open-file limit, and
// server.max_connections_per_ip at its edge with clients told apart by their loopback
// address (127.0.0.2, 127.0.0.3...); server.trusted_proxies: the client a trusted peer names
// in Forwarded or X-Forwarded-For is the one /status, the access log and the per-IP limit
// see, and the same headers from anyone else are ignored. Every refusal is counted in
// /metrics by reason. (Through a real nginx: example_nginx.test.mjs.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startHerald, HERALD_BIN } from './lib/harness.mjs';
import { Conn } from './lib/conn.mjs';
import { parseMetrics, uniqueTopic, waitUntil } from './lib/util.mjs';

const T = { timeout: 30000 };

const rejected = (metricsBody, reason) => parseMetrics(metricsBody)
    .filter((s) => s.name === 'herald_requests_rejected_total' && s.labels === `{reason="${reason}"}`)
    .reduce((a, s) => a + s.value, 0);

// A connection that is surely accepted and counted: it has had one answer.
async function held(port, localAddress = '127.0.0.1') {
    const c = await Conn.open(port, { localAddress });
    const r = await c.request('/healthz');
    assert.equal(r.status, 200, `GET /healthz from ${localAddress} answered ${r.status}: ${r.body}`);
    return c;
}

// A connection past a limit: answered at once, without a request, and ended with a FIN.
async function refusedAtAccept(port, { localAddress = '127.0.0.1', sendRequest = false } = {}) {
    const c = await Conn.open(port, { localAddress });
    if (sendRequest) c.sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const how = await c.waitEnd();
    c.close();
    const { parseHttpResponse } = await import('./lib/util.mjs');
    const r = parseHttpResponse(c.raw, { closed: true });
    assert.ok(r && r.complete, `no whole answer before the end (${how}): ${JSON.stringify(c.raw)}`);
    assert.equal(how, 'fin', `the refusal was not ended with a FIN but ${how}`);
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.headers['content-type'], 'application/json');
    return { status: r.status, error: JSON.parse(r.body).error };
}

describe('server.max_connections', () => {
    let h;
    const kept = [];
    before(async () => {
        h = await startHerald({ env: { HERALD_SERVER_MAX_CONNECTIONS: '4' } });
    });
    after(async () => {
        for (const c of kept) c.close();
        assert.equal(await h.stop('SIGTERM'), 0, h.output().slice(-2000));
    });

    test('4 connections are served, the 5th gets 503 and is closed; a freed slot is usable again', T, async () => {
        assert.match(h.output(), /connections: at most 4 \(server\.max_connections\)/);
        const topic = uniqueTopic('maxconn');
        kept.push(await held(h.port), await held(h.port), await held(h.port));
        const sub = await Conn.open(h.port);
        kept.push(sub);
        assert.equal((await sub.stream(`/events?topic=${topic}`)).status, 200);

        let refusals = 0;
        // Without sending anything, and with a request sent at once: both get the answer.
        for (const sendRequest of [false, true]) {
            const r = await refusedAtAccept(h.port, { sendRequest });
            refusals += 1;
            assert.equal(r.status, 503);
            assert.match(r.error, /server\.max_connections/, r.error);
            assert.match(r.error, /\b4\b/, r.error);
        }

        // The clients already in are not affected: a publish on a kept connection reaches
        // the subscriber.
        const pub = await kept[0].request('/events', {
            method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: `topic=${topic}&data=still+served`,
        });
        assert.equal(pub.status, 200, pub.body);
        await sub.until(() => sub.raw.includes('data: still served\n'), 5000, 'the event on the stream');
        assert.equal((await kept[1].request('/healthz')).status, 200);

        // One leaves: its slot goes to the next client (once the hub has seen the close).
        kept[2].close();
        let fresh;
        await waitUntil(async () => {
            const c = await Conn.open(h.port);
            const r = await c.request('/healthz').catch(() => null);
            if (r?.status === 200) {
                fresh = c;
                return true;
            }
            if (r?.status === 503) refusals += 1;
            c.close();
            return false;
        }, { ms: 5000, what: 'a freed slot to be usable' });
        kept[2] = fresh;
        const again = await refusedAtAccept(h.port);
        refusals += 1;
        assert.equal(again.status, 503);

        const metrics = await kept[0].request('/metrics');
        assert.equal(metrics.status, 200);
        assert.equal(rejected(metrics.body, 'max_connections'), refusals, metrics.body);
        assert.equal(rejected(metrics.body, 'max_connections_per_ip'), 0);
    });
});

describe('server.max_connections by default', () => {
    test('the open-file limit less a reserve, said at start', T, async () => {
        // ulimit -n sets the hard limit too, which herald raises its soft limit to.
        const proc = spawn('bash', ['-c', `ulimit -n 500 && exec "$0" serve --host 127.0.0.1 --port 0 --threads 2`, HERALD_BIN],
            { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        proc.stdout.on('data', (d) => { out += d; });
        proc.stderr.on('data', (d) => { out += d; });
        try {
            await waitUntil(() => /listening on/.test(out), { ms: 10000, what: 'herald to listen', describe: () => out });
            // 500 less 64, less 4 per worker.
            assert.match(out, /connections: at most 428 \(the open-file limit, 500, less a reserve\); per client address: no limit; trusted proxies: none/, out);
        } finally {
            proc.kill('SIGTERM');
            await new Promise((r) => proc.on('exit', r));
        }
    });
});

describe('server.max_connections_per_ip', () => {
    let h;
    before(async () => {
        h = await startHerald({ env: { HERALD_SERVER_MAX_CONNECTIONS_PER_IP: '2' } });
    });
    after(async () => {
        assert.equal(await h.stop('SIGTERM'), 0, h.output().slice(-2000));
    });

    test('2 connections per address; the 3rd from that address gets 429, others are served', T, async () => {
        assert.match(h.output(), /per client address: 2;/);
        const a = [await held(h.port, '127.0.0.2'), await held(h.port, '127.0.0.2')];
        const others = [await held(h.port, '127.0.0.3'), await held(h.port, '127.0.0.3'), await held(h.port, '127.0.0.1')];
        let refusals = 0;
        try {
            for (const sendRequest of [false, true]) {
                const r = await refusedAtAccept(h.port, { localAddress: '127.0.0.2', sendRequest });
                refusals += 1;
                assert.equal(r.status, 429);
                assert.match(r.error, /too many connections from 127\.0\.0\.2: at most 2 \(server\.max_connections_per_ip\)/, r.error);
            }
            const third = await refusedAtAccept(h.port, { localAddress: '127.0.0.3' });
            refusals += 1;
            assert.equal(third.status, 429);
            // The connections in are still served.
            for (const c of [...a, ...others]) assert.equal((await c.request('/healthz')).status, 200);

            a[0].close();
            await waitUntil(async () => {
                const c = await Conn.open(h.port, { localAddress: '127.0.0.2' });
                const r = await c.request('/healthz').catch(() => null);
                if (r?.status === 200) {
                    a[0] = c;
                    return true;
                }
                if (r?.status === 429) refusals += 1;
                c.close();
                return false;
            }, { ms: 5000, what: 'a freed per-address slot to be usable' });

            const metrics = await others[2].request('/metrics');
            assert.equal(rejected(metrics.body, 'max_connections_per_ip'), refusals, metrics.body);
            assert.equal(rejected(metrics.body, 'max_connections'), 0);
        } finally {
            for (const c of [...a, ...others]) c.close();
        }
    });
});

describe('server.trusted_proxies', () => {
    let h;
    before(async () => {
        h = await startHerald({
            env: {
                HERALD_SERVER_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8',
                HERALD_SERVER_MAX_CONNECTIONS_PER_IP: '2',
                HERALD_LOG_ACCESS: 'true',
            },
        });
    });
    after(async () => {
        assert.equal(await h.stop('SIGTERM'), 0, h.output().slice(-2000));
    });

    // The `remote` of every stream in /status.
    async function remotes(conn) {
        const r = await conn.request('/status');
        assert.equal(r.status, 200, r.body);
        return Object.values(JSON.parse(r.body)).map((s) => s.remote).sort();
    }

    test('from a trusted peer the headers name the client; from anyone else they are ignored', T, async () => {
        assert.match(h.output(), /trusted proxies: 127\.0\.0\.1\/32, 10\.0\.0\.0\/8/);
        const topic = uniqueTopic('proxied');
        const path = `/events?topic=${topic}`;
        const conns = [];
        const open = async (localAddress, headers) => {
            const c = await Conn.open(h.port, { localAddress });
            conns.push(c);
            const r = await c.stream(path, { headers });
            assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.body}`);
            return c;
        };
        try {
            await open('127.0.0.1', { 'X-Forwarded-For': '6.6.6.6, 203.0.113.7' });
            await open('127.0.0.1', { Forwarded: 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https, for=10.1.2.3' });
            await open('127.0.0.1', { Forwarded: 'for=_hidden' }); // unknown: the peer itself
            const untrusted = await open('127.0.0.5', { 'X-Forwarded-For': '203.0.113.99', Forwarded: 'for=203.0.113.98' });
            const admin = await Conn.open(h.port);
            conns.push(admin);
            const seen = await remotes(admin);
            assert.deepEqual(seen.filter((r) => !r.startsWith('127.0.0.')), ['2001:db8::1', '203.0.113.7']);
            assert.ok(seen.includes(`127.0.0.5:${untrusted.localPort}`), `the untrusted peer's own address is not shown: ${seen}`);
            assert.ok(seen.some((r) => /^127\.0\.0\.1:\d+$/.test(r)), `the hidden client is not shown as its proxy: ${seen}`);
            assert.ok(!seen.some((r) => r.startsWith('203.0.113.9') || r.startsWith('6.6.6.6')), seen.join());
            // The access log names both the client and the proxy it came through.
            await waitUntil(() => /access 203\.0\.113\.7 via 127\.0\.0\.1:\d+ "GET \/events/.test(h.output()),
                { ms: 5000, what: 'an access line naming the client and its proxy', describe: () => h.output().slice(-2000) });
            assert.match(h.output(), new RegExp(`access 127\\.0\\.0\\.5:${untrusted.localPort} "GET /events`));
        } finally {
            for (const c of conns) c.close();
        }
    });

    test('the per-IP limit counts each client behind the proxy, not the proxy', T, async () => {
        const path = `/events?topic=${uniqueTopic('perip')}`;
        const conns = [];
        const stream = async (client) => {
            const c = await Conn.open(h.port); // always from 127.0.0.1, the trusted proxy
            conns.push(c);
            return { c, r: await c.stream(path, { headers: { 'X-Forwarded-For': client } }) };
        };
        const metricsConn = await Conn.open(h.port);
        conns.push(metricsConn);
        const before = rejected((await metricsConn.request('/metrics')).body, 'max_connections_per_ip');
        try {
            // The proxy holds 5 connections and more: it is not limited per IP itself.
            const first = [await stream('198.51.100.1'), await stream('198.51.100.1')];
            for (const s of first) assert.equal(s.r.status, 200);
            const third = await stream('198.51.100.1');
            assert.equal(third.r.status, 429, third.r.body);
            assert.match(JSON.parse(third.r.body).error, /too many connections from 198\.51\.100\.1: at most 2 \(server\.max_connections_per_ip\)/);
            // The proxy's connection is kept (the refusal was framed): it serves another client.
            assert.equal(third.c.ended, null);
            assert.equal((await third.c.request('/healthz', { headers: { 'X-Forwarded-For': '198.51.100.3' } })).status, 200);
            assert.equal((await stream('198.51.100.2')).r.status, 200);
            // Without the headers the request is the proxy's own: not limited per IP.
            assert.equal((await stream('')).r.status, 200);
            // The same header from an untrusted peer does not count against that client.
            const direct = await Conn.open(h.port, { localAddress: '127.0.0.6' });
            conns.push(direct);
            assert.equal((await direct.stream(path, { headers: { 'X-Forwarded-For': '198.51.100.1' } })).status, 200);
            // A stream that ends gives its client's place back.
            first[0].c.close();
            await waitUntil(async () => (await stream('198.51.100.1')).r.status === 200,
                { ms: 5000, what: 'the client to get its place back' });
            const after = rejected((await metricsConn.request('/metrics')).body, 'max_connections_per_ip');
            assert.ok(after >= before + 1, `429s counted: ${before} -> ${after}`);
        } finally {
            for (const c of conns) c.close();
        }
    });
});
