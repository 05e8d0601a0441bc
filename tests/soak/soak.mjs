// The soak: mixed load on a herald for a configurable time (make soak; see tests/soak/README.md).
//
//   node tests/soak/soak.mjs sqlite     one herald on a SQLite file
//   node tests/soak/soak.mjs cluster    two herald nodes on one redis-server (AOF, fsync always),
//                                       Redis restarted twice along the way
//
// Load: churning subscribers that resume with Last-Event-ID (checked for gaps, duplicates and
// order against every acknowledged publish), publishers on hundreds of topics (some events on
// two topics), slow readers that herald must cut, and a stream of bad requests each expecting
// its documented status, all with auth on. One line of figures a minute. After a warm-up the
// load stops, the hub settles and its RSS and open files are taken as the baseline; the load
// then runs to the end, stops, and both must come back to the baseline; finally every topic is
// replayed from the start and compared with what was acknowledged. Exit status 1 on any failure.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { SseParser, sleep } from '../integration/lib/harness.mjs';
import { freePort, makeTempDir, removeDir } from '../integration/lib/store.mjs';
import { claims, signHS256, tamperSignature, tokenEntry, writeConfig } from '../integration/lib/auth.mjs';
import { startRedis } from '../integration/lib/redis.mjs';
import { rawRequest, waitUntil } from '../integration/lib/util.mjs';

// ---------------------------------------------------------------------------------------
// Knobs.

const MODE = process.argv[2] || process.env.SOAK_STORE || 'sqlite';
if (!['sqlite', 'cluster'].includes(MODE)) {
    console.error(`soak: unknown mode ${JSON.stringify(MODE)} (sqlite or cluster)`);
    process.exit(2);
}
const num = (name, dflt) => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
        console.error(`soak: ${name}=${JSON.stringify(v)} is not a non-negative number`);
        process.exit(2);
    }
    return n;
};
const MINUTES = num('SOAK_MINUTES', 60);
const TOTAL_MS = MINUTES * 60_000;
// The warm-up ends with the baseline: a tenth of the run, at least 30 s, at most 5 min.
const WARMUP_MS = num('SOAK_WARMUP_MINUTES', Math.min(5, Math.max(0.5, MINUTES / 10))) * 60_000;
const SUBSCRIBERS = num('SOAK_SUBSCRIBERS', 200);
const GROUPS = num('SOAK_GROUPS', 10);
const TOPICS_PER_GROUP = Math.max(1, Math.round(num('SOAK_TOPICS', 300) / GROUPS));
const RATE = num('SOAK_RATE', 40); // publishes a second on the group topics
const PUBLISHERS = num('SOAK_PUBLISHERS', 8);
const SLOW = num('SOAK_SLOW', 4); // slow readers at once
const BAD_PER_S = num('SOAK_BAD_RATE', 2);
const BULK_FILL = num('SOAK_BULK_EVENTS', 2000); // 2 KiB events on the bulk topic before the load
const RSS_SLACK_MB = num('SOAK_RSS_SLACK_MB', 32);
const RSS_SLACK_PCT = num('SOAK_RSS_SLACK_PCT', 50);
const FD_SLACK = num('SOAK_FD_SLACK', 0);
const HEAP_SLACK_MB = num('SOAK_HEAP_SLACK_MB', 4);
const HEAP_SLACK_PCT = num('SOAK_HEAP_SLACK_PCT', 20);
const TRIMMED_SLACK_MB = num('SOAK_TRIMMED_RSS_SLACK_MB', 12);
const TRIMMED_SLACK_PCT = num('SOAK_TRIMMED_RSS_SLACK_PCT', 40);
const THREADS = num('SOAK_THREADS', 2);
const REDIS_DOWN_MS = num('SOAK_REDIS_DOWN_SECONDS', 5) * 1000;
const HERALD_BIN = process.env.HERALD_BIN || new URL('../../build/release/herald', import.meta.url).pathname;
const LOG_FILE = process.env.SOAK_LOG || '';
const KEEP = process.env.SOAK_KEEP === '1';

