// Helpers for the cluster suites (cluster.test.mjs, cluster_faults.test.mjs): a real
// redis-server started in a temporary folder on a free loopback port (stopped, killed,
// frozen with SIGSTOP, restarted on the same port and folder), a tiny RESP client to talk to
// it, a TCP proxy that can cut one herald node off its Redis while the others go on, and
// herald nodes started on a `redis://` store with a clean environment.
//
// The RESP client is written here rather than taken from npm: the suites need five commands
// (PING, INFO, CONFIG, FLUSHALL, CLIENT KILL) on a socket they control, and a client library
// would add reconnection and queuing logic that hides exactly what these tests provoke.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after } from 'node:test';
import { request } from './harness.mjs';
import { spawnHerald, waitUntil } from './util.mjs';
import { freePort, kill9, makeTempDir, removeDir, storeEnv } from './store.mjs';

export const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';

// ---------------------------------------------------------------------------------------
// RESP (REdis Serialization Protocol, version 2).

// A command as RESP: an array of bulk strings.
export function encodeCommand(args) {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
        const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
        parts.push(`$${b.length}\r\n`, b, '\r\n');
    }
    return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}

// An error reply from Redis (`-ERR ...`), as a value: the parser never throws it.
export class RedisError extends Error {
    constructor(message) {
        super(message);
        this.name = 'RedisError';
    }
}

