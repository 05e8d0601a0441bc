// The dashboard at /dashboard/: its files as compiled into the binary, the $sys/stats feed
// it charts, and the page itself driven in headless Chromium (subscribe, publish with the
// form, see the event; auth on; a hub restart seen as a reconnect with no gap and no
// duplicate). Screenshots are saved to build/artifacts/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startHerald, request, publish, openStream, sleep } from './lib/harness.mjs';
import {
    assertJsonError, subscribe, waitEvents, waitData, publishOk, uniqueTopic, waitUntil,
    getMetrics, spawnHerald, rawRequest,
} from './lib/util.mjs';
import { cleanEnv, makeTempDir, writeConfig, tokenEntry, bearer } from './lib/auth.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const WEB = new URL('../../src/dashboard/web/', import.meta.url).pathname;
const STATS = '$sys/stats';
const FIELDS = ['time', 'uptimeSeconds', 'connections', 'subscribers', 'published', 'delivered',
    'inPerSecond', 'outPerSecond', 'bytesOutPerSecond', 'queuedBytes', 'slowDisconnects', 'rejected'];

// ---------------------------------------------------------------------------------------
// The files.

describe('dashboard files', () => {
    let h;
    let cwd;
    before(async () => {
        // Started from an empty folder: nothing is read from disk at run time.
        cwd = makeTempDir('herald-dash-cwd-');
        const home = process.cwd();
        process.chdir(cwd); // the child starts there
        try {
            h = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', '0'], { env: cleanEnv() });
        } finally {
            process.chdir(home);
        }
    });
    after(async () => {
        assert.equal(await h.stop(), 0);
        fs.rmSync(cwd, { recursive: true, force: true });
    });

    test('every file of src/dashboard/web is served byte for byte, with its type', async () => {
        const types = { '.html': /^text\/html/, '.js': /^text\/javascript/, '.css': /^text\/css/ };
        const names = fs.readdirSync(WEB);
        assert.ok(names.includes('index.html') && names.includes('app.js'), `unexpected folder: ${names}`);
        for (const name of names) {
            const r = await request(`${h.url}/dashboard/${name}`);
            assert.equal(r.status, 200, `${name}: ${r.status}`);
            assert.equal(r.body, fs.readFileSync(path.join(WEB, name), 'utf8'), `${name} differs from the source`);
            assert.match(r.headers['content-type'], types[path.extname(name)], name);
            assert.equal(r.headers['x-content-type-options'], 'nosniff');
            assert.match(r.headers.etag, /^"[0-9a-f]{20}"$/);
        }
        const index = await request(`${h.url}/dashboard/`);
        assert.equal(index.body, fs.readFileSync(path.join(WEB, 'index.html'), 'utf8'));
        assert.match(index.headers['content-security-policy'], /default-src 'self'/);
        assert.match(index.headers['content-security-policy'], /frame-ancestors 'none'/);
    });

    test('/dashboard redirects to /dashboard/, and / to the dashboard', async () => {
        const r = await request(`${h.url}/dashboard`);
        assert.equal(r.status, 301);
        assert.equal(r.headers.location, '/dashboard/');
        const root = await request(`${h.url}/`);
        assert.equal(root.status, 302);
        assert.equal(root.headers.location, '/dashboard/');
    });

    test('a current copy gets 304 with no body; another tag gets the file', async () => {
        const first = await request(`${h.url}/dashboard/app.js`);
        const tag = first.headers.etag;
        for (const header of [tag, `W/${tag}`, `"0000", ${tag}`, '*']) {
            const again = await request(`${h.url}/dashboard/app.js`, { headers: { 'If-None-Match': header } });
            assert.equal(again.status, 304, `If-None-Match: ${header}`);
            assert.equal(again.body, '');
            assert.equal(again.headers.etag, tag);
        }
        // A 304 carries no Content-Length, which would be the length of the unsent file.
        const raw = await rawRequest(h.port,
            `GET /dashboard/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${tag}\r\nConnection: close\r\n\r\n`,
            { untilClose: true });
        assert.equal(raw.response.status, 304, raw.raw);
        assert.equal(raw.response.headers['content-length'], undefined, raw.raw);
        assert.equal(raw.response.rest, '', 'nothing after the 304 head');
        const other = await request(`${h.url}/dashboard/app.js`, { headers: { 'If-None-Match': '"stale"' } });
        assert.equal(other.status, 200);
        assert.equal(other.body, first.body);
    });

    test('an unknown file is a JSON 404; another method a 405 with Allow', async () => {
        for (const p of ['/dashboard/nope.js', '/dashboard/../etc/passwd', '/dashboard/js/app.js', '/dashboardx']) {
            const r = await request(`${h.url}${p}`);
            assertJsonError(r, 404, p);
        }
        const post = await request(`${h.url}/dashboard/`, { method: 'POST', body: 'x' });
        assertJsonError(post, 405);
        assert.equal(post.headers.allow, 'GET');
    });
});