const TAG = `[soak ${MODE}]`;
const started = Date.now();
const elapsed = () => {
    const s = Math.floor((Date.now() - started) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
let logStream = null;
function say(line) {
    const text = `${TAG} ${elapsed()} ${line}`;
    console.log(text);
    if (logStream) logStream.write(`${text}\n`);
}

// ---------------------------------------------------------------------------------------
// Topics, tokens.

const ORIGIN = 'https://soak.example';
const groupTopic = (g, i) => `${ORIGIN}/g${g}/t${i}`;
const groupTemplate = (g) => `${ORIGIN}/g${g}/{t}`;
const BULK = `${ORIGIN}/bulk/b0`;
const MISC = `${ORIGIN}/misc/split`;
const SENTINEL = `${ORIGIN}/final/sentinel`;
const GROUP_TOPICS = Array.from({ length: GROUPS }, (_, g) => Array.from({ length: TOPICS_PER_GROUP }, (_, i) => groupTopic(g, i)));
const ALL_TOPICS = [...GROUP_TOPICS.flat(), BULK, MISC];

const rnd = (n) => Math.floor(Math.random() * n);
const pick = (a) => a[rnd(a.length)];
const chance = (p) => Math.random() < p;
const secret = () => crypto.randomBytes(18).toString('base64url');

const TOKENS = {
    publisher: `pub-${secret()}`,
    admin: `admin-${secret()}`,
    slow: `slow-${secret()}`,
    group: Array.from({ length: GROUPS }, (_, g) => `g${g}-${secret()}`),
};
const JWT_SECRET = crypto.randomBytes(40).toString('hex');
const groupJwt = (g) => signHS256(claims({ subscribe: [groupTemplate(g), BULK] }), JWT_SECRET);

function writeHeraldConfig(dir) {
    const everything = [...GROUP_TOPICS.map((_, g) => groupTemplate(g)), BULK, MISC, SENTINEL];
    return writeConfig(dir, 'herald.toml', {
        auth: {
            jwt_secret: JWT_SECRET,
            tokens: [
                tokenEntry(TOKENS.publisher, { publish: everything }),
                tokenEntry(TOKENS.admin, { subscribe: everything, publish: everything, admin: true }),
                tokenEntry(TOKENS.slow, { subscribe: [BULK] }),
                ...TOKENS.group.map((t, g) => tokenEntry(t, { subscribe: [groupTemplate(g), BULK] })),
            ],
        },
    });
}

// History bounds far above what the run publishes, so the final replay must hold every
// acknowledged event; a small store.cache_events so that the memory the store keeps for
// replays is full after the warm-up and RSS can be compared.
const HERALD_ENV = {
    HERALD_HISTORY_MAX_EVENTS: '10000000',
    HERALD_HISTORY_MAX_BYTES: '4000000000',
    HERALD_HISTORY_MAX_AGE_SECONDS: '0',
    HERALD_HISTORY_MAX_TOPICS: '0',
    HERALD_HISTORY_MAX_TOTAL_BYTES: '0',
    HERALD_STORE_CACHE_EVENTS: '8',
    HERALD_SERVER_REQUEST_TIMEOUT_SECONDS: '3',
    HERALD_SERVER_MAX_BODY_BYTES: '65536',
    HERALD_SERVER_WRITE_TIMEOUT_SECONDS: '20',
    HERALD_LOG_LEVEL: 'warn',
};

// ---------------------------------------------------------------------------------------
// Figures and failures.

const counts = {
    published: 0, acked: 0, refused: 0, pubNetErr: 0, pubTimeout: 0,
    delivered: 0, sessions: 0, resumes: 0, openSubs: 0, slowCut: 0, slowStarted: 0,
    bad: 0, badOk: 0, outageCloses: 0, serverCloses: 0, verifiedSessions: 0, redisRestarts: 0,
};
const errors = new Map(); // kind -> count
const errorSamples = []; // the first messages, for the report
function fail(kind, message) {
    errors.set(kind, (errors.get(kind) || 0) + 1);
    if (errorSamples.length < 40) errorSamples.push(`${kind}: ${message}`);
}

// Outage windows (cluster): from the moment Redis is stopped until both nodes answer
// /readyz 200 again plus a grace period. Refusals and closed subscriptions are expected then.
let outage = false;
let outageEndsAt = 0;
const inOutage = () => outage || Date.now() < outageEndsAt;

// ---------------------------------------------------------------------------------------
// Processes.

// VmRSS of `pid` in bytes (NaN once it is gone), and its anonymous part (the heap, not
// the pages of files it maps).
function procStatus(pid, field = 'VmRSS') {
    try {
        const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(text);
        return m ? Number(m[1]) * 1024 : NaN;
    } catch {
        return NaN;
    }
}
function fdCount(pid) {
    try {
        return fs.readdirSync(`/proc/${pid}/fd`).length;
    } catch {
        return NaN;
    }
}
const mib = (b) => (b / 1048576).toFixed(1);

// The heap as glibc sees it, at rest: gdb calls malloc_stats() in the node, which writes its
// totals to the node's stderr (its log). `inUse` is what the program holds, `system` what
// the arenas took from the kernel; RSS follows `system`, a leak shows in `inUse`. Null when
// gdb is missing or may not attach (SOAK_HEAP_STATS=0 skips it).
function heapStats(node) {
    if (process.env.SOAK_HEAP_STATS === '0') return null;
    let before;
    try {
        before = fs.statSync(node.logPath).size;
    } catch {
        return null;
    }
    // malloc_trim(0) then hands back to the kernel what the arenas hold free: the RSS after
    // it is what the node keeps, without the allocator's cache.
    const r = spawnSync('gdb', ['-p', String(node.proc.pid), '-batch', '-nx', '-ex', 'call (void) malloc_stats()',
        '-ex', 'call (int) malloc_trim(0)'], { encoding: 'utf8', timeout: 60000 });
    if (r.error || r.status !== 0) return null;
    let text = '';
    try {
        const fd = fs.openSync(node.logPath, 'r');
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(size - before);
        fs.readSync(fd, buf, 0, buf.length, before);
        fs.closeSync(fd);
        text = buf.toString('utf8');
    } catch {
        return null;
    }
    const m = /Total \(incl\. mmap\):\s*\nsystem bytes\s*=\s*(\d+)\s*\nin use bytes\s*=\s*(\d+)/.exec(text);
    return m ? { system: Number(m[1]), inUse: Number(m[2]), trimmedRss: procStatus(node.proc.pid) } : null;
}

async function startHeraldNode({ name, store, config, dir, port }) {
    const logPath = path.join(dir, `herald-${name}.log`);
    const fd = fs.openSync(logPath, 'a');
    const args = ['serve', '--config', config, '--host', '127.0.0.1', '--port', String(port),
        '--threads', String(THREADS), '--store', store];
    if (MODE === 'cluster') args.push('--node-name', name);
    const env = { ...process.env, ...HERALD_ENV, AUTH_TOKEN: undefined, AUTH_TOKEN_FILE: undefined };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const proc = spawn(HERALD_BIN, args, { env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const node = {
        name, port, url: `http://127.0.0.1:${port}`, proc, logPath, exited: false, stopping: false,
        agent: new http.Agent({ keepAlive: true, maxSockets: PUBLISHERS * 2 }),
        tail: () => { try { return fs.readFileSync(logPath, 'utf8').slice(-3000); } catch { return ''; } },
    };
    node.exit = new Promise((resolve) => proc.on('exit', (code, sig) => {
        node.exited = true;
        if (!node.stopping) fatal(`herald ${name} exited (${code ?? sig}) during the soak; its log ends:\n${node.tail()}`);
        resolve(code ?? sig);
    }));
    await waitUntil(async () => {
        if (node.exited) throw new Error(`herald ${name} exited at start:\n${node.tail()}`);
        try {
            return (await httpRequest(`${node.url}/healthz`, { timeoutMs: 1000 })).status === 200;
        } catch {
            return false;
        }
    }, { ms: 20000, every: 100, what: `herald ${name} to answer /healthz on port ${port}` });
    return node;
}

let fatalError = null;
function fatal(message) {
    if (!fatalError) fatalError = message;
}

// One HTTP request; resolves to { status, headers, body }. Rejects on network errors and,
// with timeoutMs, when no complete answer came in time (err.code 'SOAK_TIMEOUT').
function httpRequest(url, { method = 'GET', headers = {}, body, agent = false, timeoutMs = 0 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method, headers, agent }, (res) => {
            let data = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { data += d; });
            res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, headers: res.headers, body: data }); });
            res.on('error', (e) => { clearTimeout(timer); reject(e); });
        });
        const timer = timeoutMs ? setTimeout(() => {
            const e = new Error(`no answer within ${timeoutMs} ms`);
            e.code = 'SOAK_TIMEOUT';
            req.destroy(e);
        }, timeoutMs) : null;
        req.on('error', (e) => { clearTimeout(timer); reject(e); });
        if (body !== undefined) req.write(body);
        req.end();
    });
}