// Parses one reply at `pos` of `buf`. Returns { value, end } or null while incomplete.
// Simple strings and bulk strings become JS strings, integers numbers, nil null, errors
// RedisError objects, arrays arrays.
export function parseReply(buf, pos = 0) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const kind = String.fromCharCode(buf[pos]);
    const line = buf.toString('utf8', pos + 1, eol);
    const next = eol + 2;
    switch (kind) {
        case '+': return { value: line, end: next };
        case '-': return { value: new RedisError(line), end: next };
        case ':': return { value: Number(line), end: next };
        case '$': {
            const len = Number(line);
            if (len < 0) return { value: null, end: next };
            if (buf.length < next + len + 2) return null;
            return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
        }
        case '*': {
            const n = Number(line);
            if (n < 0) return { value: null, end: next };
            const items = [];
            let at = next;
            for (let i = 0; i < n; i++) {
                const r = parseReply(buf, at);
                if (!r) return null;
                items.push(r.value);
                at = r.end;
            }
            return { value: items, end: at };
        }
        default:
            throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('latin1', pos, Math.min(buf.length, pos + 80)))}`);
    }
}

// Sends `commands` (arrays of arguments) on a new connection to 127.0.0.1:`port` (AUTH
// first when `password` is given) and resolves to their replies, in order, error replies
// included as RedisError values. Rejects when the connection fails or no complete answer
// came within `ms`.
export function redisCommands(port, commands, { password, ms = 2000 } = {}) {
    const all = password !== undefined ? [['AUTH', password], ...commands] : commands;
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = Buffer.alloc(0);
        let done = false;
        const finish = (err, value) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolve(value);
        };
        const timer = setTimeout(() => finish(new Error(`Redis on port ${port} gave no complete answer to ` +
            `${commands.map((c) => c[0]).join(', ')} within ${ms} ms`)), ms);
        sock.on('connect', () => sock.write(Buffer.concat(all.map(encodeCommand))));
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            const replies = [];
            let at = 0;
            try {
                while (replies.length < all.length) {
                    const r = parseReply(buf, at);
                    if (!r) return;
                    replies.push(r.value);
                    at = r.end;
                }
            } catch (e) {
                finish(e);
                return;
            }
            if (password !== undefined && replies[0] instanceof RedisError) {
                finish(new RedisError(`AUTH refused: ${replies[0].message}`));
                return;
            }
            finish(null, password !== undefined ? replies.slice(1) : replies);
        });
        sock.on('error', (e) => finish(e));
        sock.on('close', () => finish(new Error(`Redis on port ${port} closed the connection before answering`)));
    });
}

// One command; an error reply rejects.
export async function redisCommand(port, args, opts = {}) {
    const [reply] = await redisCommands(port, [args], opts);
    if (reply instanceof RedisError) throw reply;
    return reply;
}

// INFO text as { key: value }.
export function parseInfo(text) {
    const out = {};
    for (const line of String(text).split('\r\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.indexOf(':');
        if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// redis-server.

// Whether redis-server can be run here (null) or why not.
export function redisUnavailable() {
    try {
        fs.accessSync(REDIS_SERVER, fs.constants.X_OK);
        return null;
    } catch {
        return `${REDIS_SERVER} is not installed (apt-get install redis-server, or set REDIS_SERVER)`;
    }
}

// Starts redis-server on 127.0.0.1 in `dir` (a new temporary folder when not given), on
// `port` (a free one when 0) and resolves once it answers PING. `appendonly`: AOF with
// fsync on every write; `password`: requirepass. Returns a handle:
//   port, dir, password, url(db = 0, { password }) -> 'redis://...'
//   command(...args), commands([...]), info(section)
//   stop() (SIGTERM, waits), kill9(), pause() (SIGSTOP), resume() (SIGCONT)
//   restart() (a new process, same port, folder and settings), running, output()
export async function startRedis({ port = 0, dir = null, appendonly = false, password, startMs = 10000 } = {}) {
    const why = redisUnavailable();
    assert.ok(!why, why);
    const ownDir = !dir;
    const folder = dir ?? makeTempDir('herald-redis-');
    const thePort = port || await freePort();
    const args = ['--port', String(thePort), '--bind', '127.0.0.1', '--save', '', '--appendonly', appendonly ? 'yes' : 'no',
        '--appendfsync', 'always', '--dir', folder, '--daemonize', 'no', '--protected-mode', 'no', '--logfile', ''];
    if (password !== undefined) args.push('--requirepass', password);

    let proc = null;
    let out = '';
    let exited = null;
    let stopped = false; // SIGSTOPped

    const auth = password !== undefined ? { password } : {};
    const spawnOne = async () => {
        out += `--- redis-server ${args.join(' ')}\n`;
        const p = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        proc = p;
        stopped = false;
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        exited = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code ?? sig)));
        let gone = null;
        exited.then((c) => { gone = c; });
        p.on('error', (e) => { out += `spawn error: ${e.message}\n`; });
        await waitUntil(async () => {
            if (gone !== null) throw new Error(`redis-server exited (${gone}) before answering PING:\n${out}`);
            try {
                return (await redisCommand(thePort, ['PING'], { ...auth, ms: 500 })) === 'PONG';
            } catch {
                return false;
            }
        }, { ms: startMs, every: 25, what: `redis-server on port ${thePort} to answer PING`, describe: () => out.slice(-2000) });
    };
    await spawnOne();

    const handle = {
        port: thePort,
        dir: folder,
        password,
        get proc() { return proc; },
        get running() { return proc !== null && proc.exitCode === null && proc.signalCode === null; },
        output: () => out,
        // The URL a herald node is given: redis://[:PASSWORD@]127.0.0.1:PORT/DB (the
        // server's password unless another is given; `password: null`: none).
        url(db = 0, { password: pw = password, port: p = thePort } = {}) {
            const cred = pw !== undefined && pw !== null ? `:${encodeURIComponent(pw)}@` : '';
            return `redis://${cred}127.0.0.1:${p}/${db}`;
        },
        command: (...a) => redisCommand(thePort, a, auth),
        commands: (cmds, opts = {}) => redisCommands(thePort, cmds, { ...auth, ...opts }),
        async info(section = '') {
            return parseInfo(await redisCommand(thePort, section ? ['INFO', section] : ['INFO'], auth));
        },
        // SIGTERM (after SIGCONT when frozen) and waits for the exit; returns the status.
        async stop(ms = 10000) {
            if (!handle.running) return proc?.exitCode ?? proc?.signalCode;
            if (stopped) handle.resume();
            proc.kill('SIGTERM');
            let timer;
            const r = await Promise.race([exited, new Promise((res) => { timer = setTimeout(() => res('timeout'), ms); })])
                .finally(() => clearTimeout(timer));
            if (r === 'timeout') {
                proc.kill('SIGKILL');
                await exited;
                assert.fail(`redis-server did not exit within ${ms} ms of SIGTERM:\n${out.slice(-2000)}`);
            }
            return r;
        },
        async kill9() {
            if (!handle.running) return;
            proc.kill('SIGKILL');
            await exited;
            stopped = false;
        },
        pause() {
            assert.ok(handle.running, 'redis-server is not running');
            proc.kill('SIGSTOP');
            stopped = true;
        },
        resume() {
            if (handle.running) proc.kill('SIGCONT');
            stopped = false;
        },
        // A new redis-server on the same port and folder (the AOF, when on, is read back).
        async restart() {
            assert.ok(!handle.running, 'restart() of a redis-server that still runs');
            await spawnOne();
        },
        async cleanup() {
            await handle.kill9().catch(() => {});
            if (ownDir) removeDir(folder);
        },
    };
    return handle;
}

