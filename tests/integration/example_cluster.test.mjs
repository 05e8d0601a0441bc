// examples/cluster: two herald nodes on one Redis behind nginx, started the way a user starts
// them, through examples/cluster/run.sh. Requests through nginx reach both nodes; the
// generator's publishes alternate between them; a subscriber whose node is killed with -9
// while the generator publishes reconnects through nginx with its Last-Event-ID, lands on
// the other node and gets every acknowledged event exactly once, in order (checked against
// the generator's own record and a full `earliest` read of the topic); run.sh restarts the
// killed node; the page, in headless Chromium, shows its node and the events and moves
// with them when that node is killed; REDIS_PERSISTENCE=always reaches Redis; Ctrl-C
// (SIGINT) to run.sh stops every process, exits 0 and removes the work dir; and run.sh
// refuses clearly when something is missing or taken.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HERALD_BIN, openStream, request, sleep } from './lib/harness.mjs';
import { closedPort, cmpId, eventsPath, getMetrics, waitUntil, withTimeout } from './lib/util.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const RUN_SH = new URL('../../examples/cluster/run.sh', import.meta.url).pathname;
const T = { timeout: 60000 };
const NODES = ['node-a', 'node-b'];
// The generator's pace in these tests (INTERVAL): about ten publishes a second, each a
// `herald pub` process of its own.
const INTERVAL = '0.1';
// How many events a subscriber must see before and after its node is killed.
const BEFORE_KILL = 10;
const AFTER_KILL = 15;

// ---------------------------------------------------------------------------------------
// Processes, seen through /proc.

function procStat(pid) {
    let stat;
    try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
        return null;
    }
    // Fields after the command name (which may hold spaces): state ppid pgrp ... starttime.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]), start: rest[19] };
}

// A process identity that survives pid reuse: pid plus start time.
function identity(pid, what = `process ${pid}`) {
    const s = procStat(pid);
    assert.ok(s && s.state !== 'Z', `${what} (pid ${pid}) is not running`);
    return { pid, start: s.start, what };
}

function running({ pid, start }) {
    const s = procStat(pid);
    return Boolean(s) && s.state !== 'Z' && s.start === start;
}

function processes(filter) {
    const out = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        const s = procStat(name);
        if (s && s.state !== 'Z' && filter(s)) out.push(identity(Number(name)));
    }
    return out;
}

const childrenOf = (ppid) => processes((s) => s.ppid === ppid);
const inGroup = (pgrp) => processes((s) => s.pgrp === pgrp);

function portRefuses(port) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('connect', () => { sock.destroy(); resolve(false); });
        sock.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
}

// ---------------------------------------------------------------------------------------
// run.sh

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-cluster-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

async function freePorts(n) {
    const ports = new Set();
    while (ports.size < n) ports.add(await closedPort());
    return [...ports];
}

// Spawns run.sh with its own TMPDIR (so that leftovers can be seen) and the given ports.
function spawnRunSh({ env = {}, args = [], ports }) {
    const tmp = fs.mkdtempSync(path.join(scratch, 'tmp-'));
    const proc = spawn(RUN_SH, args, {
        env: {
            ...process.env,
            HERALD_BIN,
            PORT: String(ports.port),
            NODE_A_PORT: String(ports['node-a']),
            NODE_B_PORT: String(ports['node-b']),
            REDIS_PORT: String(ports.redis),
            TMPDIR: tmp,
            INTERVAL,
            ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, like a shell's foreground job
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, sig) => resolve(code ?? sig));
        proc.on('error', (e) => resolve(`spawn error: ${e.message}`));
    });
    const r = { proc, tmp, exited, output: () => out, ports };
    started.push(r);
    return r;
}

// Every run.sh started, for the file-level after() should a test fail mid-way.
const started = [];
after(async () => {
    for (const r of started) await forceStop(r);
});

async function anyPorts() {
    const [port, a, b, redis] = await freePorts(4);
    return { port, 'node-a': a, 'node-b': b, redis };
}

