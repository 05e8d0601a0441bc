// The runnable examples in a real browser (Debian's Chromium through playwright-core)
// against the real binary: examples/chat (history, live posts once, rooms apart, text
// never markup, room switching, the 500-message cap, resuming across a hub restart, auth
// with a token and without), examples/clock through its run.sh (ticks, the online count
// from $sys/connections, SIGTERM and Ctrl-C leaving no process behind, a missing binary)
// and examples/client.js pasted into a page of the hub's origin.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HERALD_BIN, request, startHerald } from './lib/harness.mjs';
import { closedPort, publishOk, spawnHerald, subscribe, uniqueTopic, waitData, waitUntil, withTimeout } from './lib/util.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const CHAT_DIR = path.join(ROOT, 'examples', 'chat');
const CLOCK_RUN = path.join(ROOT, 'examples', 'clock', 'run.sh');
const CLIENT_JS = path.join(ROOT, 'examples', 'client.js');
const T = { timeout: 60000 };

let browser;
const cleanups = []; // run in `after`, last first, whatever happened

before(async () => {
    browser = await launchBrowser();
});

after(async () => {
    for (const fn of cleanups.reverse()) {
        await fn().catch((e) => console.error(`cleanup failed: ${e.message}`));
    }
    await browser?.close();
});

// Starts herald (startHerald's options) and stops it after the file's tests.
async function hub(opts) {
    const h = await startHerald(opts);
    cleanups.push(() => h.stop());
    return h;
}

async function newPage() {
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    return page;
}

// ---------------------------------------------------------------------------------------
// The chat page, read through its DOM.

const messages = (page) => page.$$eval('#messages .message', (items) => items.map((li) => ({
    id: li.dataset.id,
    name: li.querySelector('.name').textContent,
    text: li.querySelector('.text').textContent,
    mine: li.classList.contains('mine'),
})));
const texts = async (page) => (await messages(page)).map((m) => m.text);
const stateOf = (page) => page.$eval('#state', (el) => el.dataset.state);
const noticeOf = (page) => page.$eval('#notice', (el) => (el.hidden ? '' : el.textContent));

// Waits until `pred(texts)` holds on the page's message list.
async function waitTexts(page, pred, what, ms = 8000) {
    return waitUntil(async () => {
        const t = await texts(page);
        return pred(t) ? t : null;
    }, { ms, what: `the chat page to show ${what}`, describe: async () => JSON.stringify(await texts(page)) });
}

async function waitState(page, state, ms = 8000) {
    await waitUntil(async () => (await stateOf(page)) === state,
        { ms, what: `the chat page's state to be "${state}"`, describe: () => stateOf(page) });
}

const count = (list, text) => list.filter((t) => t === text).length;

function chatMessage(room, text, name = 'alice') {
    return { topic: room, data: { text, room, name } };
}

async function joinByForm(page, room) {
    await page.fill('#room-input', room);
    await page.press('#room-input', 'Enter');
}

async function post(page, text) {
    await page.fill('#text-input', text);
    await page.press('#text-input', 'Enter');
}

