// Helpers for the durable-store suites (sqlite.test.mjs, sqlite_faults.test.mjs): herald
// started on a SQLite file with a clean store/history environment, a start that must be
// refused, free ports for restarts on the same address, keep-alive publishers, reading a
// topic's whole history, /topics figures, and small tmpfs mounts (full and read-only disks).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { HERALD_BIN, request } from './harness.mjs';
import { cleanEnv } from './auth.mjs';
import { formBody, requestWith, spawnHerald, subscribe, uniqueTopic, waitUntil } from './util.mjs';

// ---------------------------------------------------------------------------------------
// Environment and processes.

// cleanEnv() plus every inherited HERALD_STORE_* / HERALD_HISTORY_* / HERALD_SERVER_* unset,
// so that only what a test sets decides the store, the retention and the timings.
export function storeEnv(extra = {}) {
    const env = cleanEnv();
    for (const k of Object.keys(process.env)) {
        if (/^HERALD_(STORE|HISTORY|SERVER)_/.test(k) || k === 'PORT') env[k] = undefined;
    }
    return { ...env, ...extra };
}

export function makeTempDir(prefix = 'herald-store-') {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir) {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

// A loopback port that was free a moment ago (bound to 0, then released).
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// The argv of `herald serve` on `db` (a path; `sqlite:` is prepended).
export function serveArgs(db, { port = 0, threads = 2, args = [] } = {}) {
    return ['serve', '--host', '127.0.0.1', '--port', String(port), '--threads', String(threads),
        '--store', `sqlite:${db}`, ...args];
}

// Starts herald on the SQLite file `db`; resolves once it listens (see spawnHerald).
export function startStore(db, { env = {}, port = 0, threads = 2, args = [] } = {}) {
    return spawnHerald(serveArgs(db, { port, threads, args }), { env: storeEnv(env) });
}

// Stops `h` with SIGTERM and asserts a clean exit (status 0) within `ms`.
export async function stopClean(h, what = 'herald', ms = 10000) {
    let timer;
    const code = await Promise.race([
        h.stop('SIGTERM'),
        new Promise((resolve) => { timer = setTimeout(() => resolve('still running'), ms); }),
    ]).finally(() => clearTimeout(timer));
    if (code === 'still running') {
        h.proc.kill('SIGKILL');
        assert.fail(`${what} did not exit within ${ms} ms of SIGTERM:\n${h.output().slice(-3000)}`);
    }
    assert.equal(code, 0, `${what} exited with ${code} on SIGTERM:\n${h.output().slice(-3000)}`);
}

// Kills `h` with SIGKILL (if still running) and waits for it to be gone.
export async function kill9(h) {
    if (!h) return;
    await h.stop('SIGKILL').catch(() => {});
}

// Runs herald with `argv` expecting it to refuse to start. Resolves to { code, output }
// once it exits; if it starts listening instead, it is killed and the test fails with its
// output. `ms` bounds the wait.
export function expectRefusal(argv, { env = {}, ms = 15000 } = {}) {
    return new Promise((resolve, reject) => {
        const proc = spawn(HERALD_BIN, argv, { env: storeEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let verdict = null;
        const timer = setTimeout(() => {
            verdict = `did not exit within ${ms} ms`;
            proc.kill('SIGKILL');
        }, ms);
        const check = () => {
            if (!verdict && /listening on http:\/\//.test(out)) {
                verdict = 'started listening instead of refusing';
                proc.kill('SIGKILL');
            }
        };
        proc.stdout.on('data', (d) => { out += d; check(); });
        proc.stderr.on('data', (d) => { out += d; check(); });
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        proc.on('close', (code, sig) => {
            clearTimeout(timer);
            if (verdict) {
                reject(new Error(`herald ${argv.join(' ')} ${verdict}:\n${out}`));
            } else {
                resolve({ code: code ?? sig, output: out });
            }
        });
    });
}

// Asserts that a refused start exited non-zero and said every one of `patterns`
// (strings are looked for literally, RegExps matched).
export function assertRefused(r, patterns, what) {
    assert.ok(r.code !== 0 && r.code !== null,
        `${what}: herald exited with status ${r.code}, expected a non-zero status; output:\n${r.output}`);
    assert.equal(typeof r.code, 'number', `${what}: herald died of signal ${r.code} instead of exiting; output:\n${r.output}`);
    for (const p of patterns) {
        if (p instanceof RegExp) {
            assert.match(r.output, p, `${what}: the refusal does not match ${p}; output:\n${r.output}`);
        } else {
            assert.ok(r.output.includes(p), `${what}: the refusal does not name ${JSON.stringify(p)}; output:\n${r.output}`);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Publishing and reading.

// A publisher on one keep-alive connection: post(fields) resolves to { status, body, id }.
export function keepAlivePublisher(base) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    return {
        agent,
        async post(fields) {
            const res = await requestWith(`${base}/events`, {
                agent,
                method: 'POST',
                headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
                body: formBody(fields),
            });
            return { ...res, id: res.body.replace(/\r?\n$/, '') };
        },
        close() { agent.destroy(); },
    };
}

// Opens a stream on `topics` resuming from `from` (an id or 'earliest'), publishes
// `sentinel` (data) and reads until it arrives. The sentinel goes to `sentinelTopic` when
// given (it must be one the stream follows), else to a fresh topic added to the stream, so
// that it changes nothing in the history of `topics`. Returns { header (the response's
// Last-Event-ID), events (those before the sentinel), sentinel (the event) }.
export async function readUpToSentinel(base, topics, { from = 'earliest', sentinelTopic = null, sentinel = `sentinel-${Date.now()}`, ms = 30000 } = {}) {
    const target = sentinelTopic ?? uniqueTopic('sentinel');
    const follow = sentinelTopic ? topics : [...topics, target];
    const s = await subscribe(base, follow, { headers: { 'Last-Event-ID': from } });
    try {
        const id = await publish1(base, { topic: target, data: sentinel });
        const find = () => s.events.findIndex((e) => e.data === sentinel);
        await s.waitFor(0, ms, () => find() >= 0 || s.ended).catch(() => {});
        const i = find();
        assert.ok(i >= 0, `the sentinel did not arrive within ${ms} ms (ended=${s.ended}); ` +
            `${s.events.length} events came before it, the last: ${JSON.stringify(s.events.slice(-3))}`);
        assert.equal(s.events[i].id, id, 'the sentinel arrived with another id than its publish answered');
        return { header: s.headers['last-event-id'], events: s.events.slice(0, i), sentinel: s.events[i] };
    } finally {
        s.close();
    }
}

async function publish1(base, fields) {
    const res = await request(`${base}/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: formBody(fields),
    });
    assert.equal(res.status, 200, `publish ${JSON.stringify(fields).slice(0, 200)} -> ${res.status} ${res.body}`);
    return res.body.replace(/\r?\n$/, '');
}

// The /topics entry of `topic` (undefined when it is not listed).
export async function topicInfo(base, topic) {
    // /topics comes in pages: the topic is the first of those it prefixes.
    const r = await request(`${base}/topics?limit=1&prefix=${encodeURIComponent(topic)}`);
    assert.equal(r.status, 200, `/topics answered ${r.status}: ${r.body}`);
    const body = JSON.parse(r.body);
    assert.ok(Array.isArray(body.topics), `/topics has no "topics" array: ${r.body}`);
    return body.topics.find((t) => t.topic === topic);
}

// Waits until /topics reports `retained` for `topic` (absent counts as 0).
export async function waitRetained(base, topic, retained, ms = 5000) {
    let last;
    await waitUntil(async () => {
        last = await topicInfo(base, topic);
        return (last?.retained ?? 0) === retained;
    }, { ms, every: 50, what: `/topics to report ${retained} retained on ${topic}`, describe: () => JSON.stringify(last) });
    return last;
}

// Event ids the hub assigns: decimal integers, compared exactly.
export function numericId(id, what = 'id') {
    assert.match(String(id), /^\d+$/, `${what} ${JSON.stringify(id)} is not a decimal integer`);
    return BigInt(id);
}

// Asserts that the ids of `events` (or strings) are strictly increasing decimal integers.
export function assertIncreasing(ids, what) {
    let prev = null;
    for (let i = 0; i < ids.length; i++) {
        const v = numericId(ids[i], `${what}[${i}]`);
        if (prev !== null && v <= prev) {
            assert.fail(`${what}: id ${ids[i]} at index ${i} does not follow ${ids[i - 1]} ` +
                `(context ${JSON.stringify(ids.slice(Math.max(0, i - 3), i + 2))})`);
        }
        prev = v;
    }
}

// Compares two sequences and fails at the first difference, with context.
export function assertSameSequence(actual, expected, label) {
    const n = Math.max(actual.length, expected.length);
    for (let i = 0; i < n; i++) {
        if (actual[i] !== expected[i]) {
            assert.fail(`${label}: first difference at index ${i} (got ${actual.length} items, expected ${expected.length}): ` +
                `got ${JSON.stringify(actual.slice(Math.max(0, i - 2), i + 3))}, ` +
                `expected ${JSON.stringify(expected.slice(Math.max(0, i - 2), i + 3))}`);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mounts (root only): small tmpfs file systems for full-disk and read-only cases.

function run(cmd, args) {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

// Why mounting a tmpfs is not possible here, or null when it is (probed once).
let mountProbe;
export function mountUnavailable() {
    if (mountProbe !== undefined) return mountProbe;
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
        mountProbe = 'the tests need root to mount a small tmpfs';
        return mountProbe;
    }
    const dir = makeTempDir('herald-mount-probe-');
    try {
        run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
        unmount(dir);
        mountProbe = null;
    } catch (e) {
        mountProbe = `mount -t tmpfs is not permitted here: ${String(e.stderr || e.message).trim()}`;
    }
    removeDir(dir);
    return mountProbe;
}

export function mountTmpfs(dir, size = '4m') {
    run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
}

export function remountReadOnly(dir) {
    run('mount', ['-o', 'remount,ro', dir]);
}

// Whether `dir` is a mount point right now.
export function isMounted(dir) {
    const real = fs.realpathSync(dir);
    return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')
        .some((line) => line.split(' ')[1] === real);
}

// Unmounts `dir`; falls back to a lazy unmount when it is busy. Never throws.
export function unmount(dir) {
    try {
        if (!isMounted(dir)) return;
    } catch {
        return;
    }
    try {
        run('umount', [dir]);
    } catch {
        try { run('umount', ['-l', dir]); } catch { /* nothing more to do */ }
    }
}

// Writes zeros to `file` until the file system is full (ENOSPC). Returns the bytes written.
export function fillDisk(file) {
    const fd = fs.openSync(file, 'w');
    const block = Buffer.alloc(64 * 1024);
    let written = 0;
    try {
        for (;;) {
            try {
                written += fs.writeSync(fd, block);
            } catch (e) {
                if (e.code !== 'ENOSPC') throw e;
                // The last partial block: fill what room is left byte-ranges at a time.
                let chunk = block.length >> 1;
                while (chunk >= 512) {
                    try { written += fs.writeSync(fd, block.subarray(0, chunk)); } catch (e2) {
                        if (e2.code !== 'ENOSPC') throw e2;
                        chunk >>= 1;
                    }
                }
                break;
            }
        }
    } finally {
        fs.closeSync(fd);
    }
    return written;
}

// What a test file made (herald processes, temp folders, mounts), undone in reverse order
// after the file's tests, even when they fail. Returns { cleanup, tempDir, start }.
export function cleanupScope() {
    const cleanup = [];
    after(async () => {
        for (const fn of cleanup.reverse()) {
            try { await fn(); } catch { /* best effort */ }
        }
    });
    const tempDir = (prefix) => {
        const dir = makeTempDir(prefix);
        cleanup.push(() => removeDir(dir));
        return dir;
    };
    const start = async (db, opts) => {
        const h = await startStore(db, opts);
        cleanup.push(() => kill9(h));
        return h;
    };
    return { cleanup, tempDir, start };
}