// ---------------------------------------------------------------------------------------
// What was published: every attempt by key, every acknowledged id by topic.

const attempts = new Map(); // key -> { topics, status: 'pending'|'acked'|'refused'|'unknown', id, seenId }
const ackedByTopic = new Map(); // topic -> { ids: number[], sorted: boolean }
for (const t of ALL_TOPICS) ackedByTopic.set(t, { ids: [], sorted: true });

function parseId(id, what) {
    if (typeof id !== 'string' || !/^\d+$/.test(id) || !Number.isSafeInteger(Number(id))) {
        fail('non-decimal-id', `${what}: id ${JSON.stringify(id)}`);
        return NaN;
    }
    return Number(id);
}

function recordAck(key, idText) {
    const a = attempts.get(key);
    const id = parseId(idText, `ack of ${key}`);
    if (Number.isNaN(id)) return;
    a.status = 'acked';
    a.id = id;
    if (a.seenId !== undefined && a.seenId !== id) fail('id-mismatch', `${key} acked as ${id}, delivered as ${a.seenId}`);
    counts.acked += 1;
    for (const t of a.topics) {
        const e = ackedByTopic.get(t);
        if (e.ids.length && e.ids[e.ids.length - 1] > id) e.sorted = false;
        e.ids.push(id);
    }
}

function sortedAcked(topic) {
    const e = ackedByTopic.get(topic);
    if (!e.sorted) {
        e.ids.sort((x, y) => x - y);
        e.sorted = true;
    }
    return e.ids;
}

// The event's data: its first line is {"k": key, "t": topics, ...}.
function eventKey(ev) {
    const first = ev.data.split('\n')[0];
    try {
        const o = JSON.parse(first);
        return typeof o.k === 'string' ? o : null;
    } catch {
        return null;
    }
}

// Checks one delivered event against the attempts: known, with the id its publish got.
function checkDelivered(ev, id, where) {
    const meta = eventKey(ev);
    if (!meta) {
        fail('undecodable-event', `${where}: data ${JSON.stringify(ev.data.slice(0, 80))}`);
        return null;
    }
    const a = attempts.get(meta.k);
    if (!a) {
        fail('phantom-event', `${where}: ${meta.k} (id ${id}) was never published`);
        return null;
    }
    if (a.status === 'acked' && a.id !== id) fail('id-mismatch', `${where}: ${meta.k} acked as ${a.id}, delivered as ${id}`);
    else if (a.seenId !== undefined && a.seenId !== id) fail('id-mismatch', `${where}: ${meta.k} delivered as ${a.seenId} and as ${id}`);
    else a.seenId = id;
    return a;
}

// ---------------------------------------------------------------------------------------
// Publishing.

let publishSeq = 0;
const JSON_ACCEPT = { Accept: 'application/json' };

// Publishes one event on `topics` to `node`; records the attempt and its outcome.
async function publishOne(node, topics, { pad = rnd(280) + 20, via = 'any' } = {}) {
    publishSeq += 1;
    const key = `e${publishSeq}`;
    attempts.set(key, { topics, status: 'pending' });
    counts.published += 1;
    const meta = JSON.stringify({ k: key, t: topics, pad: 'x'.repeat(pad) });
    const data = chance(0.2) ? `${meta}\nsecond line\r\nthird line` : meta;
    const headers = {};
    let body;
    let query = '';
    if (chance(0.5)) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify({ topic: topics.length === 1 && chance(0.5) ? topics[0] : topics, data, event: chance(0.3) ? 'soak' : undefined });
    } else {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        const p = new URLSearchParams();
        for (const t of topics) p.append('topic', t);
        p.append('data', data);
        if (chance(0.3)) p.append('event', 'soak');
        body = p.toString();
    }
    const wantJson = chance(0.5);
    if (wantJson) Object.assign(headers, JSON_ACCEPT);
    if (via === 'query' || (via === 'any' && chance(0.2))) query = `?token=${encodeURIComponent(TOKENS.publisher)}`;
    else headers.Authorization = `Bearer ${TOKENS.publisher}`;
    let res;
    try {
        res = await httpRequest(`${node.url}/events${query}`, { method: 'POST', headers, body, agent: node.agent, timeoutMs: 15000 });
    } catch (e) {
        const a = attempts.get(key);
        a.status = 'unknown';
        if (e.code === 'SOAK_TIMEOUT') counts.pubTimeout += 1;
        else counts.pubNetErr += 1;
        if (!inOutage()) fail('publish-no-answer', `${node.name}: ${e.code || e.message}`);
        return;
    }
    if (res.status === 200) {
        let id = res.body.replace(/\r?\n$/, '');
        if (wantJson) {
            try {
                id = JSON.parse(res.body).id;
            } catch {
                fail('publish-bad-json-answer', res.body.slice(0, 100));
                return;
            }
        }
        recordAck(key, String(id));
        return;
    }
    attempts.get(key).status = 'refused';
    counts.refused += 1;
    if (res.status !== 503 || MODE !== 'cluster' || !inOutage()) {
        fail(`publish-${res.status}`, `${node.name}: ${res.body.slice(0, 200)}`);
    }
}

function pickGroupTopics() {
    const g = rnd(GROUPS);
    const first = rnd(TOPICS_PER_GROUP);
    if (TOPICS_PER_GROUP > 1 && chance(0.1)) {
        let second = rnd(TOPICS_PER_GROUP - 1);
        if (second >= first) second += 1;
        return [groupTopic(g, first), groupTopic(g, second)];
    }
    return [groupTopic(g, first)];
}

let loadOn = false;
const loops = new Set();
function startLoop(fn) {
    const p = fn().catch((e) => fatal(`a load loop failed: ${e.stack || e}`)).finally(() => loops.delete(p));
    loops.add(p);
}

// Each publisher keeps one publish in flight and paces itself to RATE / PUBLISHERS a second.
function publisherLoop(i) {
    return async () => {
        const every = (1000 * PUBLISHERS) / Math.max(RATE, 0.001);
        let next = Date.now() + rnd(every);
        while (loadOn) {
            const wait = next - Date.now();
            if (wait > 0) await sleep(Math.min(wait, 500));
            if (!loadOn) break;
            if (Date.now() < next) continue;
            next += every;
            if (next < Date.now() - 5000) next = Date.now(); // do not burst after a stall
            await publishOne(nodes[(i + publishSeq) % nodes.length], pickGroupTopics());
        }
    };
}

