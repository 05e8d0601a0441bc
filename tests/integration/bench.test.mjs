// `herald bench`, the load generator, as a user runs it: against the real hub (the counts
// it reports checked against the hub's own /metrics and /topics, several topics, several
// processes, churn, memory with --pid, a token), against a scripted SSE server that
// misbehaves on purpose (a lost, a repeated, a garbled event, a stream cut short, a failed
// publish, frames in tiny pieces, the other route layout), and its usage errors.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { HERALD_BIN, startHerald, request, openStream, sleep } from './lib/harness.mjs';
import { closedPort, getMetrics, waitUntil } from './lib/util.mjs';
import { startFakeSse } from './lib/fake_sse_server.mjs';

const T = { timeout: 90000 };
const running = new Set();

after(() => {
    for (const proc of running) proc.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------
// Running the bench.

// Starts `herald bench ...args`; returns { proc, done } where done resolves to
// { code, signal, stdout, stderr, json, elapsedMs }. json is the last non-empty stdout line
// parsed, or null. Killed (and reported) after `ms`.
function startBench(args, { ms = 60000, env = {} } = {}) {
    const started = Date.now();
    const proc = spawn(HERALD_BIN, ['bench', ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    const done = once(proc, 'close').then(([code, signal]) => {
        clearTimeout(timer);
        running.delete(proc);
        const last = stdout.split('\n').map((l) => l.trim()).filter(Boolean).pop();
        let json = null;
        try {
            json = last ? JSON.parse(last) : null;
        } catch {
            json = null;
        }
        const r = { code, signal, stdout, stderr, json, elapsedMs: Date.now() - started };
        assert.notEqual(signal, 'SIGKILL', `herald bench ${args.join(' ')} did not end within ${ms} ms: ${show(r)}`);
        return r;
    });
    return { proc, done };
}

const bench = (args, opts) => startBench(args, opts).done;

// What a failed assertion prints about a run.
function show(r) {
    return `exit ${r.code ?? r.signal}; stderr: ${JSON.stringify(r.stderr.slice(-1500))}; ` +
        `json: ${r.json ? JSON.stringify(r.json) : `none (stdout tail ${JSON.stringify(r.stdout.slice(-500))})`}`;
}

// Asserts the run exited `code` and printed its JSON; returns the JSON.
function expectRun(r, code) {
    assert.equal(r.code, code, `expected exit ${code}: ${show(r)}`);
    assert.ok(r.json && typeof r.json === 'object', `no JSON object on the last stdout line: ${show(r)}`);
    assert.equal(r.json.clean, code === 0, `clean must match the exit status: ${show(r)}`);
    return r.json;
}

// Asserts the fields of `j` named in `want` have exactly those values.
function expectFields(j, want) {
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, j[k]]));
    assert.deepEqual(got, want, `JSON: ${JSON.stringify(j)}`);
}

const CLEAN = {
    failed: 0, missing: 0, subscribers_missing: 0, duplicates: 0, malformed: 0,
    unacknowledged: 0, disconnected: 0, publish_errors: 0, clean: true,
};

const JSON_KEYS = ['label', 'subscribers', 'topics', 'processes', 'connected', 'failed',
    'connect_s', 'connects_per_s', 'idle', 'publishers', 'rate', 'payload', 'publish_s',
    'publishes', 'publish_errors', 'publishes_per_s', 'deliveries', 'expected',
    'deliveries_per_s', 'bytes_received', 'latency_ns', 'publish_rtt_ns', 'missing',
    'subscribers_missing', 'duplicates', 'malformed', 'unacknowledged', 'disconnected',
    'rss_before_kb', 'rss_after_kb', 'bytes_per_subscriber', 'server_cpu_s',
    'harness_cpu_s', 'churn', 'stalled', 'stalled_closed', 'clean'];

function expectOrdered(obj, keys, what) {
    for (const k of keys) assert.equal(typeof obj[k], 'number', `${what}.${k} is not a number: ${JSON.stringify(obj)}`);
    for (let i = 1; i < keys.length; i++) {
        assert.ok(obj[keys[i - 1]] <= obj[keys[i]], `${what}: ${keys[i - 1]} > ${keys[i]}: ${JSON.stringify(obj)}`);
    }
}

// ---------------------------------------------------------------------------------------
// Hubs, the fake server, the system.

// Starts a hub keeping every event of the run in history (so /topics counts them), runs
// fn(h), stops the hub and checks it stopped cleanly.
async function withHerald(fn, { env = {}, threads = 2 } = {}) {
    const h = await startHerald({
        threads,
        env: { HERALD_HISTORY_MAX_EVENTS: '10000000', HERALD_HISTORY_MAX_BYTES: '2000000000', ...env },
    });
    try {
        return await fn(h);
    } finally {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    }
}

async function withFake(opts, fn) {
    const f = await startFakeSse(opts);
    try {
        return await fn(f);
    } finally {
        await f.close();
    }
}

// The templates for the fake's Nchan-like routes.
const fakeRoutes = (f) => ['--sub-url', `${f.base}/sub/{topic}`, '--pub-url', `${f.base}/pub/{topic}`,
    '--pub-body', '{data}', '--pub-content-type', 'text/plain'];
// A short, slow run: about 25 events, one publisher, three subscribers.
const SMALL = ['--subscribers', '3', '--publishers', '1', '--rate', '50', '--duration', '0.5',
    '--drain', '0.5', '--json'];

async function topicsOf(base, headers = {}) {
    const r = await request(`${base}/topics`, { headers });
    assert.equal(r.status, 200, `/topics answered ${r.status}: ${r.body}`);
    return JSON.parse(r.body).topics;
}

function vmRssKb(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    assert.ok(m, `no VmRSS for ${pid}`);
    return Number(m[1]);
}

// Samples `probe()` every `every` ms until stop() is called; stop() resolves to the samples.
function sampler(probe, every = 50) {
    const samples = [];
    let stopped = false;
    const loop = (async () => {
        while (!stopped) {
            try {
                samples.push(await probe());
            } catch {
                // a probe racing the run's end is not a failure
            }
            await sleep(every);
        }
    })();
    return async () => { stopped = true; await loop; return samples; };
}


// ---------------------------------------------------------------------------------------

describe('herald bench against herald', () => {
    test('20 subscribers, 2 publishers: every event once, figures agree with the hub\'s own', T, async () => {
        await withHerald(async (h) => {
            // The hub also publishes {"count": N} on $sys/connections as streams come and go;
            // watching that topic counts those, so the hub's counters can be checked exactly.
            const sys = await openStream(h.url, `/events?topic=${encodeURIComponent('$sys/connections')}`);
            assert.equal(sys.status, 200);
            await sleep(300); // our own arrival is announced within 100 ms
            const sysBefore = sys.events.length;
            const before = await getMetrics(h.url);
            const r = await bench(['--url', h.url, '--subscribers', '20', '--publishers', '2',
                '--duration', '1', '--label', 'basic run', '--json']);
            const j = expectRun(r, 0);
            for (const k of JSON_KEYS) assert.ok(k in j, `JSON lacks "${k}": ${JSON.stringify(j)}`);
            expectFields(j, {
                ...CLEAN, label: 'basic run', subscribers: 20, connected: 20, topics: 1, processes: 1,
                publishers: 2, idle: false, payload: 64, rss_before_kb: -1, rss_after_kb: -1,
                bytes_per_subscriber: -1,
            });
            assert.ok(j.publishes > 0, `no publishes: ${JSON.stringify(j)}`);
            assert.equal(j.expected, j.publishes * 20, `expected: ${JSON.stringify(j)}`);
            assert.equal(j.deliveries, j.expected, `deliveries: ${JSON.stringify(j)}`);
            expectOrdered(j.latency_ns, ['p50', 'p90', 'p99', 'p999', 'max'], 'latency_ns');
            assert.ok(j.latency_ns.p50 > 0, `latency p50: ${JSON.stringify(j.latency_ns)}`);
            expectOrdered(j.publish_rtt_ns, ['p50', 'p99', 'max'], 'publish_rtt_ns');
            assert.ok(j.publish_rtt_ns.p50 > 0, `publish rtt p50: ${JSON.stringify(j.publish_rtt_ns)}`);
            // Each event is `<p>-<seq> <ns> <padding>` with 64 bytes of data: at least that much came in.
            assert.ok(j.bytes_received >= j.deliveries * 64, `bytes_received: ${JSON.stringify(j)}`);
            assert.ok(j.connect_s > 0 && j.publish_s > 0.5, `timings: ${JSON.stringify(j)}`);
            assert.equal(j.churn.connects, 0, `no churn asked: ${JSON.stringify(j.churn)}`);
            assert.ok(j.harness_cpu_s > 0, `harness_cpu_s: ${JSON.stringify(j)}`);

            // The hub saw exactly those publishes (on the default topic `bench`) and
            // queued exactly those deliveries; its own announcements on $sys/connections
            // (which this test follows) are not counted.
            const benchTopic = (await topicsOf(h.url)).find((t) => t.topic === 'bench');
            assert.ok(benchTopic, 'the hub has no topic "bench"');
            assert.equal(benchTopic.retained, j.publishes, `events the hub holds on "bench" vs publishes`);
            let last = '';
            await waitUntil(async () => {
                const now = await getMetrics(h.url);
                const sysEvents = sys.events.length - sysBefore;
                const published = now.sum('herald_events_published_total') - before.sum('herald_events_published_total');
                const delivered = now.sum('herald_events_delivered_total') - before.sum('herald_events_delivered_total');
                last = `published +${published}, delivered +${delivered}, announcements ${sysEvents}`;
                return sysEvents > 0 && published === j.publishes && delivered === j.deliveries &&
                    now.sum('herald_subscribers') === 1;
            }, {
                ms: 5000,
                what: 'the hub\'s counters to match the bench\'s',
                describe: () => `${last}; bench ${JSON.stringify(j)}`,
            });
            sys.close();
        });
    });

    test('--topics 5: subscribers and publishes spread over t0..t4', T, async () => {
        await withHerald(async (h) => {
            const run = startBench(['--url', h.url, '--subscribers', '10', '--publishers', '3',
                '--topics', '5', '--duration', '1', '--pid', String(h.proc.pid), '--settle', '0', '--json']);
            const stop = sampler(() => topicsOf(h.url));
            const r = await run.done;
            const samples = await stop();
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, subscribers: 10, connected: 10, topics: 5, publishers: 3 });
            assert.ok(j.publishes >= 5, `publishes: ${JSON.stringify(j)}`);
            // --pid also measures the hub's CPU while publishing: busy, at most its 2 threads.
            assert.ok(j.server_cpu_s > 0 && j.server_cpu_s <= 2 * j.publish_s + 0.5, `server_cpu_s: ${JSON.stringify(j)}`);
            // Subscriber i follows t(i % 5): two per topic, so each publish reaches two.
            assert.equal(j.expected, 2 * j.publishes, `expected: ${JSON.stringify(j)}`);
            assert.equal(j.deliveries, j.expected);
            const names = ['t0', 't1', 't2', 't3', 't4'];
            const maxSubs = Object.fromEntries(names.map((n) => [n, 0]));
            for (const sample of samples) {
                for (const t of sample) if (t.topic in maxSubs) maxSubs[t.topic] = Math.max(maxSubs[t.topic], t.subscribers);
            }
            assert.deepEqual(maxSubs, Object.fromEntries(names.map((n) => [n, 2])),
                `subscribers per topic seen during the run (${samples.length} samples)`);
            // Publisher p sends seq s to t((p + s) % 5): every topic gets some, they add up.
            const topics = (await topicsOf(h.url)).filter((t) => !t.topic.startsWith('$'));
            assert.deepEqual(topics.map((t) => t.topic).sort(), names, 'the bench used exactly t0..t4');
            for (const t of topics) assert.ok(t.retained > 0, `nothing published on ${t.topic}`);
            assert.equal(topics.reduce((a, t) => a + t.retained, 0), j.publishes, 'events on t0..t4 vs publishes');
        });
    });

    test('--processes 2 --threads 2: 40 subscribers, all at once on the hub', T, async () => {
        await withHerald(async (h) => {
            const run = startBench(['--url', h.url, '--subscribers', '40', '--processes', '2',
                '--threads', '2', '--publishers', '2', '--duration', '1', '--json']);
            const stop = sampler(async () => (await getMetrics(h.url)).sum('herald_subscribers'));
            const r = await run.done;
            const samples = await stop();
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, subscribers: 40, connected: 40, processes: 2 });
            assert.ok(j.publishes > 0);
            assert.equal(j.expected, 40 * j.publishes);
            assert.equal(j.deliveries, j.expected);
            assert.equal(Math.max(0, ...samples), 40, `herald_subscribers seen during the run: ${JSON.stringify(samples)}`);
        });
    });

    test('--pid: the hub\'s memory before and after 200 idle subscribers, pids summed', T, async () => {
        await withHerald(async (h) => {
            const r = await bench(['--url', h.url, '--idle', '--subscribers', '200', '--settle', '0.5',
                '--pid', String(h.proc.pid), '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, subscribers: 200, connected: 200, idle: true, publishes: 0, deliveries: 0 });
            assert.ok(j.rss_before_kb > 0, `rss_before_kb: ${JSON.stringify(j)}`);
            assert.ok(j.rss_after_kb >= j.rss_before_kb, `rss_after_kb: ${JSON.stringify(j)}`);
            assert.ok(j.bytes_per_subscriber > 0, `bytes_per_subscriber: ${JSON.stringify(j)}`);
            const perSub = ((j.rss_after_kb - j.rss_before_kb) * 1024) / 200;
            assert.ok(Math.abs(j.bytes_per_subscriber - perSub) <= perSub * 0.01 + 1,
                `bytes_per_subscriber ${j.bytes_per_subscriber} vs (after - before) * 1024 / 200 = ${perSub}`);

            // Two pids: herald's and this test process's; the sum exceeds herald alone.
            const heraldKb = vmRssKb(h.proc.pid);
            const ownKb = vmRssKb(process.pid);
            const r2 = await bench(['--url', h.url, '--idle', '--subscribers', '5', '--settle', '0.2',
                '--pid', `${h.proc.pid},${process.pid}`, '--json']);
            const j2 = expectRun(r2, 0);
            assert.ok(j2.rss_before_kb >= heraldKb + ownKb / 2,
                `rss_before_kb ${j2.rss_before_kb} with both pids; herald alone ${heraldKb} kB, this process ${ownKb} kB`);
            assert.ok(j2.rss_before_kb > j.rss_after_kb, `two pids ${j2.rss_before_kb} kB vs herald alone ${j.rss_after_kb} kB`);
        });
    });

    test('--churn 50: extra connections come and go, the steady subscribers lose nothing', T, async () => {
        await withHerald(async (h) => {
            const r = await bench(['--url', h.url, '--subscribers', '10', '--publishers', '1',
                '--rate', '50', '--duration', '1', '--churn', '50', '--churn-hold', '50', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, subscribers: 10, connected: 10 });
            assert.ok(j.publishes >= 40 && j.publishes <= 60, `about 50 publishes at 50/s for 1 s: ${JSON.stringify(j)}`);
            assert.equal(j.expected, 10 * j.publishes);
            assert.equal(j.deliveries, j.expected, 'deliveries count the steady subscribers only');
            assert.equal(j.churn.rate, 50, JSON.stringify(j.churn));
            assert.ok(j.churn.connects >= 20, `churn connects: ${JSON.stringify(j.churn)}`);
            assert.equal(j.churn.failures, 0, JSON.stringify(j.churn));
            assert.ok(j.churn.connects_per_s > 0, JSON.stringify(j.churn));
            assert.ok(j.churn.head_ns.p50 > 0, JSON.stringify(j.churn));
            expectOrdered(j.churn.head_ns, ['p50', 'p99', 'max'], 'churn.head_ns');
        });
    });

    test('--stalled 3: extra subscribers never read; the hub cuts them, the others lose nothing', T, async () => {
        await withHerald(async (h) => {
            const r = await bench(['--url', h.url, '--subscribers', '5', '--stalled', '3',
                '--publishers', '2', '--rate', '400', '--duration', '2', '--payload', '4000',
                '--drain', '2', '--json'], { ms: 60000 });
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, subscribers: 5, connected: 5, stalled: 3, stalled_closed: 3 });
            assert.equal(j.deliveries, 5 * j.publishes, 'the stalled subscribers are not counted');
            const m = await getMetrics(h.url);
            assert.equal(m.sum('herald_slow_consumer_disconnects_total'), 3, m.text.match(/herald_slow[^\n]*/g)?.join('\n'));
        }, { env: { HERALD_SERVER_SLOW_CLIENT_BYTES: '262144' } });
    });

    test('--header carries a token; without it every subscriber is refused with 401', T, async () => {
        await withHerald(async (h) => {
            const common = ['--url', h.url, '--subscribers', '5', '--publishers', '1', '--rate', '50',
                '--duration', '0.5', '--drain', '0.5', '--json'];
            const ok = await bench([...common, '--header', 'Authorization: Bearer T']);
            const j = expectRun(ok, 0);
            expectFields(j, { ...CLEAN, connected: 5 });
            assert.ok(j.publishes > 0);
            assert.equal(j.deliveries, 5 * j.publishes);

            const refused = await bench(common);
            const k = expectRun(refused, 1);
            expectFields(k, { subscribers: 5, connected: 0, failed: 5 });
            assert.match(refused.stderr, /401/, `stderr should say 401: ${show(refused)}`);
        }, { env: { AUTH_TOKEN: 'T' } });
    });

    test('--topic room --topics 3: the topics are room0..room2', T, async () => {
        await withHerald(async (h) => {
            const r = await bench(['--url', h.url, '--subscribers', '6', '--publishers', '2', '--rate', '60',
                '--duration', '0.5', '--topic', 'room', '--topics', '3', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 6, topics: 3 });
            assert.equal(j.expected, 2 * j.publishes);
            assert.equal(j.deliveries, j.expected);
            const topics = (await topicsOf(h.url)).filter((t) => !t.topic.startsWith('$'));
            assert.deepEqual(topics.map((t) => t.topic).sort(), ['room0', 'room1', 'room2']);
            assert.equal(topics.reduce((a, t) => a + t.retained, 0), j.publishes);
        });
    });

    test('a JSON publish body: {data:json} escapes the data for a JSON string', T, async () => {
        await withHerald(async (h) => {
            const r = await bench(['--url', h.url, '--subscribers', '3', '--publishers', '1', '--rate', '50',
                '--duration', '0.5', '--pub-content-type', 'application/json',
                '--pub-body', '{"topic": "{topic}", "data": "{data:json}", "event": "bench"}', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.ok(j.publishes > 0);
            assert.equal(j.deliveries, 3 * j.publishes);
            const onHub = (await topicsOf(h.url)).find((t) => t.topic === 'bench');
            assert.equal(onHub?.retained, j.publishes, 'events the hub holds on "bench"');
        });
    });

    test('nothing listening: exit 1 within seconds, every subscriber failed, stderr says why', T, async () => {
        const port = await closedPort();
        const r = await bench(['--url', `http://127.0.0.1:${port}`, '--subscribers', '5',
            '--duration', '0.2', '--drain', '0.2', '--json'], { ms: 30000 });
        const j = expectRun(r, 1);
        expectFields(j, { subscribers: 5, connected: 0, failed: 5 });
        assert.match(r.stderr, /connect|refused/i, show(r));
        assert.ok(r.elapsedMs < 10000, `took ${r.elapsedMs} ms`);
    });
});

