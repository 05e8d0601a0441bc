// The SSE client libraries herald's users pick, each behind one small adapter, for the
// clients_*.test.mjs suites. An adapter opens a subscription the way a user of that library
// would and records what the library did: the events it dispatched (to which listener, or
// with which `event` field), its opens and errors, and every HTTP request it made (URL,
// request headers, time, status, the hub's Last-Event-ID response header).
//
// Node libraries run in this process; the browser ones run in headless Chromium, in a page
// that herald itself serves (`--static`), so the page and the hub share one origin.
//
// A client, whatever its side: { snapshot() -> Promise<{ events, opens, errors, requests,
// finished }>, close() -> Promise }, where each event is { type, data, id }: `type` is the
// listener that received it (libraries with addEventListener) or the event's `event` field,
// `message` when it has none (libraries with one callback); `id` is the id the library
// reports for that event.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { EventSource } from 'eventsource';
import { createEventSource } from 'eventsource-client';
import { EventSource as ExtendedEventSource } from 'extended-eventsource';
import { fetchEventSource } from '@microsoft/fetch-event-source';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { launchBrowser } from './browser.mjs';
import { withTimeout } from './util.mjs';

const require = createRequire(import.meta.url);
const MODULES = new URL('../../node_modules/', import.meta.url).pathname;

// The exact version of an installed package (as pinned by tests/package-lock.json).
export function packageVersion(name) {
    return JSON.parse(fs.readFileSync(path.join(MODULES, name, 'package.json'), 'utf8')).version;
}

// ---------------------------------------------------------------------------------------
// The table. `dispatch`: 'listeners' (addEventListener per event type) or 'callback' (one
// function gets every event and reads its `event` field). `resume`: how the library sends
// the last id when it reconnects ('header': Last-Event-ID; 'query': ?lastEventId=).
// `dropsLeadingEmptyLine`: the library loses the first line of data when that line is empty
// (its parser joins lines with `data ? data + "\n" + line : line`). `headers`: whether it can
// send request headers (Authorization), else the token goes in ?token=. `on401`: what it does
// when the hub refuses the subscription ('final': stops; 'retries': tries again for ever).
// `traps`: variants configured as the library's defaults leave them, to show what a user
// would meet (`group`: the suite group that shows it).

export const NODE_CLIENTS = [
    { name: 'eventsource', pkg: 'eventsource', dispatch: 'listeners', resume: 'header', headers: true, on401: 'final' },
    {
        name: 'eventsource-client', pkg: 'eventsource-client', dispatch: 'callback', resume: 'header', headers: true, on401: 'final',
        traps: [{ group: 'tokens', variant: 'unguarded', title: 'with no fetch that stops on 401, a refused subscription is retried for ever' }],
    },
    {
        name: 'extended-eventsource', pkg: 'extended-eventsource', dispatch: 'listeners', resume: 'header', headers: true, on401: 'final',
        dropsLeadingEmptyLine: true,
    },
    {
        name: '@microsoft/fetch-event-source', pkg: '@microsoft/fetch-event-source', dispatch: 'callback', resume: 'header', headers: true,
        on401: 'final', dropsLeadingEmptyLine: true,
        traps: [
            { group: 'restart', variant: 'default', title: 'with no onclose that throws, the end of the stream is final (no reconnect)' },
            { group: 'tokens', variant: 'default', title: 'with the default onopen, a refused subscription (401) is retried for ever' },
        ],
    },
    { name: 'eventsource-parser+fetch', pkg: 'eventsource-parser', dispatch: 'callback', resume: 'header', headers: true, on401: 'final' },
];

export const BROWSER_CLIENTS = [
    { name: 'chromium EventSource', pkg: null, dispatch: 'listeners', resume: 'header', headers: false, on401: 'final' },
    {
        name: 'sse.js', pkg: 'sse.js', dispatch: 'listeners', resume: 'header', headers: true, on401: 'final',
        traps: [
            { group: 'restart', variant: 'default', title: 'without autoReconnect: true, the end of the stream is final (no reconnect)' },
            { group: 'tokens', variant: 'unguarded', title: 'with autoReconnect and no close() on 401, a refused subscription is retried for ever' },
        ],
    },
    { name: 'event-source-polyfill', pkg: 'event-source-polyfill', dispatch: 'listeners', resume: 'query', headers: true, on401: 'final' },
];

// ---------------------------------------------------------------------------------------
// Node side.

function newState() {
    return { events: [], opens: 0, errors: 0, requests: [], finished: false };
}

// A fetch that records each request before handing it to Node's own fetch.
function spyFetch(requests) {
    return async (input, init) => {
        const isRequest = typeof Request !== 'undefined' && input instanceof Request;
        const headers = {};
        new Headers(isRequest ? input.headers : init?.headers).forEach((v, k) => { headers[k] = v; });
        const rec = { url: String(isRequest ? input.url : input), headers, at: Date.now() };
        requests.push(rec);
        try {
            const res = await fetch(input, init);
            rec.status = res.status;
            rec.lastEventId = res.headers.get('last-event-id');
            return res;
        } catch (e) {
            rec.failed = String(e?.cause?.code ?? e?.name ?? e);
            throw e;
        }
    };
}