function bulkLoop() {
    return async () => {
        while (loadOn) {
            await publishOne(pick(nodes), [BULK], { pad: 2048 });
            await sleep(1000);
        }
    };
}

// ---------------------------------------------------------------------------------------
// Subscribers.

const openStreams = new Set(); // sockets/requests to destroy when the load stops
const pendingChecks = []; // sessions whose gap check waits for late acknowledgements

// A subscriber identity: a group, a way to name its topics, a token, and where it resumes.
function newIdentity(n) {
    const g = rnd(GROUPS);
    const r = Math.random();
    let selectors;
    let topics;
    let kind;
    if (r < 0.15) {
        kind = 'star';
        selectors = ['*'];
        topics = [...GROUP_TOPICS[g], BULK];
    } else if (r < 0.25) {
        kind = 'template';
        selectors = [groupTemplate(g)];
        topics = [...GROUP_TOPICS[g]];
    } else {
        kind = 'explicit';
        const k = 1 + rnd(4);
        const set = new Set();
        while (set.size < Math.min(k, TOPICS_PER_GROUP)) set.add(pick(GROUP_TOPICS[g]));
        if (chance(0.05)) set.add(BULK);
        topics = [...set];
        selectors = topics;
    }
    const credential = chance(0.3) ? groupJwt(g) : TOKENS.group[g];
    const from = kind === 'explicit' && !topics.includes(BULK) && chance(0.2) ? 'earliest' : null;
    return { n, g, kind, selectors, topics, topicSet: new Set(topics), credential, from, node: rnd(nodes.length) };
}

function subscriberLoop(n) {
    return async () => {
        let who = newIdentity(n);
        while (loadOn) {
            const session = await runSession(who);
            if (!loadOn) break;
            // Resume from the last event seen; now and then a fresh identity.
            if (chance(0.05)) who = newIdentity(n);
            else if (session.lastId !== null) who.from = String(session.lastId);
            who.node = (who.node + 1) % nodes.length;
            await sleep(session.endedByServer ? 500 + rnd(1000) : rnd(2000));
        }
    };
}

function runSession(who) {
    const node = nodes[who.node];
    const params = new URLSearchParams();
    for (const s of who.selectors) params.append('topic', s);
    const headers = { Accept: 'text/event-stream' };
    const place = rnd(3);
    if (place === 0) headers.Authorization = `Bearer ${who.credential}`;
    else if (place === 1) params.append('token', who.credential);
    else headers.Cookie = `herald_token=${who.credential}`;
    const resumeFrom = who.from;
    if (resumeFrom !== null) {
        if (chance(0.5)) headers['Last-Event-ID'] = resumeFrom;
        else params.append(pick(['lastEventID', 'lastEventId', 'LASTEVENTID']), resumeFrom);
        counts.resumes += 1;
    }
    counts.sessions += 1;
    const floor = resumeFrom === null ? null : resumeFrom === 'earliest' ? 0 : Number(resumeFrom);
    const where = `subscriber ${who.n} (${who.kind}, ${who.topics.length} topics) on ${node.name}`;
    const lifetime = 3000 + rnd(37000);
    return new Promise((resolve) => {
        const received = new Set();
        let first = null;
        let last = floor;
        let lastId = null;
        let done = false;
        let endedByServer = false;
        let opened = false;
        let timer = null;
        const parser = new SseParser();
        const finish = (byServer) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            openStreams.delete(req);
            if (opened) counts.openSubs -= 1;
            endedByServer = byServer;
            if (byServer && opened) {
                if (inOutage()) counts.outageCloses += 1;
                else {
                    counts.serverCloses += 1;
                    if (loadOn) fail('stream-ended-by-hub', `${where} after ${received.size} events`);
                }
            }
            if (received.size) {
                // The check runs once every publish that could fall in the range has been answered.
                pendingChecks.push({ due: Date.now() + 20000, topics: who.topics, from: floor, first, last, received, where });
            }
            req.destroy();
            resolve({ lastId, endedByServer });
        };
        const req = http.get(`${node.url}/events?${params}`, { headers, agent: false }, (res) => {
            if (res.statusCode !== 200) {
                fail(`subscribe-${res.statusCode}`, `${where}`);
                res.resume();
                finish(true);
                return;
            }
            if (!/^text\/event-stream/.test(res.headers['content-type'] || '')) fail('subscribe-content-type', `${where}: ${res.headers['content-type']}`);
            opened = true;
            counts.openSubs += 1;
            if (resumeFrom !== null && resumeFrom !== 'earliest') {
                const h = res.headers['last-event-id'];
                // Nothing was evicted: the hub knows every id it gave out.
                if (h !== resumeFrom && !inOutage()) fail('resume-header', `${where}: asked ${resumeFrom}, header ${JSON.stringify(h)}`);
            }
            res.setEncoding('utf8');
            res.on('data', (chunk) => {
                parser.push(chunk);
                for (const ev of parser.events) {
                    if (ev.id === null) continue;
                    const id = parseId(ev.id, where);
                    if (Number.isNaN(id)) continue;
                    counts.delivered += 1;
                    if (received.has(id)) fail('duplicate', `${where}: id ${id} twice`);
                    else if (last !== null && id <= last) fail('out-of-order', `${where}: id ${id} after ${last} (resumed from ${resumeFrom})`);
                    received.add(id);
                    if (first === null) first = id;
                    if (last === null || id > last) last = id;
                    lastId = id;
                    const a = checkDelivered(ev, id, where);
                    if (a && !a.topics.some((t) => who.topicSet.has(t))) {
                        fail('wrong-topic', `${where}: got ${id} on ${a.topics.join(',')}`);
                    }
                }
                parser.events.length = 0;
            });
            res.on('end', () => finish(true));
            res.on('error', () => finish(true));
            res.on('close', () => finish(!done));
        });
        req.on('error', (e) => {
            if (!done && !opened && !inOutage()) fail('subscribe-error', `${where}: ${e.code || e.message}`);
            finish(true);
        });
        openStreams.add(req);
        timer = setTimeout(() => finish(false), lifetime);
        req.soakStop = () => finish(false);
    });
}

