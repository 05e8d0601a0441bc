// Operations: /healthz, /readyz, the / redirect, /status, /topics and /metrics (and that
// their figures move as they should), $sys/connections, SIGTERM and SIGINT with open
// streams, --stdin publishing, and configuration: file, env, precedence and refusals.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, request, openStream } from './lib/harness.mjs';
import {
    subscribe, waitEvents, publishOk, uniqueTopic, getMetrics, waitUntil, withTimeout,
    rawRequest, runHerald,
} from './lib/util.mjs';

const T = { timeout: 30000 };

async function getJson(base, p) {
    const r = await request(`${base}${p}`);
    assert.equal(r.status, 200, `GET ${p} answered ${r.status}: ${r.body}`);
    assert.match(String(r.headers['content-type']), /^application\/json\b/i, `GET ${p} Content-Type`);
    return JSON.parse(r.body);
}

const status = (base) => getJson(base, '/status');

async function waitNoSubscribers(base) {
    await waitUntil(async () => Object.keys(await status(base)).length === 0, {
        ms: 5000, what: '/status to list no subscriber', describe: async () => JSON.stringify(await status(base)),
    });
}

describe('ops', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald();
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('/healthz and /readyz answer 200 JSON', T, async () => {
        for (const p of ['/healthz', '/readyz']) {
            const body = await getJson(base, p);
            assert.equal(typeof body, 'object', `${p} body is not a JSON object`);
        }
    });

    test('/cluster lists this node alone on a single-node store', T, async () => {
        const body = await getJson(base, '/cluster');
        assert.equal(body.nodes.length, 1, JSON.stringify(body));
        const [self] = body.nodes;
        assert.equal(self.name, `${os.hostname()}:${h.port}`);
        assert.ok(Number.isInteger(self.connections) && self.connections >= 1, JSON.stringify(self));
        assert.ok(Number.isInteger(self.subscribers), JSON.stringify(self));
        assert.match(self.lastSeen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    });

    test('/ redirects to /dashboard/', T, async () => {
        const r = await request(`${base}/`);
        assert.ok([302, 307, 308].includes(r.status), `GET / answered ${r.status}`);
        assert.match(String(r.headers.location), /(^|[^/])\/dashboard\/$/, `Location: ${r.headers.location}`);
    });

    test('/status lists each subscriber with its remote, start, last event and topics', T, async () => {
        await waitNoSubscribers(base);
        const a = uniqueTopic('status-a');
        const b = uniqueTopic('status-b');
        const s1 = await subscribe(base, [a, b]);
        const s2 = await subscribe(base, [b]);
        try {
            const st = await status(base);
            const entries = Object.entries(st);
            assert.equal(entries.length, 2, JSON.stringify(st));
            const [id1, c1] = entries.find(([, c]) => c.topics.includes(a));
            const [id2, c2] = entries.find(([, c]) => !c.topics.includes(a));
            assert.notEqual(id1, id2);
            for (const c of [c1, c2]) {
                for (const k of ['remote', 'connectedAt', 'lastEventId', 'topics']) assert.ok(k in c, `${k} missing: ${JSON.stringify(c)}`);
                assert.match(String(c.remote), /127\.0\.0\.1/);
                const t = typeof c.connectedAt === 'number' ? c.connectedAt : Date.parse(c.connectedAt);
                assert.ok(Number.isFinite(t) && t > 0, `connectedAt is not a time: ${JSON.stringify(c.connectedAt)}`);
            }
            assert.deepEqual([...c1.topics].sort(), [a, b].sort());
            assert.deepEqual(c2.topics, [b]);

            const ea = await publishOk(base, { topic: a, data: 'to a' });
            const eb = await publishOk(base, { topic: b, data: 'to b' });
            await waitEvents(s1, 2);
            await waitEvents(s2, 1);
            await waitUntil(async () => {
                const now = await status(base);
                return now[id1]?.lastEventId === eb && now[id2]?.lastEventId === eb;
            }, { ms: 5000, what: `lastEventId ${eb} for both`, describe: async () => JSON.stringify(await status(base)) });
            assert.notEqual(ea, eb);

            s1.close();
            await waitUntil(async () => {
                const now = await status(base);
                return !(id1 in now) && id2 in now;
            }, { ms: 5000, what: 'the closed subscriber to leave /status' });
        } finally {
            s1.close();
            s2.close();
        }
        await waitNoSubscribers(base);
    });

    test('/topics shows subscribers, retained events and the last id per topic', T, async () => {
        const t = uniqueTopic('topics');
        const find = async () => (await getJson(base, '/topics')).topics.find((x) => x.topic === t);
        const s1 = await subscribe(base, [t]);
        const s2 = await subscribe(base, [t]);
        try {
            const body = await getJson(base, '/topics');
            assert.ok(Array.isArray(body.topics), '/topics has no "topics" array');
            const ids = [];
            for (let i = 0; i < 3; i++) ids.push(await publishOk(base, { topic: t, data: `t${i}` }));
            await waitUntil(async () => {
                const e = await find();
                return e && e.subscribers === 2 && e.retained === 3 && e.lastEventId === ids[2];
            }, { ms: 5000, what: `/topics entry {subscribers: 2, retained: 3, lastEventId: ${ids[2]}}`, describe: async () => JSON.stringify(await find()) });
            s1.close();
            s2.close();
            await waitUntil(async () => {
                const e = await find();
                return e && e.subscribers === 0 && e.retained === 3;
            }, { ms: 5000, what: '/topics entry {subscribers: 0, retained: 3}', describe: async () => JSON.stringify(await find()) });
        } finally {
            s1.close();
            s2.close();
        }
    });

    test('/metrics exposes the figures and they move', T, async () => {
        await waitNoSubscribers(base);
        const m0 = await getMetrics(base);
        assert.match(String(m0.headers['content-type']), /^text\/plain\b/i);
        for (const name of ['herald_connections', 'herald_subscribers', 'herald_events_published_total',
            'herald_events_delivered_total', 'herald_bytes_out_total', 'herald_events_replayed_total',
            'herald_slow_consumer_disconnects_total', 'herald_publish_duration_seconds_bucket',
            'herald_publish_duration_seconds_sum', 'herald_publish_duration_seconds_count']) {
            assert.ok(m0.has(name), `${name} is missing from /metrics`);
        }
        assert.match(m0.text, /^# TYPE herald_publish_duration_seconds histogram$/m);
        assert.match(m0.text, /^# TYPE herald_events_published_total counter$/m);
        assert.equal(m0.sum('herald_subscribers'), 0);

        const t = uniqueTopic('metrics');
        const s1 = await subscribe(base, [t]);
        const s2 = await subscribe(base, [t]);
        let s3;
        try {
            await waitUntil(async () => (await getMetrics(base)).sum('herald_subscribers') === 2, { ms: 5000, what: 'herald_subscribers 2' });
            const m1 = await getMetrics(base);
            assert.ok(m1.sum('herald_connections') >= 2, `herald_connections ${m1.sum('herald_connections')} < 2 with two streams open`);
            for (let i = 0; i < 5; i++) await publishOk(base, { topic: t, data: `m${i}` });
            await waitEvents(s1, 5);
            await waitEvents(s2, 5);
            const m2 = await getMetrics(base);
            const d = (name) => m2.sum(name) - m0.sum(name);
            assert.ok(d('herald_events_published_total') >= 5, `published +${d('herald_events_published_total')}`);
            assert.ok(d('herald_events_delivered_total') >= 10, `delivered +${d('herald_events_delivered_total')}`);
            assert.ok(d('herald_bytes_out_total') >= 10 * 'data: m0\n\n'.length, `bytes out +${d('herald_bytes_out_total')}`);
            assert.ok(d('herald_publish_duration_seconds_count') >= 5, `publish duration count +${d('herald_publish_duration_seconds_count')}`);
            // The histogram is consistent: cumulative buckets, +Inf = count.
            const buckets = m2.samples.filter((x) => x.name === 'herald_publish_duration_seconds_bucket');
            const inf = buckets.find((x) => /le="\+Inf"/.test(x.labels));
            assert.ok(inf, 'no le="+Inf" bucket');
            assert.equal(inf.value, m2.sum('herald_publish_duration_seconds_count'));
            const values = buckets.map((x) => x.value);
            assert.deepEqual(values, [...values].sort((x, y) => x - y), 'buckets are not cumulative');

            s3 = await subscribe(base, [t], { headers: { 'Last-Event-ID': 'earliest' } });
            await waitEvents(s3, 5);
            await waitUntil(async () => (await getMetrics(base)).sum('herald_events_replayed_total') - m0.sum('herald_events_replayed_total') >= 5,
                { ms: 5000, what: 'herald_events_replayed_total to grow by 5' });

            const rejected0 = m2.sum('herald_requests_rejected_total');
            const bad = await rawRequest(h.port, 'GARBAGE\r\n\r\n', { timeoutMs: 5000 });
            assert.equal(bad.response?.status, 400);
            await waitUntil(async () => (await getMetrics(base)).sum('herald_requests_rejected_total') > rejected0,
                { ms: 5000, what: 'herald_requests_rejected_total to grow after a malformed request' });
            const m3 = await getMetrics(base);
            assert.ok(m3.samples.some((x) => x.name === 'herald_requests_rejected_total' && /reason="[^"]+"/.test(x.labels)),
                'herald_requests_rejected_total has no reason label');
        } finally {
            s1.close();
            s2.close();
            s3?.close();
        }
        await waitUntil(async () => (await getMetrics(base)).sum('herald_subscribers') === 0, { ms: 5000, what: 'herald_subscribers back to 0' });
    });

    test('$sys/connections follows the number of subscribers, the watcher included', T, async () => {
        await waitNoSubscribers(base);
        // The hub samples the count and announces it when it differs from the last one
        // announced; with `earliest` the watcher's last event is always the last announced.
        const w = await subscribe(base, ['$sys/connections'], { headers: { 'Last-Event-ID': 'earliest' } });
        const lastCount = () => (w.events.length ? JSON.parse(w.events[w.events.length - 1].data).count : null);
        const expectCount = (n, what) => waitUntil(() => lastCount() === n, {
            ms: 5000, what: `$sys/connections to say ${n} (${what})`, describe: () => JSON.stringify(w.events.map((e) => e.data)),
        });
        const t = uniqueTopic('sys');
        const extra = [];
        try {
            await expectCount(1, 'the watcher alone');
            extra.push(await subscribe(base, [t]), await subscribe(base, ['*']));
            await expectCount(3, 'two more subscribers');
            extra[0].close();
            await expectCount(2, 'one left');
            extra.push(await subscribe(base, [t]), await subscribe(base, [t]), await subscribe(base, [t]));
            await expectCount(5, 'three more');
            for (const s of extra) s.close();
            await expectCount(1, 'all but the watcher left');
            for (const e of w.events) {
                const body = JSON.parse(e.data);
                assert.deepEqual(Object.keys(body), ['count']);
                assert.ok(Number.isInteger(body.count) && body.count >= 0, e.data);
                // Each node's own, never replayed: no id, so a watcher's Last-Event-ID stays
                // that of the last event it can resume from.
                assert.ok(!e.id, 'a $sys event has no id');
            }
        } finally {
            for (const s of extra) s.close();
            w.close();
        }
    });

    test('$sys/connections is published at most ten times a second', T, async () => {
        await waitNoSubscribers(base);
        // The hub samples the count and announces it when it differs from the last one
        // announced; with `earliest` the watcher's last event is always the last announced.
        const w = await subscribe(base, ['$sys/connections'], { headers: { 'Last-Event-ID': 'earliest' } });
        const lastCount = () => (w.events.length ? JSON.parse(w.events[w.events.length - 1].data).count : null);
        try {
            await waitUntil(() => lastCount() === 1, { ms: 5000, what: '$sys/connections to say 1' });
            const n0 = w.events.length;
            const t0 = Date.now();
            const t = uniqueTopic('flap');
            // Flap the count for 1.5 s: without a limit this would be hundreds of events.
            while (Date.now() - t0 < 1500) {
                const s = await subscribe(base, [t]);
                s.close();
            }
            // End on two known changes, so the last figures are certain.
            const stay = await subscribe(base, [t]);
            try {
                await waitUntil(() => lastCount() === 2, { ms: 5000, what: '$sys/connections to say 2' });
            } finally {
                stay.close();
            }
            await waitUntil(() => lastCount() === 1, { ms: 5000, what: '$sys/connections to settle at 1' });
            const elapsed = (Date.now() - t0) / 1000;
            const n = w.events.length - n0;
            assert.ok(n <= Math.floor(elapsed * 10) + 2, `${n} $sys/connections events in ${elapsed.toFixed(2)} s`);
        } finally {
            w.close();
        }
    });
});

describe('signals', () => {
    for (const signal of ['SIGTERM', 'SIGINT']) {
        test(`${signal} ends open streams and exits 0`, T, async () => {
            const hs = await startHerald();
            const streams = [];
            try {
                streams.push(await subscribe(hs.url, [uniqueTopic('sig')]));
                streams.push(await subscribe(hs.url, ['*']));
                const all = await openStream(hs.url, '/events');
                streams.push(all);
                await publishOk(hs.url, { topic: 'sig-any', data: 'before the signal' });
                await waitEvents(streams[1], 1);
                const code = await withTimeout(hs.stop(signal), 10000, `herald to exit after ${signal}`);
                assert.equal(code, 0, `exit ${code} after ${signal}:\n${hs.output().slice(-2000)}`);
                for (const s of streams) await s.waitEnd(5000);
            } finally {
                for (const s of streams) s.close();
                if (hs.proc.exitCode === null && hs.proc.signalCode === null) hs.proc.kill('SIGKILL');
            }
        });
    }
});

describe('--stdin', () => {
    test('each stdin line "TOPIC DATA" is published', T, async () => {
        const hs = await startHerald({ args: ['--stdin'], stdin: 'pipe' });
        try {
            const a = uniqueTopic('stdin-a');
            const b = uniqueTopic('stdin-b');
            const s = await subscribe(hs.url, [a, b], { headers: { 'Last-Event-ID': 'earliest' } });
            try {
                hs.proc.stdin.write(`${a} hello world\n`);
                hs.proc.stdin.write(`${b} second\n${a} {"json": "stays as text"}\n`);
                const events = await waitEvents(s, 3);
                assert.deepEqual(events.map((e) => e.data), ['hello world', 'second', '{"json": "stays as text"}']);
                assert.equal(new Set(events.map((e) => e.id)).size, 3);
            } finally {
                s.close();
            }
            const code = await withTimeout(hs.stop('SIGTERM'), 10000, 'herald --stdin to exit');
            assert.equal(code, 0);
        } finally {
            if (hs.proc.exitCode === null && hs.proc.signalCode === null) hs.proc.kill('SIGKILL');
        }
    });
});

describe('configuration', () => {
    let dir;
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-config-')); });
    after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

    const write = (name, text) => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, text);
        return file;
    };
    const serveArgs = (...extra) => ['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1', ...extra];

    async function expectRefused(argv, env, mustName, what) {
        const r = await runHerald(argv, { env, ms: 10000 });
        assert.equal(r.timedOut, false, `${what}: herald did not exit (it should refuse to start):\n${r.output}`);
        assert.notEqual(r.code, 0, `${what}: exit code 0:\n${r.output}`);
        for (const s of mustName) assert.ok(r.output.includes(s), `${what}: the message does not name ${JSON.stringify(s)}:\n${r.output}`);
        assert.ok(!/listening on/.test(r.output), `${what}: herald listened before refusing`);
    }

    test('an unknown key in the TOML file is refused, naming the file and the key', T, async () => {
        const file = write('unknown.toml', '[server]\nport = 0\nbogus_key = 1\n');
        await expectRefused(serveArgs('--config', file), {}, [file, 'bogus_key'], 'unknown key');
    });

    test('--node-name names the node in X-Herald-Node on every response, and in /healthz', T, async () => {
        const h = await startHerald({ args: ['--node-name', 'edge-7'] });
        try {
            const health = await request(`${h.url}/healthz`);
            assert.equal(health.headers['x-herald-node'], 'edge-7');
            assert.deepEqual(JSON.parse(health.body), { status: 'ok', node: 'edge-7' });
            // An error, a publish and a stream's head carry it too.
            const missing = await request(`${h.url}/nope`);
            assert.equal(missing.status, 404);
            assert.equal(missing.headers['x-herald-node'], 'edge-7');
            const t = uniqueTopic('node');
            const pub = await request(`${h.url}/events`, {
                method: 'POST', headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ topic: t, data: 'x' }),
            });
            assert.equal(pub.status, 200, pub.body);
            assert.equal(pub.headers['x-herald-node'], 'edge-7');
            const stream = await rawRequest(h.port, `GET /events?topic=${t} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 1000 });
            const head = stream.raw.split('\r\n\r\n')[0];
            assert.match(head, /^HTTP\/1\.1 200 [^]*\r\nX-Herald-Node: edge-7(\r\n|$)/, head);
        } finally {
            await h.stop('SIGTERM');
        }
        // Without it: HOSTNAME:PORT.
        const d = await startHerald();
        try {
            const r = await request(`${d.url}/healthz`);
            assert.equal(r.headers['x-herald-node'], `${os.hostname()}:${d.port}`);
            assert.equal(JSON.parse(r.body).node, `${os.hostname()}:${d.port}`);
        } finally {
            await d.stop('SIGTERM');
        }
    });

    test('a node name with a space or a control character is refused', T, async () => {
        await expectRefused(serveArgs('--node-name', 'a b'), {}, ['cluster.node_name'], 'a space');
        await expectRefused(serveArgs(), { HERALD_CLUSTER_NODE_NAME: 'a\u0001b' }, ['cluster.node_name'], 'a control character');
    });

    test('a redis:// URL with a password is refused without showing the password', T, async () => {
        const r = await runHerald(serveArgs('--store', 'redis://:hunter2@127.0.0.1:0'), { ms: 10000 });
        assert.notEqual(r.code, 0, r.output);
        assert.ok(r.output.includes('redis://:***@127.0.0.1:0'), r.output);
        assert.ok(!r.output.includes('hunter2'), r.output);
    });

    test('a value of the wrong type is refused, naming the file and the key', T, async () => {
        const file = write('type.toml', '[server]\nretry_ms = "soon"\n');
        await expectRefused(serveArgs('--config', file), {}, [file, 'retry_ms'], 'wrong type');
    });

    test('an unknown section is refused', T, async () => {
        const file = write('section.toml', '[nonsense]\nkey = 1\n');
        await expectRefused(serveArgs('--config', file), {}, [file, 'nonsense'], 'unknown section');
    });

    test('a TOML syntax error is refused, naming the file', T, async () => {
        const file = write('syntax.toml', '[server\nport = \n');
        await expectRefused(serveArgs('--config', file), {}, [file], 'syntax error');
    });

    test('a missing config file is refused, naming it', T, async () => {
        const file = path.join(dir, 'does-not-exist.toml');
        await expectRefused(serveArgs('--config', file), {}, [file], 'missing file');
    });

    test('a bad env value is refused, naming the variable', T, async () => {
        await expectRefused(['serve', '--host', '127.0.0.1', '--threads', '1'], { HERALD_SERVER_PORT: 'abc' },
            ['HERALD_SERVER_PORT'], 'HERALD_SERVER_PORT=abc');
        await expectRefused(serveArgs(), { HERALD_HISTORY_MAX_EVENTS: 'lots' },
            ['HERALD_HISTORY_MAX_EVENTS'], 'HERALD_HISTORY_MAX_EVENTS=lots');
    });

    test('the file sets values and env beats file', T, async () => {
        const file = write('good.toml', '[server]\nretry_ms = 1234\nkeepalive_seconds = 30\n\n[history]\nmax_events = 50\n');
        for (const [env, want] of [[{}, 1234], [{ HERALD_SERVER_RETRY_MS: '2345' }, 2345]]) {
            const hs = await startHerald({ args: ['--config', file], env });
            try {
                const s = await subscribe(hs.url, [uniqueTopic('cfg')]);
                try {
                    assert.ok(s.body.startsWith(`retry: ${want}\n`), `${JSON.stringify(env)}: stream starts ${JSON.stringify(s.body.slice(0, 30))}`);
                } finally {
                    s.close();
                }
            } finally {
                assert.equal(await hs.stop(), 0);
            }
        }
    });
});
