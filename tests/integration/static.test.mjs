// `--static DIR`: files served at /, never anything outside DIR; without it / redirects to
// the dashboard.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, request, rawExchange } from './lib/harness.mjs';

describe('static files', () => {
    let h;
    let dir;
    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-static-'));
        fs.writeFileSync(path.join(dir, 'index.html'), '<h1>hello</h1>');
        fs.mkdirSync(path.join(dir, 'js'));
        fs.writeFileSync(path.join(dir, 'js', 'app.js'), 'console.log(1)');
        fs.writeFileSync(path.join(path.dirname(dir), `outside-${path.basename(dir)}.txt`), 'secret');
        fs.symlinkSync('/etc', path.join(dir, 'etc-link'));
        h = await startHerald({ args: ['--static', dir] });
    });
    after(async () => {
        assert.equal(await h.stop(), 0);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(path.join(path.dirname(dir), `outside-${path.basename(dir)}.txt`), { force: true });
    });

    test('/ serves index.html and files keep their content type', async () => {
        const root = await request(`${h.url}/`);
        assert.equal(root.status, 200);
        assert.equal(root.body, '<h1>hello</h1>');
        assert.match(root.headers['content-type'], /^text\/html/);
        const js = await request(`${h.url}/js/app.js`);
        assert.equal(js.status, 200);
        assert.equal(js.body, 'console.log(1)');
        assert.match(js.headers['content-type'], /^text\/javascript/);
    });

    test('a missing file is a JSON 404, and the API still wins over files', async () => {
        const r = await request(`${h.url}/nope.html`);
        assert.equal(r.status, 404);
        assert.ok(JSON.parse(r.body).error);
        const health = await request(`${h.url}/healthz`);
        assert.equal(JSON.parse(health.body).status, 'ok');
    });

    test('nothing outside the folder is served: .. and symlinks', async () => {
        const name = `outside-${path.basename(dir)}.txt`;
        for (const target of [`/../${name}`, `/%2e%2e/${name}`, '/etc-link/hostname', '/js/../../etc/passwd']) {
            const r = await rawExchange(h.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
            assert.match(r.data, /^HTTP\/1\.1 404 /, `${target} answered ${r.data.slice(0, 40)}`);
            assert.ok(!r.data.includes('secret'), `${target} leaked a file outside the folder`);
        }
    });
});

test('without --static, / redirects to the dashboard', async () => {
    const h = await startHerald();
    try {
        const r = await request(`${h.url}/`);
        assert.equal(r.status, 302);
        assert.equal(r.headers.location, '/dashboard/');
    } finally {
        assert.equal(await h.stop(), 0);
    }
});