// Runs the checks that are due (all of them with `all`): every acknowledged event on the
// session's topics after its resume point (or from the first event it saw, for a fresh
// one) up to the last event it saw must have reached it.
function runChecks(all = false) {
    const now = Date.now();
    let i = 0;
    while (i < pendingChecks.length) {
        const c = pendingChecks[i];
        if (!all && c.due > now) { i += 1; continue; }
        pendingChecks.splice(i, 1);
        counts.verifiedSessions += 1;
        const lo = c.from === null ? c.first : c.from + 1; // inclusive
        let missing = 0;
        let sample = null;
        for (const t of c.topics) {
            const ids = sortedAcked(t);
            let a = 0;
            let b = ids.length;
            while (a < b) { const m = (a + b) >> 1; if (ids[m] < lo) a = m + 1; else b = m; }
            for (let k = a; k < ids.length && ids[k] <= c.last; k++) {
                if (!c.received.has(ids[k])) {
                    missing += 1;
                    if (!sample) sample = `${ids[k]} on ${t}`;
                }
            }
        }
        if (missing) fail('gap', `${c.where}: ${missing} acknowledged events between ${lo} and ${c.last} never arrived (first: ${sample})`);
    }
}

// ---------------------------------------------------------------------------------------
// Slow readers: a stream on the bulk topic from its start (megabytes of history). A stalled
// one reads nothing for longer than server.write_timeout_seconds, then reads what the
// kernel holds: herald must have cut it (past server.slow_client_bytes, or for making no
// progress), so the stream ends there. A pausing one reads for a moment every few seconds
// and is left to herald's judgement. Everyone else goes on meanwhile (their checks).
const STALL_MS = (Number(HERALD_ENV.HERALD_SERVER_WRITE_TIMEOUT_SECONDS) + 10) * 1000;

function slowLoop(i) {
    return async () => {
        while (loadOn) {
            const node = pick(nodes);
            const stalled = i % 2 === 0;
            counts.slowStarted += 1;
            const outcome = await new Promise((resolve) => {
                const sock = net.connect(node.port, '127.0.0.1');
                sock.pause();
                let closed = false;
                let bytes = 0;
                const timers = [];
                const done = (what) => {
                    if (closed) return;
                    closed = true;
                    for (const t of timers) { clearTimeout(t); clearInterval(t); }
                    openStreams.delete(sock);
                    sock.destroy();
                    resolve({ what, bytes });
                };
                sock.soakStop = () => done('stopped');
                openStreams.add(sock);
                sock.on('connect', () => {
                    sock.write(`GET /events?topic=${encodeURIComponent(BULK)}&token=${encodeURIComponent(TOKENS.slow)} HTTP/1.1\r\n` +
                        'Host: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: earliest\r\n\r\n');
                });
                sock.on('data', (d) => { bytes += d.length; });
                sock.on('end', () => done('cut'));
                sock.on('close', () => done('cut'));
                sock.on('error', () => done('cut'));
                if (stalled) {
                    timers.push(setTimeout(() => {
                        sock.resume();
                        timers.push(setTimeout(() => done('not-cut'), 15000));
                    }, STALL_MS));
                } else {
                    timers.push(setInterval(() => { sock.resume(); setTimeout(() => sock.pause(), 100); }, 3000));
                    timers.push(setTimeout(() => done('left'), 20_000 + rnd(40_000)));
                }
            });
            if (outcome.what === 'cut') counts.slowCut += 1;
            if (outcome.what === 'not-cut' && loadOn) {
                fail('slow-reader-not-cut', `a stalled reader on ${node.name} still received after ${STALL_MS / 1000} s without reading (${outcome.bytes} bytes read)`);
            }
            await sleep(1000 + rnd(3000));
        }
    };
}

// ---------------------------------------------------------------------------------------
// Bad requests, each with the status herald documents for it.

const hr = (url, opts = {}) => httpRequest(url, { timeoutMs: 10000, ...opts });
const bigHeader = `X-Big: ${'a'.repeat(9 * 1024)}\r\n`;
const BAD_CASES = [
    ['malformed-request-line', 400, (n) => rawRequest(n.port, 'GARBAGE\r\n\r\n', { untilClose: true, timeoutMs: 8000 })],
    ['header-without-colon', 400, (n) => rawRequest(n.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n', { untilClose: true, timeoutMs: 8000 })],
    ['oversized-headers', 431, (n) => rawRequest(n.port, `GET /healthz HTTP/1.1\r\nHost: x\r\n${bigHeader}\r\n`, { timeoutMs: 8000 })],
    ['declared-body-too-large', 413, (n) => rawRequest(n.port,
        `POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.publisher}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n`, { timeoutMs: 8000 })],
    ['bad-json', 400, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.publisher}`, 'Content-Type': 'application/json' }, body: '{"topic": ["x", "data": ' })],
    ['json-without-topic', 400, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.publisher}`, 'Content-Type': 'application/json' }, body: '{"data": "no topic"}' })],
    ['publish-unknown-token', 401, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { Authorization: `Bearer nope-${secret()}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `topic=${encodeURIComponent(MISC)}&data=x` })],
    ['publish-anonymous', 401, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `topic=${encodeURIComponent(MISC)}&data=x` })],
    ['subscribe-tampered-jwt', 401, (n) => hr(`${n.url}/events?topic=${encodeURIComponent(groupTopic(0, 0))}`, { headers: { Authorization: `Bearer ${tamperSignature(groupJwt(0))}` } })],
    ['subscribe-anonymous', 401, (n) => hr(`${n.url}/events?topic=${encodeURIComponent(groupTopic(0, 0))}`)],
    ['subscribe-not-granted', 403, (n) => hr(`${n.url}/events?topic=${encodeURIComponent(groupTopic(GROUPS > 1 ? 1 : 0, 0))}`, { headers: { Authorization: `Bearer ${TOKENS.group[0]}` } })],
    ['publish-not-granted', 403, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.group[0]}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `topic=${encodeURIComponent(groupTopic(0, 0))}&data=x` })],
    ['publish-sys-topic', 403, (n) => hr(`${n.url}/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.admin}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'topic=%24sys%2Fconnections&data=x' })],
    ['subscribe-invalid-utf8', 400, (n) => hr(`${n.url}/events?topic=%FF`, { headers: { Authorization: `Bearer ${TOKENS.admin}` } })],
    ['unknown-path', 404, (n) => hr(`${n.url}/no/such/thing`)],
    ['wrong-method', 405, (n) => hr(`${n.url}/events`, { method: 'DELETE', headers: { Authorization: `Bearer ${TOKENS.admin}` } })],
    ['stalled-request', 408, (n) => rawRequest(n.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { untilClose: true, timeoutMs: 10000 })],
    // A good publish sent in three pieces: answered 200 like any other, and acknowledged.
    ['split-publish', 200, null],
];

