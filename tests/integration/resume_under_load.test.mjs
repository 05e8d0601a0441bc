// "No gap, no duplicate" under load: four publishers push numbered events to two topics
// (and a third, unsubscribed one) while a client keeps dropping its connection at random
// points, mid-frame included, and resumes with the last id it saw. At the end the union
// of what it received must be every event on its topics exactly once, in the hub's order
// (the order a never-disconnected subscriber saw, and the order an `earliest` replay gives).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startHerald, SseParser } from './lib/harness.mjs';
import {
    subscribe, waitEvents, uniqueTopic, eventsPath, requestWith, formBody, sleep,
} from './lib/util.mjs';

const PUBLISHERS = 4;
const PER_PUBLISHER = 1500;
const T = { timeout: 180000 };

// Deterministic pseudo-random numbers, so that a failure can be replayed.
function rng(seed) {
    let x = seed >>> 0 || 1;
    return () => {
        x ^= x << 13; x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5; x >>>= 0;
        return x / 0x100000000;
    };
}

// A subscriber that disconnects after a random number of events or a random time and
// reconnects with the last id it saw (header or ?lastEventID=).
class ResumingClient {
    constructor(base, topics, mode, seed) {
        this.base = base;
        this.topics = topics;
        this.mode = mode;
        this.random = rng(seed);
        this.received = [];
        this.lastId = 'earliest'; // the topics are new: `earliest` loses nothing before the first event
        this.connections = 0;
        this.problems = [];
        this.churning = true;
    }

    randInt(lo, hi) { return lo + Math.floor(this.random() * (hi - lo + 1)); }

    connectOnce({ maxEvents = Infinity, maxMs = Infinity, until = null } = {}) {
        return new Promise((resolve) => {
            const parser = new SseParser();
            const headers = { Accept: 'text/event-stream' };
            const resumeFrom = this.lastId;
            let path = eventsPath(this.topics);
            if (this.mode === 'header') headers['Last-Event-ID'] = resumeFrom;
            else path = eventsPath(this.topics, { lastEventID: resumeFrom });
            let finished = false;
            let taken = 0;
            let timer = null;
            let req = null;
            const done = () => {
                if (finished) return;
                finished = true;
                if (timer) clearTimeout(timer);
                req.destroy();
                resolve();
            };
            req = http.get(this.base + path, { headers, agent: false }, (res) => {
                this.connections += 1;
                if (res.statusCode !== 200) {
                    this.problems.push(`reconnect ${this.connections} answered ${res.statusCode}`);
                    done();
                    return;
                }
                if (res.headers['last-event-id'] !== resumeFrom) {
                    this.problems.push(`resumed from ${resumeFrom} but the response header Last-Event-ID is ` +
                        `${JSON.stringify(res.headers['last-event-id'])}`);
                }
                res.setEncoding('utf8');
                res.on('data', (d) => {
                    if (finished) return;
                    // Now and then drop the connection in the middle of a chunk: whatever
                    // frame was cut in half is lost here and must come back on resume.
                    const cutHere = !until && this.random() < 0.05;
                    parser.push(cutHere ? d.slice(0, this.randInt(0, d.length)) : d);
                    while (parser.events.length > taken) {
                        const e = parser.events[taken++];
                        this.received.push(e);
                        this.lastId = e.id;
                    }
                    if (cutHere || taken >= maxEvents || (until && until())) done();
                });
                res.on('end', done);
                res.on('close', done);
                res.on('error', done);
            });
            req.on('error', (e) => {
                if (!finished) this.problems.push(`connection error: ${e.message}`);
                done();
            });
            if (maxMs !== Infinity) timer = setTimeout(done, maxMs);
        });
    }

    // Disconnects and resumes again and again until stop() is called.
    start() {
        this.loop = (async () => {
            while (this.churning) {
                await this.connectOnce({ maxEvents: this.randInt(1, 200), maxMs: this.randInt(5, 80) });
                if (this.random() < 0.5) await sleep(this.randInt(0, 25));
            }
        })();
    }

    // Stops churning and stays connected until `total` events arrived (at most `ms`).
    async finish(total, ms) {
        this.churning = false;
        await this.loop;
        if (this.received.length < total) {
            await this.connectOnce({ maxMs: ms, until: () => this.received.length >= total });
        }
    }
}