describe('examples/chat', () => {
    let h;
    before(async () => {
        h = await hub({ args: ['--static', CHAT_DIR] });
    });

    test('history in order, a post reaches another page once, rooms kept apart, text is text', T, async () => {
        const room = uniqueTopic('room');
        const other = `${uniqueTopic('room')} café & co`; // a name that needs encoding
        for (const n of [1, 2, 3]) await publishOk(h.url, chatMessage(room, `history ${n}`), { json: true });
        for (const n of [1, 2]) await publishOk(h.url, chatMessage(other, `other ${n}`, 'carol'), { json: true });

        // Page A joins through the deep link, page B through the form.
        const a = await newPage();
        await a.goto(`${h.url}/#room=${encodeURIComponent(room)}`);
        await waitTexts(a, (t) => t.length >= 3, 'the 3 retained messages');
        await waitState(a, 'live');
        const shown = await messages(a);
        assert.deepEqual(shown.map((m) => m.text), ['history 1', 'history 2', 'history 3']);
        assert.deepEqual(shown.map((m) => m.name), ['alice', 'alice', 'alice']);
        assert.equal(await a.$eval('#room-title', (el) => el.textContent), `# ${room}`);

        const b = await newPage();
        await b.goto(`${h.url}/`);
        await joinByForm(b, room);
        await waitTexts(b, (t) => t.length >= 3, 'the history after joining by the form');
        await waitState(b, 'live');
        assert.match(await b.evaluate(() => location.hash), new RegExp(`room=${encodeURIComponent(room)}`));

        // A post from B, with markup in it: both pages show it once, as text.
        const watcher = await subscribe(h.url, [room]);
        cleanups.push(async () => watcher.close());
        const tricky = 'hi <b>bold</b> <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> & "q"';
        await b.fill('#name-input', 'bob');
        await post(b, tricky);
        const parsed = (e) => { try { return JSON.parse(e.data); } catch { return null; } };
        const published = await waitUntil(() => watcher.events.find((e) => parsed(e)?.text === tricky),
            { what: 'the page\'s post to reach a subscriber', describe: () => JSON.stringify(watcher.events) });
        assert.deepEqual(JSON.parse(published.data), { text: tricky, room, name: 'bob' },
            'the page publishes {"text", "room", "name"} on the room\'s topic');
        await waitTexts(a, (t) => t.includes(tricky), 'page B\'s post on page A');
        await waitTexts(b, (t) => t.includes(tricky), 'page B\'s post on page B');
        // Anything still in flight arrives before this marker.
        await publishOk(h.url, chatMessage(room, 'marker 1'), { json: true });
        for (const page of [a, b]) {
            const t = await waitTexts(page, (x) => x.includes('marker 1'), 'marker 1');
            assert.equal(count(t, tricky), 1, `the post shows ${count(t, tricky)} times`);
            assert.equal(await page.$$eval('#messages b, #messages img, #messages script', (els) => els.length), 0,
                'user text was turned into markup');
            assert.equal(await page.evaluate(() => window.__pwned), undefined, 'user text ran as script');
        }
        // Once the hub answered the post, page B marks it as its own and clears the field.
        const onB = await waitUntil(async () => (await messages(b)).find((m) => m.text === tricky && m.mine),
            { what: 'page B to mark its own post', describe: async () => JSON.stringify(await messages(b)) });
        assert.equal(onB.name, 'bob');
        assert.equal((await messages(a)).find((m) => m.text === tricky).mine, false);
        await waitUntil(async () => (await b.inputValue('#text-input')) === '',
            { what: 'the message field to be cleared after sending' });

        // Another room's message never shows.
        await publishOk(h.url, chatMessage(other, 'other live', 'carol'), { json: true });
        await publishOk(h.url, chatMessage(room, 'marker 2'), { json: true });
        const t2 = await waitTexts(a, (x) => x.includes('marker 2'), 'marker 2');
        assert.ok(!t2.includes('other live'), 'a message of another room showed up');
        assert.deepEqual(t2, ['history 1', 'history 2', 'history 3', tricky, 'marker 1', 'marker 2']);

        // Switching rooms: the other room's history, and nothing more from the old one.
        await joinByForm(a, other);
        await waitTexts(a, (t) => t.length === 3 && t[0] === 'other 1', 'the other room\'s history');
        await waitState(a, 'live');
        assert.deepEqual(await texts(a), ['other 1', 'other 2', 'other live']);
        const hash = await a.evaluate(() => location.hash.slice(1));
        assert.equal(new URLSearchParams(hash).get('room'), other, `the address names the room: #${hash}`);
        await publishOk(h.url, chatMessage(room, 'left behind'), { json: true });
        await publishOk(h.url, chatMessage(other, 'marker 3', 'carol'), { json: true });
        const t3 = await waitTexts(a, (x) => x.includes('marker 3'), 'marker 3');
        assert.ok(!t3.includes('left behind'), 'the old room\'s stream was not closed');
        // The hub agrees: the first room has page B and the node watcher, the other page A.
        const subscribers = async () => {
            const body = JSON.parse((await request(`${h.url}/topics`)).body);
            return Object.fromEntries(body.topics.map((x) => [x.topic, x.subscribers]));
        };
        await waitUntil(async () => {
            const subs = await subscribers();
            return subs[room] === 2 && subs[other] === 1;
        }, { what: `2 subscribers on ${room} and 1 on ${other}`, describe: async () => JSON.stringify(await subscribers()) });

        // A suggested room is one click away.
        await a.click('.chip[data-room="random"]');
        await waitState(a, 'live');
        assert.equal(await a.$eval('#room-title', (el) => el.textContent), '# random');
        // And a changed address (a followed link) joins the room it names.
        await a.evaluate((r) => { location.hash = `#room=${encodeURIComponent(r)}`; }, other);
        await waitTexts(a, (t) => t[0] === 'other 1' && t.includes('marker 3'), 'the room named by the new address');
        assert.equal(await a.$eval('#room-title', (el) => el.textContent), `# ${other}`);

        await b.evaluate(() => { document.querySelector('#messages').scrollTop = 0; });
        await screenshot(b, 'examples-chat');
        await b.setViewportSize({ width: 390, height: 760 });
        await screenshot(b, 'examples-chat-phone');
        assert.deepEqual(a.errors, [], 'page A ran clean');
        assert.deepEqual(b.errors, [], 'page B ran clean');
    });

    test('the page keeps the last 500 messages', T, async () => {
        const room = uniqueTopic('busy');
        for (let n = 1; n <= 510; n++) await publishOk(h.url, chatMessage(room, `m${n}`), { json: true });
        const page = await newPage();
        await page.goto(`${h.url}/#room=${encodeURIComponent(room)}`);
        const t = await waitTexts(page, (x) => x.at(-1) === 'm510', 'the last of 510 messages', 15000);
        assert.equal(t.length, 500);
        assert.equal(t[0], 'm11');
        assert.deepEqual(page.errors, []);
    });

    test('after the hub restarts, the page resumes: what it missed once, nothing twice', T, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chat-'));
        cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
        const db = path.join(dir, 'chat.db');
        const env = { HERALD_SERVER_RETRY_MS: '300' }; // the page's EventSource comes back fast
        const argv = (port) => ['serve', '--host', '127.0.0.1', '--port', String(port), '--threads', '2',
            '--static', CHAT_DIR, '--store', `sqlite:${db}`];
        let current = await spawnHerald(argv(0), { env });
        cleanups.push(() => current.stop());
        const { port, url } = current;
        const room = uniqueTopic('durable');
        await publishOk(url, chatMessage(room, 'before 1'), { json: true });
        await publishOk(url, chatMessage(room, 'before 2'), { json: true });

        const page = await newPage();
        await page.goto(`${url}/#room=${encodeURIComponent(room)}`);
        await waitTexts(page, (t) => t.length >= 2, 'the history');
        await waitState(page, 'live');

        assert.equal(await current.stop(), 0, 'herald stopped cleanly');
        await waitState(page, 'reconnecting');
        // While the page is away, a message is published (through a hub on another port,
        // on the same database): the page can only get it by resuming.
        const elsewhere = await spawnHerald(argv(0), { env });
        try {
            await publishOk(elsewhere.url, chatMessage(room, 'while away'), { json: true });
        } finally {
            assert.equal(await elsewhere.stop(), 0);
        }
        current = await spawnHerald(argv(port), { env });
        await waitState(page, 'live', 10000);
        await waitTexts(page, (t) => t.includes('while away'), 'the message published while it was away');
        await publishOk(url, chatMessage(room, 'after'), { json: true });
        const t = await waitTexts(page, (x) => x.includes('after'), 'a live message after the restart');
        assert.deepEqual(t, ['before 1', 'before 2', 'while away', 'after']);
        const ids = (await messages(page)).map((m) => m.id);
        assert.equal(new Set(ids).size, ids.length, `an id shows twice: ${ids}`);
        // Chromium logs the refused connections while the hub was down; nothing else.
        const unexpected = page.errors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(e));
        assert.deepEqual(unexpected, []);
    });

    test('with AUTH_TOKEN: a #token joins and posts; without one the page says why', T, async () => {
        // The page comes from an open hub (h), the stream and the posts from a hub with
        // auth on that lets h's origin call it (CORS): with AUTH_TOKEN the hub would ask a
        // token for the page's own files too.
        const guarded = await hub({ env: { AUTH_TOKEN: 'secret', HERALD_SERVER_CORS_ORIGINS: h.url } });
        const room = uniqueTopic('guarded');
        await publishOk(guarded.url, chatMessage(room, 'guarded history'),
            { json: true, headers: { Authorization: 'Bearer secret' } });
        const base = `${h.url}/#hub=${encodeURIComponent(guarded.url)}&room=${encodeURIComponent(room)}`;

        const ok = await newPage();
        await ok.goto(`${base}&token=secret`);
        await waitTexts(ok, (t) => t.length >= 1, 'the history from the guarded hub');
        await waitState(ok, 'live');
        await post(ok, 'with a token');
        await waitTexts(ok, (t) => t.includes('with a token'), 'the post through the guarded hub');
        assert.deepEqual(await texts(ok), ['guarded history', 'with a token']);
        assert.equal(await noticeOf(ok), '');
        assert.deepEqual(ok.errors, []);

        const refused = await newPage();
        await refused.goto(base);
        await waitState(refused, 'offline');
        const why = await waitUntil(async () => noticeOf(refused), { what: 'the page to explain the refusal' });
        assert.match(why, /401/, why);
        assert.match(why, /this hub needs a token/, `herald's error sentence is shown: ${why}`);
        assert.match(why, /#token=/, `the page says how to give a token: ${why}`);
        await post(refused, 'no token');
        const sendWhy = await waitUntil(async () => {
            const n = await noticeOf(refused);
            return n.startsWith('Could not send') ? n : null;
        }, { what: 'the page to show the refused post', describe: () => noticeOf(refused) });
        assert.match(sendWhy, /Could not send \(401\): this hub needs a token/);
        assert.deepEqual(await texts(refused), []);
        await screenshot(refused, 'examples-chat-no-token');
        // Only the refused requests themselves are logged as errors.
        assert.deepEqual(refused.errors.filter((e) => !/401|Unauthorized/.test(e)), []);
    });
});