async function splitPublish(node) {
    publishSeq += 1;
    const key = `e${publishSeq}`;
    attempts.set(key, { topics: [MISC], status: 'pending' });
    counts.published += 1;
    const body = `topic=${encodeURIComponent(MISC)}&data=${encodeURIComponent(JSON.stringify({ k: key, t: [MISC] }))}`;
    const text = `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKENS.publisher}\r\n` +
        `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const cut1 = 10 + rnd(40);
    const cut2 = text.length - 5 - rnd(10);
    const r = await rawRequest(node.port, [text.slice(0, cut1), text.slice(cut1, cut2), text.slice(cut2)], { gapMs: 150, timeoutMs: 20000 });
    const a = attempts.get(key);
    if (r.response?.status === 200) {
        recordAck(key, r.response.body.replace(/\r?\n$/, ''));
    } else if (r.response) {
        a.status = 'refused';
        counts.refused += 1;
    } else {
        a.status = 'unknown';
    }
    return r;
}

function badLoop() {
    return async () => {
        const every = 1000 / Math.max(BAD_PER_S, 0.001);
        while (loadOn) {
            const [kind, expected, fn] = pick(BAD_CASES);
            const node = pick(nodes);
            counts.bad += 1;
            let status;
            try {
                const r = fn ? await fn(node) : await splitPublish(node);
                status = r.status ?? r.response?.status ?? (r.closed ? 'closed-without-answer' : 'no-answer');
            } catch (e) {
                status = `error ${e.code || e.message}`;
            }
            if (status === expected) counts.badOk += 1;
            else if (!(inOutage() && (status === 503 || kind === 'split-publish'))) fail(`bad-${kind}`, `${node.name}: expected ${expected}, got ${status}`);
            await sleep(every);
        }
    };
}

// ---------------------------------------------------------------------------------------
// The run.

let nodes = [];
let redis = null;
let workDir = null;

function nodeFigures() {
    return nodes.map((n) => ({ name: n.name, rss: procStatus(n.proc.pid), anon: procStatus(n.proc.pid, 'RssAnon'), fds: fdCount(n.proc.pid) }));
}

function figureLine() {
    const errs = [...errors.entries()].map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
    const nodeText = nodeFigures().map((f) => `${nodes.length > 1 ? `${f.name}: ` : ''}rss ${mib(f.rss)} MiB (anon ${mib(f.anon)}) fds ${f.fds}`).join(' | ');
    const redisText = redis ? ` | redis rss ${mib(procStatus(redis.proc.pid))} MiB` : '';
    return `pub ${counts.published} acked ${counts.acked} refused ${counts.refused} unanswered ${counts.pubNetErr + counts.pubTimeout}` +
        ` | delivered ${counts.delivered} | subs ${counts.openSubs} open, ${counts.sessions} sessions, ${counts.resumes} resumes,` +
        ` ${counts.verifiedSessions} checked | slow ${counts.slowCut}/${counts.slowStarted} cut | bad ${counts.badOk}/${counts.bad} as documented` +
        ` | errors: ${errs} | ${nodeText}${redisText}`;
}

function startLoad() {
    loadOn = true;
    for (let i = 0; i < PUBLISHERS; i++) startLoop(publisherLoop(i));
    startLoop(bulkLoop());
    for (let i = 0; i < SUBSCRIBERS; i++) startLoop(subscriberLoop(i));
    for (let i = 0; i < SLOW; i++) startLoop(slowLoop(i));
    startLoop(badLoop());
}

async function stopLoad() {
    loadOn = false;
    for (const s of [...openStreams]) s.soakStop?.();
    let timer;
    await Promise.race([Promise.all([...loops]), new Promise((r) => { timer = setTimeout(r, 30000); })]).finally(() => clearTimeout(timer));
    if (loops.size) fail('load-did-not-stop', `${loops.size} load loops still running 30 s after the stop`);
    for (const n of nodes) n.agent.destroy();
    for (const n of nodes) n.agent = new http.Agent({ keepAlive: true, maxSockets: PUBLISHERS * 2 });
}

// After the load stopped: waits until every node's open files stay the same for 5 s (the
// hub has closed every client connection, refused ones linger about 2 s), then takes RSS
// and fds.
async function settle(what) {
    const deadline = Date.now() + 90_000;
    let prev = null;
    let stableSince = Date.now();
    for (;;) {
        await sleep(500);
        const f = nodeFigures().map((x) => x.fds).join(',');
        if (f !== prev) { prev = f; stableSince = Date.now(); }
        if (Date.now() - stableSince >= 5000) break;
        if (Date.now() > deadline) { fail('no-quiescence', `${what}: open files still changing after 90 s`); break; }
    }
    const figures = nodeFigures();
    nodes.forEach((n, i) => { figures[i].heap = heapStats(n); });
    return figures;
}

const heapText = (h) => (h ? `; heap in use ${mib(h.inUse)} MiB of ${mib(h.system)} MiB taken, rss after malloc_trim ${mib(h.trimmedRss)} MiB` : '');

async function redisRestart(k) {
    const how = k === 1 ? 'SIGTERM' : 'SIGKILL';
    say(`redis restart ${k}/2: stopping redis-server with ${how} for ${REDIS_DOWN_MS / 1000} s`);
    outage = true;
    if (how === 'SIGTERM') await redis.stop();
    else await redis.kill9();
    await sleep(REDIS_DOWN_MS);
    await redis.restart();
    for (const n of nodes) {
        await waitUntil(async () => {
            try {
                return (await httpRequest(`${n.url}/readyz`, { timeoutMs: 2000 })).status === 200;
            } catch {
                return false;
            }
        }, { ms: 60000, every: 200, what: `${n.name} to be ready again after Redis came back` });
    }
    outage = false;
    outageEndsAt = Date.now() + 5000;
    counts.redisRestarts += 1;
    say(`redis restart ${k}/2: redis-server back, both nodes ready`);
}

// Replays every topic from the start on `node` (one stream on every topic, read up to a
// sentinel) and compares it with the acknowledged publishes.
async function finalReplay(node) {
    // `*`: everything the admin token may read, that is every topic of the soak (naming them
    // all would pass the 8 KiB request line).
    const params = new URLSearchParams({ topic: '*' });
    const mark = `sentinel-${secret()}`;
    const events = [];
    let sentinelId = null;
    await new Promise((resolve, reject) => {
        const parser = new SseParser();
        const timer = setTimeout(() => { req.destroy(); reject(new Error(`the final replay on ${node.name} did not reach its sentinel within 300 s (${events.length} events read)`)); }, 300_000);
        const req = http.get(`${node.url}/events?${params}`, { headers: { Authorization: `Bearer ${TOKENS.admin}`, 'Last-Event-ID': 'earliest' }, agent: false }, (res) => {
            if (res.statusCode !== 200) { clearTimeout(timer); reject(new Error(`final replay on ${node.name}: status ${res.statusCode}`)); return; }
            res.setEncoding('utf8');
            let asked = false;
            res.on('data', (chunk) => {
                parser.push(chunk);
                for (const ev of parser.events) {
                    if (ev.data === mark) { sentinelId = ev.id; clearTimeout(timer); req.destroy(); resolve(); return; }
                    events.push(ev);
                }
                parser.events.length = 0;
                if (!asked) {
                    asked = true;
                    httpRequest(`${node.url}/events`, { method: 'POST', headers: { Authorization: `Bearer ${TOKENS.admin}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `topic=${encodeURIComponent(SENTINEL)}&data=${mark}` })
                        .then((r) => { if (r.status !== 200) reject(new Error(`sentinel publish on ${node.name}: ${r.status} ${r.body}`)); }, reject);
                }
            });
            res.on('end', () => { clearTimeout(timer); reject(new Error(`final replay on ${node.name} ended before its sentinel (${events.length} events)`)); });
        });
        req.on('error', (e) => { if (sentinelId === null) { clearTimeout(timer); reject(e); } });
    });
    // Every event: known, once, in increasing order; per topic, every acknowledged id present.
    const seen = new Map(); // topic -> Set(id)
    for (const t of ALL_TOPICS) seen.set(t, new Set());
    let prev = -1;
    let extras = 0;
    for (const ev of events) {
        if (/^sentinel-/.test(ev.data)) continue; // another node's final replay
        const id = parseId(ev.id, `final replay on ${node.name}`);
        if (id <= prev) fail('final-order', `${node.name}: id ${id} after ${prev}`);
        prev = id;
        const a = checkDelivered(ev, id, `final replay on ${node.name}`);
        if (!a) continue;
        if (a.status !== 'acked') extras += 1;
        for (const t of a.topics) seen.get(t)?.add(id);
    }
    let lost = 0;
    const lostSample = [];
    for (const t of ALL_TOPICS) {
        const got = seen.get(t);
        for (const id of sortedAcked(t)) {
            if (!got.has(id)) {
                lost += 1;
                if (lostSample.length < 5) lostSample.push(`${id} on ${t}`);
            }
        }
    }
    if (lost) fail('lost', `${node.name}: ${lost} acknowledged events missing from the final replay (${lostSample.join('; ')})`);
    return { events: events.length, lost, extras };
}

