// herald driven by the SSE clients of the browser, in headless Chromium (Debian's, through
// playwright-core): the native EventSource, sse.js and event-source-polyfill. The libraries'
// files, as published on npm, are served by herald itself (`--static`) with the test page,
// so page and hub share one origin. The cases are in lib/client_cases.mjs; what the tests
// observed is written up in docs/clients.md.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BROWSER_CLIENTS, browserClients, makeBrowserStaticDir } from './lib/clients.mjs';
import { defineClientSuites } from './lib/client_cases.mjs';

let dir;
let chromium;
const pages = [];

defineClientSuites(BROWSER_CLIENTS, {
    async start() {
        dir = makeBrowserStaticDir();
        chromium = await browserClients();
    },
    async stop() {
        await chromium?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
        // The pages ran clean: no uncaught exception, no console error but the failed
        // connections of the restart group (the hub was away on purpose).
        const errors = pages.flatMap((p) => p.errors()).filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource|net::|Reconnecting|TypeError: Failed to fetch/.test(e));
        assert.deepEqual(errors, []);
    },
    hubArgs: () => ['--static', dir],
    async bind(hub) {
        const b = await chromium.bind(hub);
        pages.push(b);
        return b;
    },
});