// ---------------------------------------------------------------------------------------
// The clock, started through its run.sh.

// pid -> { ppid, stat, comm } for every process.
function processTable() {
    const out = execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,comm='], { encoding: 'utf8' });
    const table = new Map();
    for (const line of out.split('\n')) {
        const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
        if (m) table.set(Number(m[1]), { ppid: Number(m[2]), stat: m[3], comm: m[4] });
    }
    return table;
}

function descendants(pid, table = processTable()) {
    const found = new Map();
    const walk = (p) => {
        for (const [child, info] of table) {
            if (info.ppid === p && !found.has(child)) {
                found.set(child, info);
                walk(child);
            }
        }
    };
    walk(pid);
    return found;
}

// Processes of `pids` still running (a zombie nobody reaps counts: it was left behind).
const survivors = (pids) => {
    const table = processTable();
    return [...pids].filter((p) => table.has(p)).map((p) => `${p} ${table.get(p).comm} (${table.get(p).stat})`);
};

// The environment without what would change how herald starts (auth, port).
function cleanEnv() {
    const env = { ...process.env };
    for (const k of ['PORT', 'AUTH_TOKEN', 'AUTH_TOKEN_FILE']) delete env[k];
    return env;
}

// Starts examples/clock/run.sh on a free port; resolves once herald listens.
async function startClock({ detached = false } = {}) {
    const port = await closedPort();
    const proc = spawn(CLOCK_RUN, [], {
        env: { ...cleanEnv(), PORT: String(port), HERALD_BIN: path.resolve(HERALD_BIN) },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached,
    });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
    // Whatever happens, nothing of it outlives the suite.
    cleanups.push(async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const family = descendants(proc.pid);
        proc.kill('SIGTERM');
        await withTimeout(exited, 5000, 'run.sh to exit').catch(() => {
            for (const p of [proc.pid, ...family.keys()]) {
                try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
            }
        });
    });
    await waitUntil(() => new RegExp(`listening on http://\\S+:${port}\\b`).test(out) || proc.exitCode !== null,
        { ms: 15000, what: `run.sh to start herald on port ${port}`, describe: () => JSON.stringify(out) });
    assert.equal(proc.exitCode, null, `run.sh exited early: ${out}`);
    return { port, url: `http://127.0.0.1:${port}`, proc, exited, output: () => out };
}