async function metricsOf(node) {
    const r = await httpRequest(`${node.url}/metrics`, { headers: { Authorization: `Bearer ${TOKENS.admin}` }, timeoutMs: 5000 });
    const get = (re) => {
        let sum = 0;
        for (const line of r.body.split('\n')) {
            const m = re.exec(line);
            if (m) sum += Number(m[1]);
        }
        return sum;
    };
    return {
        evictions: get(/^herald_history_evictions_total\{[^}]*\}\s+(\S+)/),
        slowCuts: get(/^herald_slow_consumer_disconnects_total\s+(\S+)/),
        rejected: get(/^herald_requests_rejected_total\{[^}]*\}\s+(\S+)/),
    };
}

async function main() {
    if (LOG_FILE) logStream = fs.createWriteStream(LOG_FILE, { flags: 'a' });
    try {
        fs.accessSync(HERALD_BIN, fs.constants.X_OK);
    } catch {
        console.error(`soak: ${HERALD_BIN} is missing; run make build first (or set HERALD_BIN)`);
        process.exit(2);
    }
    workDir = makeTempDir(`herald-soak-${MODE}-`);
    const config = writeHeraldConfig(workDir);
    say(`${MINUTES} min (warm-up ${WARMUP_MS / 60000} min), ${SUBSCRIBERS} subscribers, ${GROUPS * TOPICS_PER_GROUP} topics + bulk, ` +
        `${RATE} publishes/s by ${PUBLISHERS} publishers + 1/s of 2 KiB on the bulk topic, ${SLOW} slow readers, ${BAD_PER_S} bad requests/s; ` +
        `herald ${HERALD_BIN}, work dir ${workDir}`);
    if (MODE === 'sqlite') {
        nodes = [await startHeraldNode({ name: 'sqlite', store: `sqlite:${path.join(workDir, 'herald.db')}`, config, dir: workDir, port: await freePort() })];
    } else {
        fs.mkdirSync(path.join(workDir, 'redis'));
        redis = await startRedis({ appendonly: true, dir: path.join(workDir, 'redis') });
        const ai = await redis.info('persistence');
        assert.equal(ai.aof_enabled, '1', 'redis-server started without its append-only file');
        const store = redis.url(0);
        nodes = [
            await startHeraldNode({ name: 'a', store, config, dir: workDir, port: await freePort() }),
            await startHeraldNode({ name: 'b', store, config, dir: workDir, port: await freePort() }),
        ];
        say(`redis-server on port ${redis.port} (appendonly yes, appendfsync always), nodes a on ${nodes[0].port}, b on ${nodes[1].port}`);
    }

    // The bulk topic's history: what makes a slow reader from `earliest` overflow.
    for (let i = 0; i < BULK_FILL; i += 16) {
        await Promise.all(Array.from({ length: Math.min(16, BULK_FILL - i) }, () => publishOne(pick(nodes), [BULK], { pad: 2048, via: 'header' })));
    }
    say(`bulk topic filled with ${BULK_FILL} events of 2 KiB; ${figureLine()}`);

    const minuteTimer = setInterval(() => { runChecks(); say(figureLine()); }, 60_000);
    const checkTimer = setInterval(() => runChecks(), 5000);
    const stopAt = started + TOTAL_MS;

    // Warm-up, then the baseline at rest.
    startLoad();
    await untilOrFatal(started + WARMUP_MS);
    await stopLoad();
    const baseline = await settle('baseline');
    say(`baseline after the warm-up, load stopped: ${baseline.map((f) => `${f.name} rss ${mib(f.rss)} MiB (anon ${mib(f.anon)}) fds ${f.fds}${heapText(f.heap)}`).join(', ')}`);
    startLoad();

    if (MODE === 'cluster') {
        const mainMs = stopAt - Date.now();
        const restartAt = [Date.now() + mainMs / 3, Date.now() + (2 * mainMs) / 3];
        for (let k = 0; k < 2; k++) {
            await untilOrFatal(restartAt[k]);
            if (fatalError) break;
            await redisRestart(k + 1);
        }
    }
    await untilOrFatal(stopAt);

    await stopLoad();
    clearInterval(minuteTimer);
    clearInterval(checkTimer);
    say(`load stopped; ${figureLine()}`);
    const final = await settle('final');
    runChecks(true);

    // The verdicts.
    const verdicts = [];
    for (let i = 0; i < nodes.length && !fatalError; i++) {
        const b = baseline[i];
        const f = final[i];
        const allowed = b.rss + Math.max(RSS_SLACK_MB * 1048576, (b.rss * RSS_SLACK_PCT) / 100);
        const rssOk = f.rss <= allowed;
        const fdOk = Math.abs(f.fds - b.fds) <= FD_SLACK;
        verdicts.push(`${f.name}: rss ${mib(b.rss)} -> ${mib(f.rss)} MiB (anon ${mib(b.anon)} -> ${mib(f.anon)}; allowed up to ${mib(allowed)}) ${rssOk ? 'ok' : 'FAIL'}; ` +
            `fds ${b.fds} -> ${f.fds} (allowed ±${FD_SLACK}) ${fdOk ? 'ok' : 'FAIL'}`);
        if (b.heap && f.heap) {
            const heapAllowed = b.heap.inUse + Math.max(HEAP_SLACK_MB * 1048576, (b.heap.inUse * HEAP_SLACK_PCT) / 100);
            const heapOk = f.heap.inUse <= heapAllowed;
            const trimmedAllowed = b.heap.trimmedRss + Math.max(TRIMMED_SLACK_MB * 1048576, (b.heap.trimmedRss * TRIMMED_SLACK_PCT) / 100);
            const trimmedOk = f.heap.trimmedRss <= trimmedAllowed;
            verdicts.push(`${f.name}: heap in use ${mib(b.heap.inUse)} -> ${mib(f.heap.inUse)} MiB (allowed up to ${mib(heapAllowed)}) ${heapOk ? 'ok' : 'FAIL'}; ` +
                `taken from the kernel ${mib(b.heap.system)} -> ${mib(f.heap.system)} MiB; ` +
                `rss after malloc_trim ${mib(b.heap.trimmedRss)} -> ${mib(f.heap.trimmedRss)} MiB (allowed up to ${mib(trimmedAllowed)}) ${trimmedOk ? 'ok' : 'FAIL'}`);
            if (!heapOk) fail('heap', `${f.name}: ${mib(f.heap.inUse)} MiB of heap in use after the load, baseline ${mib(b.heap.inUse)} MiB, allowed ${mib(heapAllowed)} MiB`);
            if (!trimmedOk) fail('trimmed-rss', `${f.name}: RSS after malloc_trim ${mib(f.heap.trimmedRss)} MiB, baseline ${mib(b.heap.trimmedRss)} MiB, allowed ${mib(trimmedAllowed)} MiB`);
        } else {
            verdicts.push(`${f.name}: heap figures unavailable (gdb missing or not allowed to attach): only RSS is checked`);
        }
        if (!rssOk) fail('rss', `${f.name}: RSS ${mib(f.rss)} MiB after the load, baseline ${mib(b.rss)} MiB, allowed ${mib(allowed)} MiB`);
        if (!fdOk) fail('fds', `${f.name}: ${f.fds} open files after the load, baseline ${b.fds}`);
    }
    for (const v of verdicts) say(`at rest after the load: ${v}`);

    if (!fatalError) {
        for (const n of nodes) {
            const m = await metricsOf(n);
            if (m.evictions) fail('evictions', `${n.name}: ${m.evictions} events evicted; the loss check assumes none`);
            const r = await finalReplay(n);
            say(`final replay on ${n.name}: ${r.events} events, acknowledged ${counts.acked}, lost ${r.lost}, ` +
                `unacknowledged but stored ${r.extras}; hub counted ${m.slowCuts} slow-consumer cuts, ${m.rejected} rejected requests`);
        }
    }
    for (const n of nodes) {
        n.stopping = true;
        n.proc.kill('SIGTERM');
        let timer;
        const code = await Promise.race([n.exit, new Promise((r) => { timer = setTimeout(() => r('still running'), 15000); })]).finally(() => clearTimeout(timer));
        if (code !== 0) {
            fail('shutdown', `herald ${n.name} answered SIGTERM with ${code}`);
            n.proc.kill('SIGKILL');
        }
    }
    if (redis) await redis.stop().catch(() => {});
    say(`end: ${figureLine()}`);
    if (fatalError) fail('fatal', fatalError);
    if (errors.size) {
        say(`FAILED: ${[...errors.entries()].map(([k, v]) => `${k}=${v}`).join(' ')}`);
        for (const s of errorSamples) say(`  ${s}`);
        say(`herald logs and data kept in ${workDir}`);
        await new Promise((r) => (logStream ? logStream.end(r) : r()));
        process.exit(1);
    }
    say('PASSED');
    if (!KEEP) removeDir(workDir);
    await new Promise((r) => (logStream ? logStream.end(r) : r()));
    process.exit(0);
}

async function untilOrFatal(t) {
    while (Date.now() < t && !fatalError) await sleep(Math.min(1000, Math.max(0, t - Date.now())));
}

process.on('SIGINT', () => {
    for (const n of nodes) { n.stopping = true; n.proc.kill('SIGKILL'); }
    redis?.kill9();
    process.exit(130);
});

main().catch(async (e) => {
    say(`FAILED: ${e.stack || e}`);
    for (const n of nodes) { n.stopping = true; n.proc.kill('SIGKILL'); }
    await redis?.kill9().catch(() => {});
    if (workDir) say(`herald logs and data kept in ${workDir}`);
    process.exit(1);
});
