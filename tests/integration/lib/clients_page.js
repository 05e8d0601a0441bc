// Runs in headless Chromium, in the page herald serves for clients_browser.test.mjs: opens
// subscriptions with the browser's own EventSource, sse.js or event-source-polyfill, each
// configured as a user would, and records what each dispatched (see lib/clients.mjs).
import { SSE } from './sse.js';

const clients = new Map();
let next = 1;

function newState() {
    return { events: [], opens: 0, errors: 0, finished: false };
}

// Listeners for `message` and each of `types`, plus open and error counters.
function listen(es, st, types) {
    for (const type of ['message', ...types]) {
        es.addEventListener(type, (e) => st.events.push({ type, data: e.data, id: e.lastEventId }));
    }
    es.addEventListener('open', () => { st.opens += 1; });
    es.addEventListener('error', () => { st.errors += 1; });
}

const OPEN = {
    'chromium EventSource'(url, { types, headers }, st) {
        if (Object.keys(headers).length) throw new Error('EventSource cannot send headers');
        const es = new EventSource(url);
        listen(es, st, types);
        return () => es.close();
    },
    'sse.js'(url, { types, variant, headers }, st) {
        // autoReconnect is off unless asked for; its delay follows the server's retry:.
        const es = new SSE(url, variant === 'default' ? { headers } : { headers, autoReconnect: true });
        listen(es, st, types);
        if (variant === undefined) {
            // With autoReconnect, a refusal is retried for ever unless the page stops it.
            es.addEventListener('error', (e) => {
                if (e.responseCode === 401 || e.responseCode === 403) es.close();
            });
        }
        return () => es.close();
    },
    'event-source-polyfill'(url, { types, headers }, st) {
        // The polyfill itself, not the global EventSource it leaves native in Chromium.
        const es = new window.EventSourcePolyfill(url, { headers });
        listen(es, st, types);
        return () => es.close();
    },
};

window.heraldClients = {
    open(name, url, opts) {
        const fn = OPEN[name];
        if (!fn) throw new Error(`no browser adapter named ${name}`);
        const st = newState();
        const id = next++;
        clients.set(id, { st, close: fn(url, opts, st) });
        return id;
    },
    snapshot(id) {
        const c = clients.get(id);
        if (!c) throw new Error(`no client ${id}`);
        return JSON.parse(JSON.stringify(c.st));
    },
    close(id) {
        const c = clients.get(id);
        if (c) {
            c.close();
            c.st.finished = true;
        }
    },
    ready: true,
};