describe('herald bench against a misbehaving SSE server', () => {
    test('a dropped event: missing 1 on one subscriber, exit 1', T, async () => {
        await withFake({ dropSeq: 3 }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, {
                subscribers: 3, connected: 3, failed: 0, missing: 1, subscribers_missing: 1,
                duplicates: 0, malformed: 0, publish_errors: 0, disconnected: 0,
            });
            assert.ok(j.publishes >= 20 && j.publishes <= 30, `about 25 publishes: ${JSON.stringify(j)}`);
            assert.equal(f.stats.publishes, j.publishes, 'publishes the fake accepted');
            assert.equal(j.expected, 3 * j.publishes);
            assert.equal(j.deliveries, j.expected - 1);
        });
    });

    test('a repeated event: duplicates 1, exit 1', T, async () => {
        await withFake({ duplicateSeq: 2 }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, {
                connected: 3, failed: 0, missing: 0, subscribers_missing: 0, duplicates: 1,
                malformed: 0, publish_errors: 0, disconnected: 0,
            });
            assert.equal(f.stats.publishes, j.publishes);
            assert.equal(j.expected, 3 * j.publishes);
            assert.equal(j.deliveries, j.expected + 1);
        });
    });

    test('an event that is not a bench event: malformed, exit 1', T, async () => {
        await withFake({ garbage: true }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, { connected: 3, missing: 0, duplicates: 0, malformed: 1, publish_errors: 0 });
            assert.equal(j.expected, 3 * f.stats.publishes);
        });
    });

    test('a stream closed after 2 events: disconnected 1, the rest missing, exit 1', T, async () => {
        await withFake({ closeAfter: 2 }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, { connected: 3, failed: 0, disconnected: 1, subscribers_missing: 1, duplicates: 0, malformed: 0 });
            assert.equal(f.stats.publishes, j.publishes);
            assert.ok(j.publishes > 2);
            assert.equal(j.missing, j.publishes - 2, `the cut subscriber got 2 of ${j.publishes}: ${JSON.stringify(j)}`);
            assert.equal(j.expected, 3 * j.publishes);
            assert.equal(j.deliveries, j.expected - j.missing);
        });
    });

    test('a publish answered 500: publish_errors 1, nobody missing it, exit 1', T, async () => {
        await withFake({ failPublishSeq: 1 }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, {
                connected: 3, publish_errors: 1, missing: 0, subscribers_missing: 0, duplicates: 0,
                malformed: 0, unacknowledged: 0, disconnected: 0,
            });
            assert.equal(f.stats.failedPublishes, 1);
            assert.ok([f.stats.publishes, f.stats.publishes + 1].includes(j.publishes),
                `publishes ${j.publishes}; the fake accepted ${f.stats.publishes} and refused 1`);
            // Only acknowledged publishes are expected.
            assert.equal(j.expected, 3 * f.stats.publishes);
            assert.equal(j.deliveries, j.expected);
        });
    });

    test('frames in 1-3 byte pieces across chunk boundaries: clean', T, async () => {
        await withFake({ splitWrites: true }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.equal(f.stats.publishes, j.publishes);
            assert.equal(j.expected, 3 * j.publishes);
            assert.equal(j.deliveries, j.expected);
        });
    });

    test('a close-delimited (not chunked) stream in tiny pieces: clean', T, async () => {
        await withFake({ splitWrites: true, chunked: false }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.equal(j.expected, 3 * f.stats.publishes);
            assert.equal(j.deliveries, j.expected);
        });
    });

    test('the default templates: GET /events?topic= and a form POST /events', T, async () => {
        await withFake({ formRoutes: true }, async (f) => {
            const r = await bench(['--url', f.base, ...SMALL]);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.equal(f.stats.connects, 3);
            assert.equal(f.stats.publishes, j.publishes);
            assert.ok(j.publishes > 0);
            assert.equal(j.deliveries, 3 * j.publishes);
            assert.match(String(f.stats.pubHeaders['content-type']), /^application\/x-www-form-urlencoded/);
        });
    });

    test('--topics 5, 2 publishers: publisher p sends seq s to t((p + s) % 5); only followed topics expected', T, async () => {
        await withFake({ formRoutes: true }, async (f) => {
            const r = await bench(['--url', f.base, '--subscribers', '2', '--topics', '5', '--publishers', '2',
                '--rate', '60', '--duration', '0.5', '--drain', '0.5', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 2, topics: 5 });
            // Subscriber i follows t(i % 5): t0 and t1 have one subscriber each, t2..t4 none.
            assert.deepEqual(Object.fromEntries(f.stats.topics), { t0: 1, t1: 1 });
            assert.equal(f.stats.published.length, j.publishes);
            const seen = new Set();
            for (const [topic, stamp] of f.stats.published) {
                const m = /^(\d+)-(\d+)$/.exec(stamp);
                assert.ok(m, `not a bench stamp: ${stamp}`);
                const [p, seq] = [Number(m[1]), Number(m[2])];
                assert.ok(p === 0 || p === 1, `publisher ${p} of 2`);
                assert.equal(topic, `t${(p + seq) % 5}`, `${stamp} went to ${topic}`);
                seen.add(topic);
            }
            assert.equal(seen.size, 5, `every topic got publishes: ${[...seen]}`);
            const followed = f.stats.published.filter(([topic]) => topic === 't0' || topic === 't1').length;
            assert.equal(j.expected, followed, 'expected counts only the publishes on followed topics');
            assert.equal(j.deliveries, j.expected);
        });
    });

    test('a topic with spaces, &, / and é: URL-encoded in the query, form-encoded in the body', T, async () => {
        await withFake({ formRoutes: true }, async (f) => {
            const topic = 'a b&c/d=é';
            const r = await bench(['--url', f.base, ...SMALL, '--topic', topic]);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.deepEqual([...f.stats.topics], [[topic, 3]], 'the topics the fake was asked for');
            assert.equal(f.stats.publishes, j.publishes);
            assert.equal(j.deliveries, 3 * j.publishes);
        });
    });

    test('--header, repeated: every header on every subscribe and publish', T, async () => {
        await withFake({}, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL, '--header', 'Authorization: Bearer xyz',
                '--header', 'X-Bench-Extra: one two']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            for (const [what, h] of [['subscribe', f.stats.subHeaders], ['publish', f.stats.pubHeaders]]) {
                assert.equal(h?.authorization, 'Bearer xyz', `${what}: ${JSON.stringify(h)}`);
                assert.equal(h?.['x-bench-extra'], 'one two', `${what}: ${JSON.stringify(h)}`);
            }
            assert.equal(f.stats.pubHeaders['content-type'], 'text/plain');
        });
    });

    test('--payload 100: every event\'s data is 100 bytes', T, async () => {
        await withFake({}, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL, '--payload', '100']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, payload: 100 });
            assert.deepEqual([...f.stats.dataSizes], [100]);
            assert.ok(j.bytes_received >= 100 * j.deliveries, JSON.stringify(j));
        });
    });

    test('--source-ips 3: subscribers come from 127.0.0.1, .2 and .3 in turn', T, async () => {
        await withFake({}, async (f) => {
            const r = await bench([...fakeRoutes(f), '--subscribers', '6', '--publishers', '1', '--rate', '50',
                '--duration', '0.3', '--drain', '0.5', '--source-ips', '3', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 6 });
            assert.deepEqual(Object.fromEntries(f.stats.sources),
                { '127.0.0.1': 2, '127.0.0.2': 2, '127.0.0.3': 2 });
        });
    });

    test('--processes 2: one dropped event is counted once over both processes', T, async () => {
        await withFake({ dropSeq: 3 }, async (f) => {
            const r = await bench([...fakeRoutes(f), '--subscribers', '4', '--processes', '2', '--publishers', '1',
                '--rate', '50', '--duration', '0.5', '--drain', '0.5', '--json']);
            const j = expectRun(r, 1);
            expectFields(j, {
                processes: 2, connected: 4, failed: 0, missing: 1, subscribers_missing: 1, duplicates: 0,
                malformed: 0, disconnected: 0, publish_errors: 0,
            });
            assert.equal(j.expected, 4 * j.publishes);
            assert.equal(j.deliveries, j.expected - 1);
        });
    });

    test('--churn: each churn connection is one more subscribe the server saw', T, async () => {
        await withFake({ formRoutes: true }, async (f) => {
            const r = await bench(['--url', f.base, '--subscribers', '3', '--publishers', '1', '--rate', '50',
                '--duration', '1', '--drain', '0.5', '--churn', '40', '--churn-hold', '20', '--json']);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.ok(j.churn.connects >= 20 && j.churn.connects <= 60, JSON.stringify(j.churn));
            assert.equal(j.churn.failures, 0);
            // A churn connection still waiting for its head when publishing stops is
            // abandoned uncounted, though the server may have answered it: at 40/s, one or two.
            const extra = f.stats.connects - 3 - j.churn.connects;
            assert.ok(extra >= 0 && extra <= 3, `subscribe requests the fake answered: ${f.stats.connects}, churn ${j.churn.connects}`);
            assert.equal(j.deliveries, 3 * j.publishes, 'churn connections are not counted as deliveries');
        });
    });

    test('a failed publish delivered all the same: unacknowledged, exit 1', T, async () => {
        await withFake({ failPublishSeq: 1, deliverFailed: true }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 1);
            expectFields(j, { connected: 3, publish_errors: 1, unacknowledged: 3, missing: 0, duplicates: 0, malformed: 0 });
            assert.equal(j.expected, 3 * f.stats.publishes);
            assert.equal(j.deliveries, j.expected + 3);
        });
    });

    test('CRLF line ends, comments, event: lines, data: without a space, a second data line, in tiny pieces', T, async () => {
        await withFake({ eol: '\r\n', fancy: true, splitWrites: true }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 0);
            expectFields(j, { ...CLEAN, connected: 3 });
            assert.equal(j.deliveries, 3 * f.stats.publishes);
        });
    });

    // SSE ends lines with CRLF, LF or a lone CR.
    test('lone CR line ends: clean', T, async () => {
        await withFake({ eol: '\r' }, async (f) => {
            const r = await bench([...fakeRoutes(f), ...SMALL]);
            const j = expectRun(r, 0);
            assert.equal(j.deliveries, 3 * f.stats.publishes);
        });
    });

    // The body's last chunk ends the stream even if the connection stays open.
    test('a chunked stream ended on a kept-alive connection: disconnected 1',
        T, async () => {
            await withFake({ closeAfter: 2, endKeepsConnection: true }, async (f) => {
                const r = await bench([...fakeRoutes(f), ...SMALL]);
                const j = expectRun(r, 1);
                expectFields(j, { connected: 3, disconnected: 1, subscribers_missing: 1 });
                assert.equal(j.missing, j.publishes - 2);
            });
        });

    test('a server that never answers: --connect-timeout gives up, exit 1', T, async () => {
        const sockets = new Set();
        const srv = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); });
        srv.listen(0, '127.0.0.1');
        await once(srv, 'listening');
        try {
            const r = await bench(['--url', `http://127.0.0.1:${srv.address().port}`, '--subscribers', '3',
                '--publishers', '1', '--duration', '0.2', '--drain', '0.2', '--connect-timeout', '1', '--json'], { ms: 30000 });
            const j = expectRun(r, 1);
            expectFields(j, { subscribers: 3, connected: 0, failed: 3 });
            assert.match(r.stderr, /response head|timed? ?out|gave up/i, show(r));
            assert.ok(r.elapsedMs < 20000, `took ${r.elapsedMs} ms`);
        } finally {
            for (const s of sockets) s.destroy();
            srv.close();
        }
    });
});

describe('herald bench usage', () => {
    const bad = [
        [['--subscribers', '-1'], '--subscribers'],
        [['--subscribers', 'abc'], '--subscribers'],
        [['--url', 'ftp://x'], '--url'],
        [['--pub-body', '{nope}'], '--pub-body'],
        [['--bogus'], '--bogus'],
        [['--processes', '0'], '--processes'],
        [['--stalled', '-1'], '--stalled'],
    ];
    for (const [args, option] of bad) {
        test(`${args.join(' ')}: exit 2 naming ${option}`, T, async () => {
            const r = await bench([...args, '--duration', '0.2', '--json'], { ms: 15000 });
            assert.equal(r.code, 2, show(r));
            assert.ok(r.stderr.includes(option), `stderr should name ${option}: ${show(r)}`);
        });
    }

    test('--help lists the options and exits 0', T, async () => {
        const r = await bench(['--help'], { ms: 15000 });
        assert.equal(r.code, 0, show(r));
        const text = r.stdout + r.stderr;
        for (const option of ['--sub-url', '--pub-url', '--pub-body', '--churn', '--processes', '--pid', '--json']) {
            assert.ok(text.includes(option), `--help does not mention ${option}:\n${text}`);
        }
    });
});