// ---------------------------------------------------------------------------------------
// $sys/stats.

describe('$sys/stats', () => {
    let h;
    before(async () => {
        h = await startHerald({ env: cleanEnv() });
    });
    after(async () => {
        assert.equal(await h.stop(), 0);
    });

    test('nothing is published there while nobody follows it', async () => {
        await sleep(2300);
        const topics = JSON.parse((await request(`${h.url}/topics`)).body).topics;
        assert.ok(!topics.some((t) => t.topic === STATS), JSON.stringify(topics));
    });

    test('a follower gets the figures every second, and the rates count the publishes', async () => {
        const s = await subscribe(h.url, [STATS]);
        try {
            const first = JSON.parse((await waitEvents(s, 1, 3000))[0].data);
            assert.deepEqual(Object.keys(first), FIELDS);
            assert.ok(Math.abs(first.time - Date.now()) < 5000, `time ${first.time}`);
            assert.ok(first.subscribers >= 1 && first.connections >= 1, JSON.stringify(first));

            const topic = uniqueTopic('stats');
            const watcher = await subscribe(h.url, [topic]);
            const before = first.published;
            for (let i = 0; i < 25; i += 1) await publishOk(h.url, { topic, data: `e${i}` });
            await waitEvents(watcher, 25);
            watcher.close();
            // Wait for a sample after the publishes: its counters include all 25.
            const done = Date.now();
            await waitUntil(() => s.events.some((e) => JSON.parse(e.data).time > done + 100),
                { ms: 4000, what: 'a sample after the publishes' });
            const samples = s.events.map((e) => JSON.parse(e.data));
            const last = samples[samples.length - 1];
            assert.equal(last.published - before, 25, 'published counts the 25 events, not the $sys ones');
            assert.ok(last.delivered - first.delivered >= 25, JSON.stringify(last));
            // The per-second rates, times the seconds between samples, add up to the 25.
            let rateSum = 0;
            for (let i = 1; i < samples.length; i += 1) {
                rateSum += samples[i].inPerSecond * ((samples[i].time - samples[i - 1].time) / 1000);
            }
            assert.ok(Math.abs(rateSum - 25) <= 2, `in rates add up to ${rateSum}, expected 25`);
            for (let i = 1; i < samples.length; i += 1) {
                const gap = samples[i].time - samples[i - 1].time;
                assert.ok(gap >= 800 && gap <= 1600, `samples ${gap} ms apart`);
            }
        } finally {
            s.close();
        }
    });

    test('the $sys events are not counted as published or delivered in /metrics', async () => {
        const s = await subscribe(h.url, [STATS]);
        try {
            const before = await getMetrics(h.url);
            await waitEvents(s, 2, 4000);
            const after = await getMetrics(h.url);
            assert.equal(after.herald_events_published_total, before.herald_events_published_total);
            assert.equal(after.herald_events_delivered_total, before.herald_events_delivered_total);
        } finally {
            s.close();
        }
    });

    test('* and the no-topic subscription never carry it; nobody may publish there', async () => {
        const all = await subscribe(h.url, ['*']);
        const none = await subscribe(h.url, []);
        const named = await subscribe(h.url, [STATS]);
        try {
            await waitEvents(named, 2, 4000);
            assert.equal(all.events.length, 0, JSON.stringify(all.events));
            assert.equal(none.events.length, 0, JSON.stringify(none.events));
        } finally {
            all.close();
            none.close();
            named.close();
        }
        assertJsonError(await publish(h.url, { topic: STATS, data: '{}' }), 403);
    });
});

