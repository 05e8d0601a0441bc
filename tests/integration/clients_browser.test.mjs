// herald driven by the SSE clients of the browser, in headless Chromium (Debian's, through
// playwright-core): the native EventSource, sse.js and event-source-polyfill. The libraries'
// files, as published on npm, are served by herald itself (`--static`) with the test page,
// so page and hub share one origin. The cases are in lib/client_cases.mjs; what the tests
// observed is written up in docs/clients.md.
import { test } from 'node:test';
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
    },
    hubArgs: () => ['--static', dir],
    async bind(hub) {
        const b = await chromium.bind(hub);
        pages.push(b);
        return b;
    },
});

// Runs after the groups above (node:test runs a file's tests in order).
test('the pages ran without a script error', () => {
    assert.ok(pages.length >= 4, `only ${pages.length} pages were opened`);
    // What the browser logs by itself about the connections the tests break or refuse on
    // purpose (the hub away, a 401) is not a script error.
    const expected = /net::ERR_CONNECTION_REFUSED|Failed to load resource|TypeError: Failed to fetch|that is not 200\. Aborting the connection/;
    assert.deepEqual(pages.flatMap((p) => p.errors()).filter((e) => !expected.test(e)), []);
});