// Waits for the ticker and herald to appear under run.sh, and returns every pid seen
// under it over more than a tick (the ticker's `sleep` and `date` come and go).
async function familyOf(proc) {
    const seen = new Map();
    const deadline = Date.now() + 1300;
    while (Date.now() < deadline) {
        for (const [p, info] of descendants(proc.pid)) seen.set(p, info);
        await new Promise((r) => setTimeout(r, 100));
    }
    const comms = [...seen.values()].map((i) => i.comm);
    assert.ok(comms.some((c) => c.startsWith(path.basename(HERALD_BIN).slice(0, 15))),
        `no herald under run.sh: ${JSON.stringify(comms)}`);
    assert.ok(comms.includes('sleep'), `no ticker (sleep) under run.sh: ${JSON.stringify(comms)}`);
    return seen;
}

const refusesConnections = (port) => new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => { sock.destroy(); resolve(false); });
    sock.on('error', () => resolve(true));
});

describe('examples/clock', () => {
    const timeOf = (page) => page.$eval('#time', (el) => el.getAttribute('datetime'));
    const onlineOf = (page) => page.$eval('#online', (el) => el.textContent);

    test('run.sh serves the page: ticks close to now, the online count follows the pages, SIGTERM leaves nothing', T, async () => {
        const clock = await startClock();
        const page = await newPage();
        await page.goto(`${clock.url}/`);

        const ticks = [];
        for (let i = 0; i < 3; i++) {
            const t = await waitUntil(async () => {
                const v = await timeOf(page);
                return v && (ticks.length === 0 || Date.parse(v) > Date.parse(ticks.at(-1))) ? v : null;
            }, { ms: 5000, what: `tick ${i + 1} on the page`, describe: () => timeOf(page) });
            ticks.push(t);
            assert.ok(Math.abs(Date.parse(t) - Date.now()) < 5000, `the page shows ${t}, now is ${new Date().toISOString()}`);
        }
        assert.equal(await page.$eval('#time', (el) => el.textContent), ticks.at(-1).slice(11, 19));

        const online = (page2, n) => waitUntil(async () => (await onlineOf(page2)) === String(n),
            { ms: 5000, what: `the online count to read ${n}`, describe: () => onlineOf(page2) });
        await online(page, 1);
        const second = await newPage();
        await second.goto(`${clock.url}/`);
        await online(page, 2);
        await online(second, 2);
        await second.close();
        await online(page, 1);
        assert.equal(await page.$eval('#state', (el) => el.dataset.state), 'live');
        await screenshot(page, 'examples-clock');
        assert.deepEqual(page.errors, []);
        assert.deepEqual(second.errors, []);
        await page.close();

        const family = await familyOf(clock.proc);
        clock.proc.kill('SIGTERM');
        const code = await withTimeout(clock.exited, 6000, 'run.sh to exit after SIGTERM');
        assert.equal(code, 0, `run.sh exit status after SIGTERM: ${clock.output()}`);
        assert.match(clock.output(), /SIGTERM: shutting down/);
        await waitUntil(() => survivors(family.keys()).length === 0,
            { ms: 2000, what: 'herald and the ticker to be gone', describe: () => survivors(family.keys()).join(', ') });
        assert.ok(await refusesConnections(clock.port), 'something still listens on the port');
    });

    test('Ctrl-C (SIGINT to the process group) stops everything too', T, async () => {
        const clock = await startClock({ detached: true });
        const family = await familyOf(clock.proc);
        process.kill(-clock.proc.pid, 'SIGINT'); // what a terminal does on Ctrl-C
        const code = await withTimeout(clock.exited, 6000, 'run.sh to exit after Ctrl-C');
        assert.equal(code, 0, `run.sh exit status after Ctrl-C: ${clock.output()}`);
        await waitUntil(() => survivors(family.keys()).length === 0,
            { ms: 2000, what: 'herald and the ticker to be gone', describe: () => survivors(family.keys()).join(', ') });
        assert.ok(await refusesConnections(clock.port), 'something still listens on the port');
    });

    test('run.sh says so when there is no herald binary', T, () => {
        const r = spawnSync(CLOCK_RUN, [], {
            env: { ...process.env, HERALD_BIN: '/nonexistent/herald' }, encoding: 'utf8', timeout: 10000,
        });
        assert.equal(r.status, 127, `exit status ${r.status}: ${r.stderr}`);
        assert.match(r.stderr, /no herald binary found at \/nonexistent\/herald/);
        assert.match(r.stderr, /HERALD_BIN/);
    });
});