function nodeClient(st, close) {
    return {
        async snapshot() {
            return structuredClone(st);
        },
        async close() {
            close();
        },
    };
}

// Listeners for `message` and each of `types` on an EventTarget-like source.
function listen(es, st, types) {
    for (const type of ['message', ...types]) {
        es.addEventListener(type, (e) => st.events.push({ type, data: e.data, id: e.lastEventId }));
    }
    es.addEventListener('open', () => { st.opens += 1; });
    es.addEventListener('error', () => { st.errors += 1; });
}

// fetch-event-source is written for pages: it calls window.setTimeout / clearTimeout and
// document.removeEventListener (and, unless openWhenHidden, watches document visibility).
// In Node those two globals must exist; nothing else is needed (fetch is Node's own).
function fetchEventSourceShim() {
    globalThis.window ??= { setTimeout, clearTimeout, fetch: (...a) => fetch(...a) };
    globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };
}

class FatalError extends Error {}

const NODE_OPEN = {
    eventsource(url, { types, headers }) {
        const st = newState();
        // No headers option: a fetch wrapper adds them.
        const spy = spyFetch(st.requests);
        const es = new EventSource(url, { fetch: (input, init) => spy(input, { ...init, headers: { ...init?.headers, ...headers } }) });
        listen(es, st, types);
        return nodeClient(st, () => es.close());
    },

    'eventsource-client'(url, { headers, variant }) {
        const st = newState();
        const spy = spyFetch(st.requests);
        // It never looks at the status: a fetch that stops it on a refusal (close, then
        // throw, so that it neither reads the error as a stream nor schedules a retry).
        const guarded = async (input, init) => {
            const res = await spy(input, init);
            if (res.status === 401 || res.status === 403) {
                es.close();
                throw new Error(`subscription refused: ${res.status}`);
            }
            return res;
        };
        const es = createEventSource({
            url,
            headers,
            fetch: variant === 'unguarded' ? spy : guarded,
            onMessage: (m) => st.events.push({ type: m.event ?? 'message', data: m.data, id: m.id }),
            onConnect: () => { st.opens += 1; },
            onScheduleReconnect: () => { st.errors += 1; },
        });
        return nodeClient(st, () => es.close());
    },

    'extended-eventsource'(url, { types, headers }) {
        const st = newState();
        // retry: its own delay before the server's retry: arrives (default 5000 ms, longer
        // than the hub's in the restart group, which would hide whether retry: is honoured).
        const es = new ExtendedEventSource(url, { fetch: spyFetch(st.requests), disableLogger: true, retry: 1000, headers });
        listen(es, st, types);
        return nodeClient(st, () => es.close());
    },

    '@microsoft/fetch-event-source'(url, { variant, headers }) {
        fetchEventSourceShim();
        const st = newState();
        const ctrl = new AbortController();
        const opts = {
            fetch: spyFetch(st.requests),
            headers,
            signal: ctrl.signal,
            openWhenHidden: true,
            onmessage: (m) => st.events.push({ type: m.event || 'message', data: m.data, id: m.id }),
        };
        if (variant !== 'default') {
            // What a user has to write: check the answer (the default only checks the
            // Content-Type, so a 401 would be retried for ever), and throw from onclose so
            // that a stream the server ended is reconnected like one that broke.
            opts.onopen = async (res) => {
                const type = res.headers.get('content-type') ?? '';
                if (res.status === 200 && type.startsWith('text/event-stream')) {
                    st.opens += 1;
                    return;
                }
                if (res.status >= 400 && res.status < 500 && res.status !== 429) {
                    throw new FatalError(`subscription refused: ${res.status}`);
                }
                throw new Error(`unexpected answer ${res.status} ${type}`);
            };
            opts.onclose = () => { throw new Error('the server ended the stream'); };
            opts.onerror = (err) => {
                st.errors += 1;
                if (err instanceof FatalError) throw err; // stop for good
                // undefined: retry after the server's retry: (1000 ms until one arrives)
            };
        } else {
            // The library's own onopen (it checks the Content-Type only) and no onclose.
            opts.onerror = () => { st.errors += 1; };
        }
        fetchEventSource(url, opts).then(
            () => { st.finished = true; },
            (e) => { st.finished = `rejected: ${e?.message ?? e}`; },
        );
        return nodeClient(st, () => ctrl.abort());
    },

    // eventsource-parser is only a parser: the connection, the reconnection, the retry delay
    // and the Last-Event-ID are the user's own loop, written here as a user would.
    'eventsource-parser+fetch'(url, { headers: extra }) {
        const st = newState();
        const ctrl = new AbortController();
        const f = spyFetch(st.requests);
        let lastEventId;
        let retryMs = 1000;
        const pause = (ms) => new Promise((resolve) => {
            const t = setTimeout(resolve, ms);
            ctrl.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        (async () => {
            while (!ctrl.signal.aborted) {
                try {
                    const headers = { Accept: 'text/event-stream', ...extra };
                    if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
                    const res = await f(url, { headers, signal: ctrl.signal, cache: 'no-store' });
                    if (res.status !== 200) {
                        // Like EventSource: a refusal is final.
                        st.errors += 1;
                        st.finished = `refused: ${res.status}`;
                        await res.body?.cancel();
                        return;
                    }
                    st.opens += 1;
                    const events = res.body
                        .pipeThrough(new TextDecoderStream())
                        .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => { retryMs = ms; } }));
                    for await (const ev of events) {
                        if (ev.id !== undefined) lastEventId = ev.id;
                        st.events.push({ type: ev.event ?? 'message', data: ev.data, id: ev.id });
                    }
                } catch {
                    if (ctrl.signal.aborted) break;
                }
                st.errors += 1;
                await pause(retryMs);
            }
            st.finished = true;
        })();
        return nodeClient(st, () => ctrl.abort());
    },
};