// Starts the example and waits for run.sh's "ready" line. Ports taken by someone else
// between closedPort() and run.sh's check are retried with new ones.
async function startExample({ env = {}, args = [] } = {}) {
    for (let attempt = 1; ; attempt++) {
        const r = spawnRunSh({ env, args, ports: await anyPorts() });
        let code;
        r.exited.then((c) => { code = c; });
        await waitUntil(() => /run\.sh: ready at /.test(r.output()) || code !== undefined, {
            ms: 45000, what: 'run.sh to print its ready line', describe: () => r.output(),
        }).catch(async (e) => {
            await forceStop(r);
            throw e;
        });
        if (code !== undefined) {
            fs.rmSync(r.tmp, { recursive: true, force: true });
            if (attempt < 3 && /already in use/.test(r.output())) continue;
            assert.fail(`run.sh exited (${code}) before it was ready:\n${r.output()}`);
        }
        const out = r.output();
        const num = (re) => {
            const m = re.exec(out);
            assert.ok(m, `run.sh printed no ${re}:\n${out}`);
            return m[1];
        };
        const ex = Object.assign(r, {
            url: num(/run\.sh: ready at (http:\/\/\S+?)\/?\n/),
            workdir: num(/run\.sh: work dir (\S+) /),
            redis: identity(Number(num(/run\.sh: redis-server \(pid (\d+),/)), 'redis-server'),
            nginx: identity(Number(num(/run\.sh: nginx \(pid (\d+),/)), 'the nginx master'),
            generator: identity(Number(num(/run\.sh: generator \(pid (\d+)\)/)), 'the generator'),
            nodes: {},
        });
        for (const name of NODES) {
            ex.nodes[name] = identity(Number(num(new RegExp(`run\\.sh: ${name} \\(pid (\\d+)\\)`))), name);
        }
        assert.equal(ex.url, `http://127.0.0.1:${r.ports.port}`);
        assert.ok(ex.workdir.startsWith(`${r.tmp}/`), `work dir ${ex.workdir} is not under TMPDIR ${r.tmp}`);
        // The pid files say what the output says.
        for (const [name, p] of [['redis', ex.redis], ['generator', ex.generator],
            ['nginx', ex.nginx], ...Object.entries(ex.nodes)]) {
            assert.equal(pidFile(ex, name), p.pid, `${name}.pid in the work dir`);
        }
        // Every process that must be gone once run.sh has stopped, nginx's workers included.
        ex.all = [ex.redis, ex.nginx, ex.generator, ...Object.values(ex.nodes),
            ...childrenOf(ex.nginx.pid).map((w) => ({ ...w, what: 'an nginx worker' }))];
        return ex;
    }
}

// The pid in WORKDIR/NAME.pid, or null when there is none (a node between its death and
// its restart).
function pidFile(ex, name) {
    try {
        return Number(fs.readFileSync(path.join(ex.workdir, `${name}.pid`), 'utf8').trim());
    } catch {
        return null;
    }
}

const nodeUrl = (ex, name) => `http://127.0.0.1:${ex.ports[name]}`;

// Ctrl-C, as a terminal sends it to the foreground job: SIGINT to run.sh. It must stop
// every process it started, wait for them, remove its work dir and exit 0.
async function interruptExample(ex) {
    const groups = [ex.generator.pid];
    ex.proc.kill('SIGINT');
    const code = await withTimeout(ex.exited, 30000, 'run.sh to exit after SIGINT');
    ex.stopped = true;
    assert.equal(code, 0, `run.sh exited with ${code}:\n${ex.output()}`);
    for (const p of ex.all) {
        assert.ok(!running(p), `${p.what} (pid ${p.pid}) still runs after run.sh exited`);
    }
    // Nothing the generator ran (a `herald pub`, a `sleep`) outlived it either.
    for (const g of groups) assert.deepEqual(inGroup(g), [], `processes left in the generator's group ${g}`);
    assert.ok(!fs.existsSync(ex.workdir), `run.sh left its work dir ${ex.workdir}`);
    assert.deepEqual(fs.readdirSync(ex.tmp), [], 'run.sh left files in its TMPDIR');
    for (const [what, port] of Object.entries(ex.ports)) {
        assert.ok(await portRefuses(port), `something still listens on ${what}'s port ${port}`);
    }
}

// Last resort after a failed test: TERM, then KILL the process group run.sh leads, and
// KILL whatever it started that outlived it (it would hold the output pipes open).
async function forceStop(r) {
    if (!r) return;
    if (!r.stopped) {
        r.stopped = true;
        try { r.proc.kill('SIGTERM'); } catch { /* gone */ }
        const code = await withTimeout(r.exited, 15000, 'run.sh').catch(() => undefined);
        if (code === undefined) {
            try { process.kill(-r.proc.pid, 'SIGKILL'); } catch { /* gone */ }
        }
    }
    for (const p of [...(r.all ?? []), ...Object.values(r.restarted ?? {})]) {
        if (p && running(p)) process.kill(p.pid, 'SIGKILL');
    }
    if (r.generator) for (const p of inGroup(r.generator.pid)) process.kill(p.pid, 'SIGKILL');
}

async function runExpectingFailure({ env = {}, ports } = {}) {
    const r = spawnRunSh({ env, ports: ports ?? await anyPorts() });
    const code = await withTimeout(r.exited, 20000, 'run.sh to give up').catch(async (e) => {
        await forceStop(r);
        throw new Error(`${e.message}; output:\n${r.output()}`);
    });
    r.stopped = true;
    const tmpLeft = fs.readdirSync(r.tmp);
    fs.rmSync(r.tmp, { recursive: true, force: true });
    return { code, output: r.output(), tmpLeft };
}

// ---------------------------------------------------------------------------------------
// The generator's record and the topic's history.

// WORKDIR/generator.log: [{ n, ok, id }], one per publish attempt, in order. A line still
// being written (no newline yet) is left for the next read.
function generatorLog(ex) {
    const lines = fs.readFileSync(path.join(ex.workdir, 'generator.log'), 'utf8').split('\n').slice(0, -1);
    return lines.map((line) => {
        const m = /^(ok|failed) (\d+) ?(.*)$/.exec(line);
        assert.ok(m, `generator.log has a line run.sh does not write: ${JSON.stringify(line)}`);
        return { ok: m[1] === 'ok', n: Number(m[2]), id: m[1] === 'ok' ? m[3] : null, reason: m[3] };
    });
}

// The generator's record up to publish #n: it writes a line once `herald pub` has returned,
// which may be after a subscriber got the event.
async function generatorLogUpTo(ex, n) {
    return waitUntil(() => {
        const log = generatorLog(ex);
        return log.length >= n && log;
    }, { ms: 10000, what: `the generator to record publish #${n}` });
}

// The pid of `name` that run.sh last reported started again, other than those in `not`.
function restartedPid(ex, name, not = []) {
    const re = new RegExp(`run\\.sh: ${name} \\(pid (\\d+)\\) on http://\\S+ again`, 'g');
    const pids = [...ex.output().matchAll(re)].map((m) => Number(m[1])).filter((p) => !not.includes(p));
    return pids.length ? pids.at(-1) : null;
}

// The generator's number in an event's data.
function numberOf(e) {
    const body = JSON.parse(e.data);
    assert.ok(Number.isInteger(body.n), `an event whose data has no number n: ${e.data}`);
    assert.ok(typeof body.time === 'string' && !Number.isNaN(Date.parse(body.time)), `no time in ${e.data}`);
    return body.n;
}

// Everything a node retains on `topic` (Last-Event-ID: earliest), read until the event with
// id `upto` arrived; returns the events up to and including it.
async function historyUpTo(base, topic, upto) {
    const s = await openStream(base, eventsPath([topic]), { headers: { 'Last-Event-ID': 'earliest' } });
    try {
        assert.equal(s.status, 200);
        await s.waitFor(0, 15000, () => s.events.some((e) => e.id === upto) || s.ended).catch(() => {});
        const i = s.events.findIndex((e) => e.id === upto);
        assert.ok(i >= 0, `${base}: the earliest read did not reach id ${upto} (${s.events.length} events, ended=${s.ended})`);
        return s.events.slice(0, i + 1);
    } finally {
        s.close();
    }
}

// ---------------------------------------------------------------------------------------
// A subscriber through nginx that reconnects, as EventSource does, with the last id it saw.
// It keeps one segment per connection: the node that served it (X-Herald-Node), the
// Last-Event-ID it sent and got back, and its events.

function resumingSubscriber(base, topic) {
    const sub = { segments: [], refused: [], closed: false, current: null };
    sub.events = () => sub.segments.flatMap((s) => s.stream.events);
    sub.lastId = () => {
        const all = sub.events();
        return all.length ? all[all.length - 1].id : null;
    };
    sub.done = (async () => {
        while (!sub.closed) {
            const sent = sub.lastId();
            let stream;
            try {
                stream = await openStream(base, eventsPath([topic]),
                    { headers: sent ? { 'Last-Event-ID': sent } : {} });
            } catch (e) {
                sub.refused.push(e.message);
                await sleep(100);
                continue;
            }
            if (stream.status !== 200) {
                sub.refused.push(`${stream.status} from ${stream.headers['x-herald-node'] ?? stream.headers.server}`);
                stream.close();
                await sleep(100);
                continue;
            }
            const seg = { node: stream.headers['x-herald-node'], sent, answered: stream.headers['last-event-id'], stream };
            sub.segments.push(seg);
            sub.current = stream;
            await stream.waitEnd(24 * 3600 * 1000).catch(() => {});
            // An event cut off by the end of the stream is not one: the parser holds it
            // back until its blank line, which never came.
        }
    })();
    sub.close = async () => {
        sub.closed = true;
        sub.current?.close();
        await sub.done;
    };
    return sub;
}

// ---------------------------------------------------------------------------------------

describe('a herald cluster behind nginx (examples/cluster/run.sh)', () => {
    let ex;
    let browser;
    before(async () => {
        // Arguments after run.sh go to both `herald serve`.
        ex = await startExample({ args: ['--threads', '2'] });
    });
    after(async () => {
        await browser?.close();
        await forceStop(ex);
    });

    test('both nodes answer through nginx, each with its name', T, async () => {
        const seen = new Set();
        for (let i = 0; i < 6; i++) {
            const r = await request(`${ex.url}/healthz`);
            assert.equal(r.status, 200);
            assert.match(String(r.headers.server), /^nginx\b/);
            const node = r.headers['x-herald-node'];
            assert.ok(NODES.includes(node), `X-Herald-Node: ${node}`);
            assert.equal(JSON.parse(r.body).node, node, '/healthz names the node its header names');
            seen.add(node);
        }
        assert.deepEqual([...seen].sort(), NODES, 'round robin reached both nodes');
        for (const name of NODES) {
            const r = await request(`${nodeUrl(ex, name)}/readyz`);
            assert.equal(r.status, 200, `${name}'s /readyz: ${r.body}`);
            assert.equal(r.headers['x-herald-node'], name);
        }
    });

    test('the page and its files come from nginx; run.sh passed its arguments to both nodes', T, async () => {
        for (const [p, type] of [['/', /^text\/html/], ['/cluster.js', /javascript/], ['/cluster.css', /^text\/css/]]) {
            const r = await request(ex.url + p);
            assert.equal(r.status, 200, `GET ${p}`);
            assert.match(String(r.headers['content-type']), type, `GET ${p}`);
            assert.equal(r.headers['x-herald-node'], undefined, `GET ${p} went to a node`);
        }
        for (const name of NODES) {
            const log = fs.readFileSync(path.join(ex.workdir, `${name}.log`), 'utf8');
            assert.match(log, /listening on http:\/\/127\.0\.0\.1:\d+ \(2 workers, store redis:\/\/127\.0\.0\.1:\d+/,
                `${name}.log`);
        }
    });

    test('the generator publishes consecutive numbers through nginx, to both nodes', T, async () => {
        await waitUntil(() => generatorLog(ex).filter((g) => g.ok).length >= 10, {
            ms: 20000, what: 'ten publishes from the generator', describe: () => JSON.stringify(generatorLog(ex)),
        });
        const log = generatorLog(ex);
        assert.deepEqual(log.map((g) => g.n), log.map((_, i) => i + 1), 'N counts the attempts from 1');
        const acked = log.filter((g) => g.ok);
        for (let i = 1; i < acked.length; i++) {
            assert.ok(cmpId(acked[i - 1].id, acked[i].id) < 0, `ids go up: ${acked[i - 1].id}, ${acked[i].id}`);
        }
        // Each node's own count of publishes it was sent: nginx alternates.
        for (const name of NODES) {
            const m = await getMetrics(nodeUrl(ex, name));
            const published = m.sum('herald_events_published_total');
            assert.ok(published >= 2, `${name} got ${published} of the generator's publishes`);
        }
    });

    test('a subscriber whose node is killed resumes on the other: nothing missing, nothing twice', T, async () => {
        const sub = resumingSubscriber(ex.url, 'counter');
        try {
            await waitUntil(() => sub.events().length >= BEFORE_KILL, {
                ms: 20000, what: `${BEFORE_KILL} events on the first connection`,
                describe: () => JSON.stringify({ segments: sub.segments.length, refused: sub.refused }),
            });
            const first = sub.segments[0];
            assert.ok(NODES.includes(first.node), `the stream's X-Herald-Node: ${first.node}`);
            assert.equal(first.sent, null);
            const victim = first.node;
            const survivor = NODES.find((n) => n !== victim);
            const pid = pidFile(ex, victim);
            assert.equal(pid, ex.nodes[victim].pid, `${victim}.pid`);

            const killedAt = Date.now();
            process.kill(pid, 'SIGKILL');
            const seenAtKill = sub.events().length;
            await waitUntil(() => sub.segments.length >= 2 && sub.events().length >= seenAtKill + AFTER_KILL, {
                ms: 20000, what: `the subscriber to reconnect and see ${AFTER_KILL} more events`,
                describe: () => JSON.stringify({
                    segments: sub.segments.map((s) => [s.node, s.sent, s.stream.events.length]),
                    refused: sub.refused,
                }),
            });
            const second = sub.segments[1];
            assert.equal(second.node, survivor, 'the reconnection landed on the node still running');
            assert.equal(second.sent, first.stream.events.at(-1).id, 'it resumed with the last id it had');
            assert.equal(second.answered, second.sent, 'the surviving node knew that id (it answered Last-Event-ID with it)');
            const movedMs = Date.now() - killedAt;

            // What the subscriber got, against what the topic holds, read in full from the
            // node that stayed up.
            const got = sub.events().slice();
            const lastId = got.at(-1).id;
            const history = await historyUpTo(nodeUrl(ex, survivor), 'counter', lastId);
            const from = history.findIndex((e) => e.id === got[0].id);
            assert.ok(from >= 0, `the history has no id ${got[0].id}`);
            const pick = (e) => ({ id: e.id, data: e.data });
            assert.deepEqual(got.map(pick), history.slice(from).map(pick),
                'the subscriber got exactly the topic\'s events from its first to its last, once each, in order');
            const numbers = got.map(numberOf);
            for (let i = 1; i < got.length; i++) {
                assert.ok(cmpId(got[i - 1].id, got[i].id) < 0, `ids in order: ${got[i - 1].id} then ${got[i].id}`);
                assert.ok(numbers[i - 1] < numbers[i], `numbers in order: ${numbers[i - 1]} then ${numbers[i]}`);
            }

            // Every publish the generator got a 200 for, within that range, is there once,
            // under the id it was answered with; a failed one is not there or there once.
            const byNumber = new Map(got.map((e, i) => [numbers[i], e]));
            const log = await generatorLogUpTo(ex, numbers.at(-1));
            const inRange = log.filter((g) => g.n >= numbers[0] && g.n <= numbers.at(-1));
            for (const g of inRange) {
                if (g.ok) {
                    assert.ok(byNumber.has(g.n), `acknowledged event #${g.n} (id ${g.id}) is missing`);
                    assert.equal(byNumber.get(g.n).id, g.id, `event #${g.n}'s id`);
                }
            }
            const failed = inRange.filter((g) => !g.ok);
            const acked = inRange.filter((g) => g.ok).length;
            assert.equal(got.length, acked + failed.filter((g) => byNumber.has(g.n)).length,
                'events that are neither acknowledged nor a failed attempt');
            // A publish in flight through nginx when its node died may have failed; any other
            // failure is a bug (nginx passes a refused connection on to the other node).
            assert.ok(failed.length <= 2, `failed publishes: ${JSON.stringify(failed)}`);
            console.log(`killed ${victim}; the subscriber moved to ${survivor} and saw ` +
                `${AFTER_KILL} more events within ${movedMs} ms; ${got.length} events checked, ` +
                `${failed.length} publish(es) failed around the kill`);

            // run.sh says so, and starts the node again.
            await waitUntil(() => new RegExp(`run\\.sh: ${victim} \\(pid ${pid}\\) exited`).test(ex.output()), {
                ms: 5000, what: 'run.sh to report the killed node', describe: () => ex.output(),
            });
            const again = await waitUntil(() => restartedPid(ex, victim, [pid]), {
                ms: 25000, what: `run.sh to restart ${victim}`, describe: () => ex.output(),
            });
            assert.notEqual(again, pid);
            assert.equal(pidFile(ex, victim), again, `${victim}.pid after the restart`);
            const restarted = identity(again, `${victim}, restarted`);
            ex.nodes[victim] = restarted;
            ex.all.push(restarted);
            const r = await request(`${nodeUrl(ex, victim)}/readyz`);
            assert.equal(r.status, 200);
            assert.equal(r.headers['x-herald-node'], victim);
        } finally {
            await sub.close();
        }
    });

    test('the page shows its node and the events, and moves with them when that node is killed', T, async () => {
        browser = await launchBrowser();
        const page = await browser.newPage();
        await page.goto(`${ex.url}/`);
        const state = () => page.evaluate(() => ({
            node: document.getElementById('node').dataset.node,
            state: document.getElementById('state').dataset.state,
            events: [...document.querySelectorAll('#events li')].map((li) => ({
                id: li.dataset.id, n: Number(li.dataset.n), node: li.dataset.node,
            })).reverse(),
            moves: [...document.querySelectorAll('#moves li')].map((li) => ({ kind: li.className, text: li.textContent })).reverse(),
            dups: document.getElementById('dups').textContent,
            disorder: document.getElementById('disorder').textContent,
        }));
        const first = await waitUntil(async () => {
            const s = await state();
            return NODES.includes(s.node) && s.events.length >= 5 && s;
        }, { ms: 20000, what: 'the page to show its node and five events', describe: async () => JSON.stringify(await state()) });
        assert.equal(first.state, 'live');
        assert.match(first.moves[0].text, new RegExp(`connected to ${first.node}`));
        assert.ok(first.events.every((e) => e.node === first.node));
        await screenshot(page, 'example-cluster-page');

        // Kill the page's node: the page moves to the other one and goes on.
        const victim = first.node;
        const survivor = NODES.find((n) => n !== victim);
        const pid = pidFile(ex, victim);
        assert.ok(pid, `no ${victim}.pid`);
        process.kill(pid, 'SIGKILL');
        const atKill = (await state()).events.length;
        const moved = await waitUntil(async () => {
            const s = await state();
            return s.node === survivor && s.events.length >= atKill + 10 && s;
        }, { ms: 20000, what: `the page to move to ${survivor} and show ten more events`, describe: async () => JSON.stringify(await state()) });
        assert.ok(moved.moves.some((m) => m.kind === 'moved' &&
            m.text.includes(`moved from ${victim} to ${survivor}, resuming after id`)), JSON.stringify(moved.moves));
        assert.equal(moved.dups, '0', 'the page saw an event twice');
        assert.equal(moved.disorder, '0', 'the page saw events out of order');
        // The numbers it shows: every acknowledged publish in its range, once, in order.
        const ns = moved.events.map((e) => e.n);
        const log = await generatorLogUpTo(ex, ns.at(-1));
        const acked = log.filter((g) => g.ok && g.n >= ns[0] && g.n <= ns.at(-1)).map((g) => g.n);
        for (const n of acked) assert.ok(ns.includes(n), `the page misses acknowledged event #${n}`);
        const failed = log.filter((g) => !g.ok && g.n >= ns[0] && g.n <= ns.at(-1));
        assert.ok(failed.length <= 2, `failed publishes: ${JSON.stringify(failed)}`);
        assert.deepEqual(ns, [...new Set(ns)].sort((a, b) => a - b));
        await screenshot(page, 'example-cluster-page-moved');
        // A stream cut by a killed node is the page's business, not an error.
        assert.deepEqual(page.errors.filter((e) => e.startsWith('uncaught')), []);
        await page.close();

        const again = await waitUntil(() => restartedPid(ex, victim, [pid, ...ex.all.map((p) => p.pid)]), {
            ms: 25000, what: `run.sh to restart ${victim}`, describe: () => ex.output(),
        });
        const restarted = identity(again, `${victim}, restarted`);
        ex.nodes[victim] = restarted;
        ex.all.push(restarted);
    });

    test('Ctrl-C (SIGINT) to run.sh stops everything, exits 0 and removes the work dir', T, async () => {
        await interruptExample(ex);
    });
});

describe('REDIS_PERSISTENCE', () => {
    // A Redis command on a fresh connection, inline form; resolves to the raw reply.
    function redisCommand(port, command) {
        return new Promise((resolve, reject) => {
            const sock = net.connect(port, '127.0.0.1');
            let data = '';
            sock.on('connect', () => sock.write(`${command}\r\n`));
            sock.on('data', (d) => {
                data += d;
                // CONFIG GET answers a two-element array: *2, two bulk strings.
                if ((data.match(/\r\n/g) ?? []).length >= 5) { sock.destroy(); resolve(data); }
            });
            sock.on('error', reject);
            setTimeout(() => { sock.destroy(); reject(new Error(`no answer to ${command}: ${data}`)); }, 5000);
        });
    }

    test('always: Redis runs with appendonly yes and appendfsync always; the events are in its AOF', T, async () => {
        const ex = await startExample({ env: { REDIS_PERSISTENCE: 'always', INTERVAL: '0.5' } });
        try {
            assert.match(ex.output(), /persistence: always/);
            assert.match(await redisCommand(ex.ports.redis, 'CONFIG GET appendonly'), /\r\nyes\r\n$/);
            assert.match(await redisCommand(ex.ports.redis, 'CONFIG GET appendfsync'), /\r\nalways\r\n$/);
            assert.match(await redisCommand(ex.ports.redis, 'CONFIG GET save'), /\r\n\$0\r\n\r\n$/);
            await waitUntil(() => generatorLog(ex).some((g) => g.ok), { ms: 15000, what: 'a publish' });
            const dir = path.join(ex.workdir, 'redis', 'appendonlydir');
            const aof = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'latin1')).join('');
            assert.match(aof, /"n":1,"time"/, 'the first event is not in the AOF files');
            await interruptExample(ex);
        } finally {
            await forceStop(ex);
        }
    });
});

describe('run.sh refuses clearly', () => {
    let taken;
    before(async () => {
        taken = net.createServer((c) => c.destroy());
        taken.listen(0, '127.0.0.1');
        await new Promise((resolve) => taken.on('listening', resolve));
    });
    after(() => taken?.close());

    const refusal = (name, expected, make) => test(name, T, async () => {
        const r = await runExpectingFailure(await make());
        assert.equal(r.code, 1, `run.sh exited with ${r.code}:\n${r.output}`);
        assert.match(r.output, expected);
        assert.deepEqual(r.tmpLeft, [], 'run.sh left files in its TMPDIR');
        assert.doesNotMatch(r.output, /run\.sh: ready at/);
    });

    refusal('a REDIS_SERVER that does not exist',
        /run\.sh: REDIS_SERVER=\/nonexistent\/redis-server: no such executable file/,
        () => ({ env: { REDIS_SERVER: '/nonexistent/redis-server' } }));
    refusal("Redis's port already taken",
        /run\.sh: 127\.0\.0\.1:\d+ \(REDIS_PORT\) is already in use/,
        async () => ({ ports: { ...await anyPorts(), redis: taken.address().port } }));
    refusal('two services given one port',
        /run\.sh: NODE_A_PORT and NODE_B_PORT are both \d+/,
        async () => {
            const ports = await anyPorts();
            return { ports: { ...ports, 'node-b': ports['node-a'] } };
        });
    refusal('an unknown REDIS_PERSISTENCE',
        /run\.sh: REDIS_PERSISTENCE=sometimes: expected none, rdb, everysec or always/,
        () => ({ env: { REDIS_PERSISTENCE: 'sometimes' } }));
    refusal('a herald without a Redis store, or one that cannot reach it',
        /fake herald: cannot start[\s\S]*run\.sh: node-a \(pid \d+\) exited with status 3 before it was ready/,
        () => {
            const fake = path.join(scratch, 'fake-herald');
            fs.writeFileSync(fake, '#!/bin/sh\necho "fake herald: cannot start" >&2\nexit 3\n', { mode: 0o755 });
            return { env: { HERALD_BIN: fake } };
        });
});
