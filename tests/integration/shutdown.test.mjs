// SIGTERM with work in flight: every publish whose request was fully written is answered
// (200 with an id, or 503 with a JSON error), never met with a closed or reset socket;
// herald exits 0 within 10 s; every publish answered 200 is in the SQLite store after a
// restart. Open streams end cleanly (FIN, not RST), and a request whose headers are half
// in at SIGTERM is still answered.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startHerald, openStream } from './lib/harness.mjs';
import { uniqueTopic, parseHttpResponse, formBody, eventsPath, withTimeout, waitUntil, sleep } from './lib/util.mjs';

const T = { timeout: 90000 };
const PAD = 'p'.repeat(Number(process.env.HERALD_SHUTDOWN_PAD ?? 60000));

function publishRequest(topic, data) {
    const body = formBody({ topic, data });
    return `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// Checks one answer to a publish: 200 with an id, or 503 with a JSON error. Returns a
// problem string or null.
function checkAnswer(r) {
    if (r.status === 200) return r.body.trim() ? null : '200 with an empty id';
    if (r.status === 503) {
        if (!/^application\/json/i.test(r.headers['content-type'] ?? '')) return `503 with Content-Type ${r.headers['content-type']}`;
        try {
            const j = JSON.parse(r.body);
            return typeof j.error === 'string' && j.error ? null : `503 body without "error": ${r.body}`;
        } catch {
            return `503 with a non-JSON body: ${JSON.stringify(r.body)}`;
        }
    }
    return `status ${r.status}: ${JSON.stringify(r.body.slice(0, 200))}`;
}

// One keep-alive publisher: writes a publish, reads its whole answer, repeats, until an
// answer says Connection: close or the socket closes with no request outstanding.
// Resolves to { acked: [{id, data}], answers, problems: [] }.
function publisher(port, topic, name) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.setNoDelay(true);
        let raw = '';
        let n = 0;
        let outstanding = null; // { data, written }
        const acked = [];
        const problems = [];
        let answers = 0;
        const statuses = {};
        let finished = false;
        let sawError = null;
        const finish = (why) => {
            if (finished) return;
            finished = true;
            clearTimeout(timer);
            sock.destroy();
            resolve({ name, acked, answers, statuses, problems, why });
        };
        const sendNext = () => {
            if (finished || sock.destroyed) return;
            const data = `${name}-${n++}-${PAD}`;
            outstanding = { data, written: false };
            const o = outstanding;
            sock.write(publishRequest(topic, data), (err) => { if (!err) o.written = true; });
        };
        const onGone = (how) => {
            if (finished) return;
            // Anything complete in the buffer is an answer first.
            drainResponses(true);
            if (finished) return;
            if (outstanding && outstanding.written) {
                problems.push(`${name}: the socket ${how} while publish ${outstanding.data} was unanswered` +
                    `${sawError ? ` (${sawError})` : ''}; unparsed bytes ${JSON.stringify(raw.slice(0, 120))}`);
            }
            finish(how);
        };
        const drainResponses = (closed) => {
            for (;;) {
                const r = parseHttpResponse(raw, { closed: false });
                if (!r || !r.complete) return;
                raw = r.rest;
                answers += 1;
                statuses[r.status] = (statuses[r.status] ?? 0) + 1;
                if (!outstanding) {
                    problems.push(`${name}: an answer with no request outstanding: ${r.status}`);
                    finish('unexpected answer');
                    return;
                }
                const p = checkAnswer(r);
                if (p) problems.push(`${name}: publish ${outstanding.data}: ${p}`);
                else if (r.status === 200) acked.push({ id: r.body.trim(), data: outstanding.data });
                outstanding = null;
                if (/\bclose\b/i.test(r.headers.connection ?? '')) {
                    finish('Connection: close');
                    return;
                }
                if (!closed) sendNext();
            }
        };
        sock.on('connect', sendNext);
        sock.on('data', (d) => { raw += d.toString('latin1'); drainResponses(false); });
        sock.on('error', (e) => { sawError = e.code ?? e.message; });
        sock.on('end', () => onGone(sawError ? `was reset (${sawError})` : 'was closed (FIN)'));
        sock.on('close', () => onGone(sawError ? `was reset (${sawError})` : 'was closed'));
        // Bounded: a connection the hub neither answers nor closes is a problem too.
        const timer = setTimeout(() => {
            if (!finished) {
                problems.push(`${name}: neither answered nor closed 20 s after it started (outstanding ${outstanding?.data})`);
                finish('timeout');
            }
        }, 20000);
    });
}

describe('SIGTERM with publishes in flight', () => {
    let dir;
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-shutdown-')); });
    after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

    const ROUNDS = Number(process.env.HERALD_SHUTDOWN_ROUNDS) || 3;
    test(`every publish in flight is answered, herald exits 0, every 200 is in the store (${ROUNDS} rounds)`, T, async () => {
        for (let round = 1; round <= ROUNDS; round++) {
            const db = path.join(dir, `round-${round}.db`);
            const env = { HERALD_HISTORY_MAX_EVENTS: '1000000', HERALD_HISTORY_MAX_BYTES: String(512 * 1024 * 1024) };
            const hub = await startHerald({ args: ['--store', `sqlite:${db}`], env });
            const topic = uniqueTopic(`sigterm-${round}`);
            let results;
            try {
                const running = Array.from({ length: 16 }, (_, i) => publisher(hub.port, topic, `r${round}c${i}`));
                await sleep(300);
                const stopped = hub.stop('SIGTERM');
                const code = await withTimeout(stopped, 10000, `round ${round}: herald to exit after SIGTERM`);
                assert.equal(code, 0, `round ${round}: herald exited with ${code}:\n${hub.output().slice(-2000)}`);
                results = await withTimeout(Promise.all(running), 15000, `round ${round}: the publishers to finish`);
            } finally {
                if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill('SIGKILL');
            }
            if (process.env.HERALD_SHUTDOWN_VERBOSE) {
                console.log(results.map((r) => `${r.name}: ${r.answers} ${JSON.stringify(r.statuses)} ${r.why}`).join('\n'));
            }
            const problems = results.flatMap((r) => r.problems);
            const summary = results.map((r) => `${r.name}: ${r.answers} answers ${JSON.stringify(r.statuses)}, ended by ${r.why}`).join('\n');
            assert.deepEqual(problems, [], `round ${round}:\n${summary}`);
            const acked = results.flatMap((r) => r.acked);
            assert.ok(acked.length > 0, `round ${round}: nothing was acknowledged in 300 ms:\n${summary}`);

            // Restart on the same file: every acknowledged publish is there.
            const hub2 = await startHerald({ args: ['--store', `sqlite:${db}`], env });
            try {
                const s = await openStream(hub2.url, eventsPath([topic]), { headers: { 'Last-Event-ID': 'earliest' } });
                try {
                    assert.equal(s.status, 200);
                    const want = new Map(acked.map((a) => [a.id, a.data]));
                    const missing = () => {
                        const have = new Set(s.events.map((e) => e.id));
                        return [...want.keys()].filter((id) => !have.has(id));
                    };
                    await waitUntil(() => missing().length === 0 || s.ended, {
                        ms: 15000, what: `round ${round}: the ${want.size} acknowledged events in the replay`,
                        describe: () => `${s.events.length} replayed, missing ${missing().slice(0, 10).join(', ')}`,
                    }).catch(() => {});
                    const miss = missing();
                    assert.deepEqual(miss.map((id) => `${id} (${want.get(id)})`), [],
                        `round ${round}: ${miss.length} of ${want.size} acknowledged publishes are not in the store after restart`);
                    for (const e of s.events) {
                        if (want.has(e.id)) assert.equal(e.data, want.get(e.id), `round ${round}: event ${e.id} data`);
                    }
                } finally {
                    s.close();
                }
            } finally {
                const code2 = await hub2.stop();
                assert.equal(code2, 0, `round ${round}: the restarted herald exited with ${code2}`);
            }
        }
    });
});

// A raw subscriber: resolves `ended` with how the stream ended ('end' = FIN, or the error).
function rawSubscriber(port, topic) {
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    let error = null;
    let gotEnd = false;
    const ended = new Promise((resolve) => {
        sock.on('end', () => { gotEnd = true; });
        sock.on('close', () => resolve({ fin: gotEnd, error, raw }));
    });
    sock.on('error', (e) => { error = e.code ?? e.message; });
    sock.on('data', (d) => { raw += d.toString('latin1'); });
    sock.on('connect', () => sock.write(`GET ${eventsPath([topic])} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
    return { sock, ended, get raw() { return raw; } };
}