// ---------------------------------------------------------------------------------------
// A TCP proxy between one herald node and Redis.

// Listens on a free loopback port and forwards each connection to 127.0.0.1:`targetPort`.
//   cut({ mode }) cuts the node off:
//     'refuse'    (default) every open connection is reset and the port stops listening:
//                 new connections are refused (ECONNREFUSED);
//     'blackhole' open connections stay open but nothing goes through either way, and new
//                 ones are accepted and hang: what a partition looks like to the node.
//   restore() lets connections through again (connections held in a blackhole are reset
//   then, as a partition long enough to time out leaves them: nothing queued during the
//   cut reaches Redis afterwards).
//   close() ends everything.
export async function startProxy(targetPort, { port = 0 } = {}) {
    const pairs = new Set(); // { client, upstream }
    let mode = null; // null: forwarding
    let listening = false;
    const thePort = port || await freePort();

    const link = (client) => {
        const pair = { client, upstream: null };
        pairs.add(pair);
        const drop = () => {
            pairs.delete(pair);
            client.destroy();
            pair.upstream?.destroy();
        };
        client.on('error', drop);
        client.on('close', drop);
        if (mode === 'blackhole') {
            // Held: never read, never answered.
            client.pause();
            pair.held = true;
            return;
        }
        if (mode === 'refuse') {
            client.resetAndDestroy();
            return;
        }
        const upstream = net.connect(targetPort, '127.0.0.1');
        pair.upstream = upstream;
        upstream.on('error', drop);
        upstream.on('close', drop);
        client.pipe(upstream);
        upstream.pipe(client);
    };
    const server = net.createServer({ pauseOnConnect: false }, link);
    server.on('error', () => {});
    const listen = () => new Promise((resolve, reject) => {
        const onError = (e) => reject(e);
        server.once('error', onError);
        server.listen(thePort, '127.0.0.1', () => {
            server.off('error', onError);
            listening = true;
            resolve();
        });
    });
    await listen();

    const proxy = {
        port: thePort,
        get cutMode() { return mode; },
        connections: () => pairs.size,
        async cut({ mode: m = 'refuse' } = {}) {
            assert.ok(m === 'refuse' || m === 'blackhole', `unknown cut mode ${m}`);
            mode = m;
            if (m === 'refuse') {
                // close() stops listening at once but calls back only once every
                // connection is gone: reset them before waiting.
                const closed = listening ? new Promise((resolve) => server.close(() => resolve())) : null;
                listening = false;
                for (const p of [...pairs]) {
                    p.client.resetAndDestroy();
                    p.upstream?.destroy();
                    pairs.delete(p);
                }
                await closed;
            } else {
                for (const p of pairs) {
                    p.held = true;
                    p.client.unpipe();
                    p.upstream?.unpipe();
                    p.client.pause();
                    p.upstream?.pause();
                }
            }
        },
        async restore() {
            const was = mode;
            mode = null;
            if (was === 'blackhole') {
                for (const p of [...pairs]) {
                    if (!p.held) continue;
                    p.client.resetAndDestroy();
                    p.upstream?.destroy();
                    pairs.delete(p);
                }
            }
            if (!listening) {
                // The port was released by cut(): take it again (briefly retried, should
                // anything have grabbed it meanwhile).
                await waitUntil(async () => {
                    try {
                        await listen();
                        return true;
                    } catch {
                        return false;
                    }
                }, { ms: 5000, every: 50, what: `the proxy to listen again on port ${thePort}` });
            }
        },
        async close() {
            mode = 'refuse';
            const closed = listening ? new Promise((resolve) => server.close(() => resolve())) : null;
            listening = false;
            for (const p of [...pairs]) {
                p.client.destroy();
                p.upstream?.destroy();
            }
            pairs.clear();
            await closed;
        },
    };
    return proxy;
}

