// Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by playwright-core
// (never a downloaded browser), on a fresh profile, with the flags that keep it off the
// network. Screenshots go to build/artifacts/ (or $HERALD_ARTIFACTS), kept after the run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS =
    process.env.HERALD_ARTIFACTS || new URL('../../../build/artifacts', import.meta.url).pathname;

const FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Starts a browser on its own empty profile. `close()` ends it and removes the profile.
// Every page it opens collects its console errors and uncaught exceptions in `page.errors`,
// so a test can assert that the page ran clean.
export async function launchBrowser() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: FLAGS,
        viewport: { width: 1280, height: 900 },
    });
    const newPage = async () => {
        const page = await context.newPage();
        page.errors = [];
        page.on('pageerror', (e) => page.errors.push(`uncaught: ${e.message}`));
        page.on('console', (m) => {
            if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
        });
        return page;
    };
    return {
        context,
        newPage,
        async close() {
            await context.close().catch(() => {});
            fs.rmSync(profile, { recursive: true, force: true });
        },
    };
}

// Saves a full-page screenshot as build/artifacts/<name>.png and returns its path.
export async function screenshot(page, name) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}