// ---------------------------------------------------------------------------------------
// examples/client.js, pasted into a page of the hub's origin.

describe('examples/client.js', () => {
    test('logs events, publishes, survives a second paste and stops', T, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-console-'));
        cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
        fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><link rel="icon" href="data:,"><title>hub origin</title><p>a page of the hub</p>');
        const h = await hub({ args: ['--static', dir] });
        const topic = uniqueTopic('console');
        const source = fs.readFileSync(CLIENT_JS, 'utf8');
        const snippet = source.replace(/const TOPIC = '[^']*';/, `const TOPIC = ${JSON.stringify(topic)};`);
        assert.notEqual(snippet, source, 'client.js has no `const TOPIC = \'...\';` line to set');

        const page = await newPage();
        const logs = [];
        page.on('console', (m) => logs.push(m));
        const logged = (prefix) => logs.filter((m) => m.text().startsWith(prefix));
        const waitLog = (prefix, n = 1) => waitUntil(() => (logged(prefix).length >= n ? logged(prefix) : null),
            { ms: 5000, what: `${n} console line(s) starting ${JSON.stringify(prefix)}`,
              describe: () => JSON.stringify(logs.map((m) => m.text())) });
        await page.goto(`${h.url}/`);
        await page.addScriptTag({ content: snippet });
        await waitLog('[herald] live');

        const watcher = await subscribe(h.url, [topic]);
        cleanups.push(async () => watcher.close());
        const id1 = await publishOk(h.url, { topic, data: { n: 1, s: 'x' } }, { json: true });
        const [line1] = await waitLog(`[herald] message #${id1}`);
        assert.deepEqual(await line1.args()[1].jsonValue(), { n: 1, s: 'x' }, 'JSON data is logged parsed');
        const id2 = await publishOk(h.url, { topic, data: 'plain words' });
        const [line2] = await waitLog(`[herald] message #${id2}`);
        assert.equal(await line2.args()[1].jsonValue(), 'plain words');

        const pageId = await page.evaluate(() => window.herald.publish({ from: 'the page' }));
        const got = await waitData(watcher, '{"from":"the page"}');
        assert.equal(got.id, pageId, 'herald.publish resolves to the event id');
        const refused = await page.evaluate(() => window.herald.publish('x', { topic: '$sys/nope' })
            .then(() => 'published', (e) => e.message));
        assert.match(refused, /publish failed: 403 .*system topic/);

        // A second paste replaces the first stream and declares nothing twice.
        await page.addScriptTag({ content: snippet });
        await waitLog('[herald] live', 2);
        assert.equal(logged('[herald] stopped').length, 1, 'the second paste stops the first stream');
        const id3 = await publishOk(h.url, { topic, data: 'once' });
        await waitLog(`[herald] message #${id3}`);
        const id4 = await publishOk(h.url, { topic, data: 'marker' });
        await waitLog(`[herald] message #${id4}`);
        assert.equal(logged(`[herald] message #${id3}`).length, 1, 'after two pastes an event is logged once');

        await page.evaluate(() => window.herald.stop());
        assert.equal(await page.evaluate(() => window.herald.source.readyState), 2, 'stop() closes the EventSource');
        await waitUntil(async () => {
            const topics = JSON.parse((await request(`${h.url}/topics`)).body).topics;
            return topics.find((x) => x.topic === topic)?.subscribers === 1;
        }, { what: 'the hub to see the page\'s stream closed (only the node watcher left)' });
        // Only the refused publish is logged as an error.
        assert.deepEqual(page.errors.filter((e) => !/403|Forbidden/.test(e)), []);
    });
});