// ---------------------------------------------------------------------------------------
// herald nodes.

// storeEnv() plus every inherited HERALD_CLUSTER_* unset: only what a test sets decides the
// store, the node's name, the retention and the timings.
export function clusterEnv(extra = {}) {
    const env = storeEnv();
    for (const k of Object.keys(process.env)) {
        if (/^HERALD_(CLUSTER|STORE|HISTORY|SERVER)_/.test(k)) env[k] = undefined;
    }
    return { ...env, ...extra };
}

// The argv of `herald serve` as a node of the cluster on `url`.
export function nodeArgs(url, { name, port = 0, threads = 2, args = [] } = {}) {
    const argv = ['serve', '--host', '127.0.0.1', '--port', String(port), '--threads', String(threads), '--store', url];
    if (name) argv.push('--node-name', name);
    return [...argv, ...args];
}

// Starts a herald node on the Redis URL `url`; resolves once it listens:
// { port, url, proc, output(), stop(signal), name, redisUrl }.
export async function startNode(url, { name, env = {}, port = 0, threads = 2, args = [], startMs = 15000 } = {}) {
    const h = await spawnHerald(nodeArgs(url, { name, port, threads, args }), { env: clusterEnv(env), startMs });
    return { ...h, name, redisUrl: url };
}

// Waits until `/readyz` of `base` answers `status` (200 or 503); returns the last response.
export async function waitReady(base, status = 200, ms = 15000) {
    let last;
    await waitUntil(async () => {
        try {
            last = await request(`${base}/readyz`);
        } catch (e) {
            last = { status: `error ${e.code || e.message}` };
        }
        return last.status === status;
    }, { ms, every: 50, what: `${base}/readyz to answer ${status}`, describe: () => `${last?.status} ${last?.body ?? ''}` });
    return last;
}

// What a cluster test file makes (Redis servers, proxies, herald nodes, temporary folders),
// undone in reverse order after the file's tests, even when they fail:
// { cleanup, tempDir, redis(opts), proxy(port), node(url, opts) }.
export function clusterScope() {
    const cleanup = [];
    after(async () => {
        for (const fn of cleanup.reverse()) {
            try { await fn(); } catch { /* best effort */ }
        }
    });
    return {
        cleanup,
        tempDir(prefix = 'herald-cluster-') {
            const dir = makeTempDir(prefix);
            cleanup.push(() => removeDir(dir));
            return dir;
        },
        async redis(opts = {}) {
            const r = await startRedis(opts);
            cleanup.push(() => r.cleanup());
            return r;
        },
        async proxy(targetPort, opts = {}) {
            const p = await startProxy(targetPort, opts);
            cleanup.push(() => p.close());
            return p;
        },
        async node(url, opts = {}) {
            const h = await startNode(url, opts);
            cleanup.push(() => kill9(h));
            return h;
        },
    };
}

// The path of Redis's append-only files under `dir` (Redis 7: a folder of them).
export function aofPath(dir) {
    return path.join(dir, 'appendonlydir');
}