// The binding for Node: nothing to set up per hub.
export function nodeBinding() {
    return {
        async open(name, url, { types = [], variant, headers = {} } = {}) {
            const fn = NODE_OPEN[name];
            if (!fn) throw new Error(`no Node adapter named ${name}`);
            return fn(url, { types, variant, headers });
        },
        async close() {},
    };
}

// ---------------------------------------------------------------------------------------
// Browser side.

const PAGE_SCRIPT = new URL('./clients_page.js', import.meta.url).pathname;

// A folder for `herald serve --static`: the page, its script and each browser library's
// file as published on npm (never a CDN). Returns its path.
export function makeBrowserStaticDir() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-clients-static-'));
    fs.copyFileSync(require.resolve('sse.js/lib/sse.js'), path.join(dir, 'sse.js'));
    fs.copyFileSync(require.resolve('event-source-polyfill/src/eventsource.js'), path.join(dir, 'eventsource-polyfill.js'));
    fs.copyFileSync(PAGE_SCRIPT, path.join(dir, 'clients_page.js'));
    fs.writeFileSync(path.join(dir, 'index.html'), [
        '<!doctype html>',
        '<meta charset="utf-8">',
        '<title>herald clients</title>',
        '<script src="eventsource-polyfill.js"></script>',
        '<script type="module" src="clients_page.js"></script>',
        '',
    ].join('\n'));
    return dir;
}

function topicOf(url) {
    return new URL(url, 'http://x').searchParams.getAll('topic').join('\u0000');
}

// Chromium, shared by a suite; `bind(hub)` opens a page on that hub's origin.
export async function browserClients() {
    const browser = await launchBrowser();
    return {
        browser,
        async bind(hub) {
            const page = await browser.newPage();
            const requests = [];
            const byRequest = new Map();
            // The headers the browser sent on the wire (allHeaders: the provisional ones lack
            // those Chromium adds itself, Last-Event-ID among them), bounded in time.
            const wireHeaders = (msg) => withTimeout(msg.allHeaders(), 5000, 'the headers from Chromium')
                .catch(() => msg.headers());
            page.on('request', (req) => {
                if (req.method() !== 'GET' || !/\/events\?/.test(req.url())) return;
                const rec = { url: req.url(), at: Date.now(), headers: wireHeaders(req) };
                requests.push(rec);
                byRequest.set(req, rec);
            });
            page.on('response', (res) => {
                const rec = byRequest.get(res.request());
                if (!rec) return;
                rec.status = res.status();
                rec.lastEventId = wireHeaders(res).then((h) => h['last-event-id'] ?? null);
            });
            page.on('requestfailed', (req) => {
                const rec = byRequest.get(req);
                if (rec) rec.failed = req.failure()?.errorText ?? 'failed';
            });
            await page.goto(`${hub.url}/index.html`);
            await page.waitForFunction(() => window.heraldClients?.ready === true, null, { timeout: 10000 });
            return {
                page,
                async open(name, url, { types = [], variant, headers = {} } = {}) {
                    const id = await page.evaluate(([n, u, o]) => window.heraldClients.open(n, u, o),
                        [name, url, { types, variant, headers }]);
                    const topic = topicOf(url);
                    return {
                        async snapshot() {
                            const s = await page.evaluate((i) => window.heraldClients.snapshot(i), id);
                            s.requests = await Promise.all(requests.filter((r) => topicOf(r.url) === topic)
                                .map(async (r) => ({ ...r, headers: await r.headers, lastEventId: await r.lastEventId })));
                            return s;
                        },
                        async close() {
                            await page.evaluate((i) => window.heraldClients.close(i), id).catch(() => {});
                        },
                    };
                },
                errors: () => page.errors,
                async close() {
                    await page.close().catch(() => {});
                },
            };
        },
        async close() {
            await browser.close();
        },
    };
}