describe('SIGTERM and open streams, half-sent requests', () => {
    test('a subscriber open at SIGTERM sees its stream end cleanly (FIN, not reset)', T, async () => {
        for (let round = 1; round <= 3; round++) {
            const hub = await startHerald({});
            const topic = uniqueTopic('sd-stream');
            const subs = Array.from({ length: 4 }, () => rawSubscriber(hub.port, topic));
            try {
                await waitUntil(() => subs.every((s) => /\r\n\r\nretry:[^\n]*\n/.test(s.raw)), {
                    ms: 5000, what: `round ${round}: 4 streams to open`,
                });
                const code = await withTimeout(hub.stop('SIGTERM'), 10000, `round ${round}: herald to exit after SIGTERM`);
                assert.equal(code, 0, `round ${round}: herald exited with ${code}`);
                const ends = await withTimeout(Promise.all(subs.map((s) => s.ended)), 5000, `round ${round}: the streams to end`);
                ends.forEach((e, i) => {
                    assert.equal(e.error, null, `round ${round}: stream ${i} ended with ${e.error}, not a clean end`);
                    assert.equal(e.fin, true, `round ${round}: stream ${i} closed without a FIN`);
                    const head = parseHttpResponse(e.raw, { closed: true });
                    assert.equal(head?.status, 200, `round ${round}: stream ${i} head ${JSON.stringify(e.raw.slice(0, 100))}`);
                    if (/chunked/i.test(head.headers['transfer-encoding'] ?? '')) {
                        assert.equal(head.complete, true, `round ${round}: stream ${i}: chunked body without its last chunk`);
                    }
                });
            } finally {
                for (const s of subs) s.sock.destroy();
                if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill('SIGKILL');
            }
        }
    });

    test('a request with half its headers in at SIGTERM is answered, not reset', T, async () => {
        for (let round = 1; round <= 3; round++) {
            const hub = await startHerald({});
            const topic = uniqueTopic('sd-half');
            const req = publishRequest(topic, `half-${round}`);
            const cut = req.indexOf('Content-Type');
            const sock = net.connect(hub.port, '127.0.0.1');
            sock.setNoDelay(true);
            let raw = '';
            let error = null;
            const closed = new Promise((resolve) => sock.on('close', resolve));
            sock.on('data', (d) => { raw += d.toString('latin1'); });
            sock.on('error', (e) => { error = e.code ?? e.message; });
            try {
                await new Promise((resolve) => sock.on('connect', resolve));
                await new Promise((resolve) => sock.write(req.slice(0, cut), resolve));
                await sleep(100); // the hub has read the first half
                const stopped = hub.stop('SIGTERM');
                await sleep(100);
                sock.write(req.slice(cut));
                const got = await waitUntil(() => {
                    const r = parseHttpResponse(raw, { closed: false });
                    return (r && r.complete) || error ? true : null;
                }, { ms: 5000, what: `round ${round}: an answer to the half-sent request` }).catch((e) => e);
                const r = parseHttpResponse(raw, { closed: false });
                assert.ok(r && r.complete, `round ${round}: no answer (error ${error}; ${got instanceof Error ? got.message : ''}); got ${JSON.stringify(raw.slice(0, 200))}`);
                const p = checkAnswer(r);
                assert.equal(p, null, `round ${round}: ${p}`);
                await withTimeout(closed.then(() => {}), 5000, `round ${round}: the hub to close the connection`).catch(() => {});
                assert.equal(error, null, `round ${round}: the connection was reset (${error}) after the answer`);
                const code = await withTimeout(stopped, 10000, `round ${round}: herald to exit`);
                assert.equal(code, 0, `round ${round}: herald exited with ${code}`);
            } finally {
                sock.destroy();
                if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill('SIGKILL');
            }
        }
    });
});