describe('$sys/stats with auth on', () => {
    let h;
    let dir;
    before(async () => {
        dir = makeTempDir('herald-dash-auth-');
        const config = writeConfig(dir, 'herald.toml', {
            auth: {
                tokens: [
                    tokenEntry('admin-token', { admin: true }),
                    tokenEntry('reader', { subscribe: ['*'] }),
                    tokenEntry('stats-reader', { subscribe: [STATS] }),
                ],
            },
        });
        h = await startHerald({ args: ['--config', config], env: cleanEnv() });
    });
    after(async () => {
        assert.equal(await h.stop(), 0);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('an admin token, or one granted $sys/stats by name, may follow it', async () => {
        for (const token of ['admin-token', 'stats-reader']) {
            const s = await subscribe(h.url, [STATS], { headers: bearer(token) });
            await waitEvents(s, 1, 3000);
            s.close();
        }
    });

    test('a token whose grants are only * is refused with 403; no token with 401', async () => {
        const s = await openStream(h.url, `/events?topic=${encodeURIComponent(STATS)}`, { headers: bearer('reader') });
        assert.equal(s.status, 403);
        s.close();
        const anon = await openStream(h.url, `/events?topic=${encodeURIComponent(STATS)}`);
        assert.equal(anon.status, 401);
        anon.close();
    });

    test('the files are served without a token; the data still needs one', async () => {
        const page = await request(`${h.url}/dashboard/`);
        assert.equal(page.status, 200);
        assertJsonError(await request(`${h.url}/topics`), 401);
    });
});

// ---------------------------------------------------------------------------------------
// The page in Chromium.

// Fills the subscribe panel and waits until its stream is live.
async function subscribeInPage(page, topic, { token = '', last = '' } = {}) {
    await page.fill('#subscribe-form textarea[name=topic]', topic);
    await page.fill('#subscribe-form input[name=token]', token);
    await page.fill('#subscribe-form input[name=last]', last);
    await page.click('#subscribe-form button[type=submit]');
    await page.waitForSelector('#sub-state[data-state=live]', { timeout: 5000 });
}

// Publishes with the form; returns the id the page reports.
async function publishInPage(page, topic, data, { event = '' } = {}) {
    await page.fill('#publish-form textarea[name=topic]', topic);
    await page.fill('#publish-form textarea[name=data]', data);
    await page.fill('#publish-form input[name=event]', event);
    await page.click('#publish-form button[type=submit]');
    await page.waitForFunction(() => {
        const r = document.getElementById('publish-result');
        return r.dataset.state === 'ok' || r.dataset.state === 'failed';
    }, null, { timeout: 5000 });
    return page.textContent('#publish-result');
}

// The events the subscribe panel shows, oldest first: [{head, data}].
function shownEvents(page) {
    return page.$$eval('#events li', (items) => items.reverse().map((li) => ({
        head: li.querySelector('.event-head').textContent,
        data: li.querySelector('pre').textContent,
    })));
}

describe('the dashboard in Chromium', () => {
    let browser;
    before(async () => {
        browser = await launchBrowser();
    });
    after(async () => {
        await browser.close();
    });

    test('live figures, topics, and an event published with the form arrives in the panel', async () => {
        const h = await startHerald({ env: cleanEnv() });
        const page = await browser.newPage();
        try {
            await page.goto(`${h.url}/dashboard/`);
            await page.waitForSelector('#feed-state[data-state=live]', { timeout: 5000 });
            // The first sample arrives within a second or so, and counts the page's own stream.
            await page.waitForFunction(() => Number(document.getElementById('fig-subscribers').textContent) >= 1,
                null, { timeout: 4000 });

            const topic = uniqueTopic('tickets');
            await subscribeInPage(page, topic);
            const outside = await subscribe(h.url, [topic]);
            const data = JSON.stringify({ ticket: 42, status: 'open <b>now</b>' }, null, 2);
            const result = await publishInPage(page, topic, data, { event: 'ticket-updated' });
            const id = /id (\S+)/.exec(result)?.[1];
            assert.ok(id, `the form said: ${result}`);
            await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 1, null, { timeout: 5000 });
            const shown = await shownEvents(page);
            assert.equal(shown.length, 1);
            assert.equal(shown[0].data, data, 'the data shows as text, markup and newlines kept');
            assert.match(shown[0].head, new RegExp(`id ${id}`));
            assert.match(shown[0].head, /ticket-updated/);
            // The same event reached a client outside the page, with the same id.
            const got = await waitData(outside, data);
            assert.equal(got.id, id);
            assert.equal(got.event, 'ticket-updated');
            outside.close();

            // The topics table lists it with the page's subscriber (refreshed every 2 s).
            await page.waitForFunction((t) => [...document.querySelectorAll('#topics tbody tr')]
                .some((tr) => tr.cells[0].textContent === t && tr.cells[1].textContent === '1'), topic, { timeout: 5000 });
            // The chart has points: the figures came in more than once.
            await page.waitForFunction(() => document.getElementById('fig-in').textContent !== '–', null, { timeout: 4000 });
            await page.fill('#topic-filter', topic);
            assert.equal(await page.$$eval('#topics tbody tr', (rows) => rows.length), 1);
            await page.fill('#topic-filter', '');
            await sleep(1200); // one more sample on the chart before the picture
            await screenshot(page, 'dashboard');
            assert.deepEqual(page.errors.filter((e) => !/autocomplete/.test(e)), []);
        } finally {
            await page.close();
            assert.equal(await h.stop(), 0);
        }
    });

    test('a refusal shows its reason: the publish form and the subscribe panel', async () => {
        const h = await startHerald({ env: cleanEnv() });
        const page = await browser.newPage();
        try {
            await page.goto(`${h.url}/dashboard/`);
            await page.waitForSelector('#feed-state[data-state=live]', { timeout: 5000 });
            const result = await publishInPage(page, '$sys/mine', 'x');
            assert.match(result, /^Not published: 403: nobody may publish/);
            assert.equal(await page.getAttribute('#publish-result', 'data-state'), 'failed');
            // A topic over 1 KiB: the panel says "refused" with herald's sentence.
            await page.fill('#subscribe-form textarea[name=topic]', 'x'.repeat(1100));
            await page.click('#subscribe-form button[type=submit]');
            await page.waitForSelector('#sub-state[data-state=failed]', { timeout: 5000 });
            assert.match(await page.textContent('#sub-summary'), /^Not subscribed: 400: \S/);
            assert.equal(await page.isDisabled('#sub-stop'), true);
            assert.deepEqual(page.errors.filter((e) => !/autocomplete|Failed to load resource/.test(e)), []);
        } finally {
            await page.close();
            assert.equal(await h.stop(), 0);
        }
    });

    test('with AUTH_TOKEN: the page asks for the token, then works with it', async () => {
        const h = await startHerald({ env: cleanEnv({ AUTH_TOKEN: 'dash-secret' }) });
        const page = await browser.newPage();
        try {
            await page.goto(`${h.url}/dashboard/`);
            await page.waitForSelector('#feed-state[data-state=failed]', { timeout: 5000 });
            assert.match(await page.textContent('#notice'), /needs a token \(401: /);
            await page.waitForFunction(() => !document.getElementById('topics-note').hidden, null, { timeout: 5000 });
            assert.match(await page.textContent('#topics-note'), /401/);
            const topic = uniqueTopic('secure');
            // Without a token the subscribe panel is refused and says why.
            await page.fill('#subscribe-form textarea[name=topic]', topic);
            await page.click('#subscribe-form button[type=submit]');
            await page.waitForSelector('#sub-state[data-state=failed]', { timeout: 5000 });
            assert.match(await page.textContent('#sub-summary'), /401/);

            await page.fill('#token', 'dash-secret');
            await page.click('#token-form button[type=submit]');
            await page.waitForSelector('#feed-state[data-state=live]', { timeout: 5000 });
            assert.equal(await page.isHidden('#notice'), true);
            await subscribeInPage(page, topic);
            assert.match(await publishInPage(page, topic, 'behind a token'), /^Published: id /);
            await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 1, null, { timeout: 5000 });
            assert.equal((await shownEvents(page))[0].data, 'behind a token');
            // The token never went into a URL: the page sends it as a header.
            const status = JSON.parse((await request(`${h.url}/status`, { headers: bearer('dash-secret') })).body);
            assert.ok(Object.keys(status).length >= 2, JSON.stringify(status));
            await screenshot(page, 'dashboard-auth');

            // A fresh tab given #token= is signed in, and the token leaves the address bar.
            const second = await browser.newPage();
            await second.goto(`${h.url}/dashboard/#token=dash-secret`);
            await second.waitForSelector('#feed-state[data-state=live]', { timeout: 5000 });
            assert.equal(new URL(second.url()).hash, '');
            await second.close();
        } finally {
            await page.close();
            assert.equal(await h.stop(), 0);
        }
    });

    test('a hub restart shows as reconnecting, then live again, with no gap and no duplicate', async () => {
        const dir = makeTempDir('herald-dash-restart-');
        const store = `sqlite:${path.join(dir, 'events.db')}`;
        let h = await startHerald({ args: ['--store', store], env: cleanEnv() });
        const port = h.port;
        const page = await browser.newPage();
        try {
            await page.goto(`${h.url}/dashboard/`);
            const topic = uniqueTopic('restart');
            await subscribeInPage(page, topic);
            for (const d of ['one', 'two']) await publishOk(h.url, { topic, data: d });
            await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 2, null, { timeout: 5000 });

            assert.equal(await h.stop(), 0);
            await page.waitForSelector('#sub-state[data-state=reconnecting]', { timeout: 5000 });
            assert.match(await page.textContent('#sub-state'), /reconnecting \(1/);

            // Back on the same port and store; an event published before the page returns
            // must come from the replay, once.
            h = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', String(port), '--store', store],
                { env: cleanEnv() });
            await publishOk(h.url, { topic, data: 'three' });
            await page.waitForFunction(() => /^live \(reconnected/.test(document.getElementById('sub-state').textContent),
                null, { timeout: 10000 });
            await publishOk(h.url, { topic, data: 'four' });
            await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 4, null, { timeout: 5000 });
            await sleep(300);
            assert.deepEqual((await shownEvents(page)).map((e) => e.data), ['one', 'two', 'three', 'four']);
        } finally {
            await page.close();
            assert.equal(await h.stop(), 0);
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