// Compares two id sequences and fails at the first difference with some context.
function assertSameSequence(actual, expected, label) {
    const n = Math.max(actual.length, expected.length);
    for (let i = 0; i < n; i++) {
        if (actual[i] !== expected[i]) {
            assert.fail(`${label}: first difference at index ${i} of ${actual.length} (expected ${expected.length}): ` +
                `got ${JSON.stringify(actual.slice(Math.max(0, i - 2), i + 3))}, ` +
                `expected ${JSON.stringify(expected.slice(Math.max(0, i - 2), i + 3))}`);
        }
    }
}

async function scenario(base, mode, seed) {
    const a = uniqueTopic(`load-${mode}-a`);
    const b = uniqueTopic(`load-${mode}-b`);
    const noise = uniqueTopic(`load-${mode}-noise`);
    const topics = [a, b];
    const topicsFor = (p, i) => {
        if (p === 3 && i % 5 === 0) return [noise];
        if (p === 3 && i % 7 === 0) return [a, b];
        if (p === 3 && i % 11 === 0) return [noise, b];
        if (p === 2) return [a];
        return [(i + p) % 2 ? a : b];
    };

    const reference = await subscribe(base, topics);
    const client = new ResumingClient(base, topics, mode, seed);
    client.start();

    // Each publisher: sequential requests on one keep-alive connection.
    const published = Array.from({ length: PUBLISHERS }, () => []);
    const agents = [];
    try {
        await Promise.all(Array.from({ length: PUBLISHERS }, async (_, p) => {
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            agents.push(agent);
            for (let i = 0; i < PER_PUBLISHER; i++) {
                const t = topicsFor(p, i);
                const res = await requestWith(`${base}/events`, {
                    agent,
                    method: 'POST',
                    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                    body: formBody({ topic: t, data: `${p}:${i}` }),
                });
                assert.equal(res.status, 200, `publisher ${p} event ${i}: ${res.status} ${res.body}`);
                published[p].push({ id: res.body.trim(), i, wanted: t.includes(a) || t.includes(b) });
            }
        }));
    } catch (e) {
        client.churning = false;
        reference.close();
        throw e;
    } finally {
        for (const agent of agents) agent.destroy();
    }

    const expectedCount = published.flat().filter((e) => e.wanted).length;
    await client.finish(expectedCount, 30000);
    try {
        await waitEvents(reference, expectedCount, 30000);
    } finally {
        reference.close();
    }
    const replay = await subscribe(base, topics, { headers: { 'Last-Event-ID': 'earliest' } });
    try {
        await waitEvents(replay, expectedCount, 30000);
    } finally {
        replay.close();
    }

    // The client really did drop and resume many times.
    assert.ok(client.connections >= 10, `only ${client.connections} connections: the test did not churn`);
    console.log(`# ${mode}: ${expectedCount} events over ${client.connections} connections`);
    assert.deepEqual(client.problems, []);

    // Exactly once.
    const ids = client.received.map((e) => e.id);
    const seen = new Set();
    const dups = ids.filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
    assert.deepEqual(dups.slice(0, 10), [], `${dups.length} duplicate deliveries across ${client.connections} connections`);
    assert.equal(ids.length, expectedCount,
        `received ${ids.length} distinct events of ${expectedCount} across ${client.connections} connections`);

    // Each publisher's events arrive in its own order, with the ids it was given.
    for (let p = 0; p < PUBLISHERS; p++) {
        const mine = client.received.filter((e) => e.data.startsWith(`${p}:`));
        const wanted = published[p].filter((e) => e.wanted);
        assertSameSequence(mine.map((e) => e.data), wanted.map((e) => `${p}:${e.i}`), `publisher ${p} data order`);
        assertSameSequence(mine.map((e) => e.id), wanted.map((e) => e.id), `publisher ${p} ids`);
    }
    assert.ok(!client.received.some((e) => e.data.startsWith('3:') && Number(e.data.slice(2)) % 5 === 0),
        'an event of an unsubscribed topic was delivered');

    // The hub's order: what the never-disconnected subscriber saw, and the retained log.
    assertSameSequence(reference.events.map((e) => e.id), replay.events.map((e) => e.id),
        'live subscriber vs `earliest` replay');
    assertSameSequence(ids, replay.events.map((e) => e.id), 'resuming client vs `earliest` replay');
}

describe('resume under load', () => {
    let h;
    before(async () => {
        h = await startHerald({ threads: 4, env: { HERALD_HISTORY_MAX_EVENTS: '100000' } });
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('resuming with the Last-Event-ID header loses and repeats nothing', T, async () => {
        await scenario(h.url, 'header', 20240611);
    });

    test('resuming with ?lastEventID= loses and repeats nothing', T, async () => {
        await scenario(h.url, 'query', 77);
    });
});
