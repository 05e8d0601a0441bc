// The durable store when the file or the disk is not what it should be: a file that is no
// SQLite database (garbage, a damaged header, a truncated database), a read-only file system,
// a path under a regular file, a database another herald holds, all refused at start with a
// non-zero status and a message naming the path; and a disk that fills up while the hub
// runs: publishes get 503, /readyz says so, subscribers keep their streams, and once room
// is made the hub takes events again and a restart finds exactly the acknowledged ones.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { request } from './lib/harness.mjs';
import { assertJsonError, publishOk, subscribe, uniqueTopic, waitUntil } from './lib/util.mjs';
import {
    assertRefused, expectRefusal, fillDisk, isMounted, keepAlivePublisher, mountTmpfs, mountUnavailable, readUpToSentinel, remountReadOnly, serveArgs, stopClean, unmount, cleanupScope,
} from './lib/store.mjs';

const T = { timeout: 60000 };

const { cleanup, tempDir, start } = cleanupScope();
// A tmpfs of `size` mounted on a fresh folder, unmounted at the end whatever happens.
function tmpfs(prefix, size = '4m') {
    const dir = tempDir(prefix);
    mountTmpfs(dir, size);
    // Registered after the folder's removal, so it runs before it.
    cleanup.push(() => unmount(dir));
    return dir;
}

// Publishes `n` events to `topic` on `base`; returns [[id, data]...].
async function publishPairs(base, topic, n, prefix) {
    const out = [];
    for (let i = 1; i <= n; i++) {
        const data = `${prefix}${i}`;
        out.push([await publishOk(base, { topic, data }), data]);
    }
    return out;
}

// Every retained event of `topics`, as [[id, data]...].
async function history(base, topics) {
    const r = await readUpToSentinel(base, topics, { sentinel: `end-${uniqueTopic('s')}` });
    assert.equal(r.header, 'earliest');
    return r.events.map((e) => [e.id, e.data]);
}

const NOT_A_DB = /not a sqlite database/i;

describe('sqlite: files that are not a database', () => {
    test('a file of garbage is refused and left alone', T, async () => {
        const dir = tempDir('herald-garbage-');
        const cases = {
            'text.db': Buffer.from('these are notes, not a database\n'.repeat(300)),
            'random.db': crypto.randomBytes(16384),
        };
        for (const [name, bytes] of Object.entries(cases)) {
            const file = path.join(dir, name);
            fs.writeFileSync(file, bytes);
            const r = await expectRefusal(serveArgs(file));
            assertRefused(r, [file, NOT_A_DB], name);
            assert.ok(fs.readFileSync(file).equals(bytes), `${name} was modified by the refused start`);
        }
    });

    test('bad store settings are refused as configuration (exit 2), naming the key', T, async () => {
        const dir = tempDir('herald-badcfg-');
        const db = path.join(dir, 'herald.db');
        for (const [env, key] of [
            [{ HERALD_STORE_CACHE_EVENTS: '-1' }, 'store.cache_events'],
            [{ HERALD_STORE_CACHE_EVENTS: 'many' }, 'store.cache_events'],
            [{ HERALD_STORE_SYNC: 'always' }, 'store.sync'],
        ]) {
            const r = await expectRefusal(serveArgs(db), { env });
            assertRefused(r, [key, 'bad configuration'], JSON.stringify(env));
            assert.equal(r.code, 2, `${JSON.stringify(env)}: exit status`);
        }
        assert.ok(!fs.existsSync(db), 'a refused configuration created the database');
    });

    test('a real database with a damaged header, or truncated, is refused', T, async () => {
        const dir = tempDir('herald-damaged-');
        const db = path.join(dir, 'herald.db');
        const h = await start(db);
        const topic = uniqueTopic('damaged');
        for (let i = 0; i < 200; i++) await publishOk(h.url, { topic, data: `${i}:`.padEnd(300, 'z') });
        await stopClean(h, 'herald');
        const original = fs.readFileSync(db);
        assert.ok(original.length >= 16384, `the database is only ${original.length} bytes`);
        assert.equal(original.subarray(0, 16).toString('latin1'), 'SQLite format 3\0', 'the store file is not SQLite');

        // The first page overwritten with garbage.
        const header = path.join(dir, 'header.db');
        const damaged = Buffer.from(original);
        crypto.randomBytes(4096).copy(damaged, 0);
        fs.writeFileSync(header, damaged);
        let r = await expectRefusal(serveArgs(header));
        assertRefused(r, [header, NOT_A_DB], 'damaged header');
        assert.ok(fs.readFileSync(header).equals(damaged), 'the damaged file was modified by the refused start');

        // Only the first two pages left.
        const truncated = path.join(dir, 'truncated.db');
        fs.writeFileSync(truncated, original.subarray(0, 8192));
        r = await expectRefusal(serveArgs(truncated));
        assertRefused(r, [truncated, /not a sqlite database|damaged|corrupt|malformed/i], 'truncated database');

        // The undamaged original still opens, with its 200 events.
        const h2 = await start(db);
        const events = await history(h2.url, [topic]);
        assert.equal(events.length, 200);
        await stopClean(h2, 'herald');
    });
});

describe('sqlite: paths that cannot hold a database', () => {
    test('a path under a regular file is refused, naming it', T, async () => {
        const dir = tempDir('herald-notdir-');
        const file = path.join(dir, 'file.txt');
        fs.writeFileSync(file, 'just a file\n');
        const db = path.join(file, 'sub', 'herald.db');
        const r = await expectRefusal(serveArgs(db));
        assertRefused(r, [file], 'a path under a regular file');
        assert.equal(fs.readFileSync(file, 'utf8'), 'just a file\n');
    });

    test('a database on a read-only file system is refused: cannot write', T, async (t) => {
        const why = mountUnavailable();
        if (why) { t.skip(why); return; }
        const dir = tmpfs('herald-ro-');
        const db = path.join(dir, 'data', 'herald.db');
        const h = await start(db);
        const topic = uniqueTopic('ro');
        await publishOk(h.url, { topic, data: 'written before the remount' });
        await stopClean(h, 'herald');
        assert.ok(fs.existsSync(db));
        remountReadOnly(dir);
        assert.throws(() => fs.writeFileSync(path.join(dir, 'probe'), 'x'), /EROFS/, 'the remount did not make it read-only');

        const r = await expectRefusal(serveArgs(db));
        assertRefused(r, [db, /cannot write/i], 'read-only file system');
        // A database that does not exist yet on a read-only file system: refused too.
        const fresh = path.join(dir, 'data', 'new.db');
        const r2 = await expectRefusal(serveArgs(fresh));
        assertRefused(r2, [fresh], 'a new database on a read-only file system');
    });
});

describe('sqlite: one database, one herald', () => {
    test('a second herald on the same file is refused; the first keeps working', T, async () => {
        const dir = tempDir('herald-lock-');
        const db = path.join(dir, 'herald.db');
        const topic = uniqueTopic('lock');
        const h = await start(db);
        const before = await publishPairs(h.url, topic, 3, 'first');

        const r = await expectRefusal(serveArgs(db));
        assertRefused(r, [db, /in use by another herald/i], 'a second herald');

        const afterwards = await publishPairs(h.url, topic, 3, 'second');
        assert.equal((await request(`${h.url}/readyz`)).status, 200);
        assert.deepEqual(await history(h.url, [topic]), [...before, ...afterwards]);
        await stopClean(h, 'the first herald');

        // Once the first is gone, the file is free again and holds everything.
        const h2 = await start(db);
        assert.deepEqual(await history(h2.url, [topic]), [...before, ...afterwards]);
        await stopClean(h2, 'the next herald');
    });
});

describe('sqlite: the disk fills up while serving', () => {
    test('503 while full, subscribers kept, recovery once room is made, nothing half-written', T, async (t) => {
        const why = mountUnavailable();
        if (why) { t.skip(why); return; }
        const dir = tmpfs('herald-full-', '4m');
        const db = path.join(dir, 'store', 'herald.db');
        const filler = path.join(dir, 'filler');
        const env = { HERALD_SERVER_KEEPALIVE_SECONDS: '1', HERALD_STORE_SYNC: 'full' };
        const topic = uniqueTopic('full');
        const h = await start(db, { env });
        const sub = await subscribe(h.url, [topic]);
        cleanup.push(() => sub.close());
        const acked = []; // [id, data] of every publish that got a 200, in order
        const refused = []; // data of every publish that got a 503
        acked.push(...await publishPairs(h.url, topic, 5, 'roomy'));

        // Fill the file system, then publish 4 KiB events until the store says it is full.
        const filled = fillDisk(filler);
        assert.ok(filled > 0, 'the filler wrote nothing');
        const pub = keepAlivePublisher(h.url);
        cleanup.push(() => pub.close());
        const payload = (i) => `full-${i}-`.padEnd(4096, 'f');
        let firstRefusal = null;
        for (let i = 0; i < 2000 && !firstRefusal; i++) {
            const res = await pub.post({ topic, data: payload(i) });
            if (res.status === 200) {
                acked.push([res.id, payload(i)]);
            } else {
                const body = assertJsonError(res, 503, `publish ${i} on a full disk`);
                assert.match(body.error, /store/i, `the 503 does not speak of the store: ${body.error}`);
                assert.match(body.error, /full/i, `the 503 does not say the disk is full: ${body.error}`);
                refused.push(payload(i));
                firstRefusal = body.error;
            }
        }
        assert.ok(firstRefusal, `2000 publishes of 4 KiB on a full 4 MiB disk all got a 200:\n${h.output().slice(-2000)}`);
        console.log(`# first refusal after ${acked.length - 5} accepted 4 KiB events on the full disk: ${firstRefusal}`);

        // While the store is failing, the hub is not ready.
        const notReady = await request(`${h.url}/readyz`);
        assertJsonError(notReady, 503, '/readyz while the disk is full');
        assert.equal((await request(`${h.url}/healthz`)).status, 200, '/healthz while the disk is full');

        // A few more while still full: each either refused (503) or, if SQLite found room
        // in what the failed attempts left behind, accepted (200); nothing else.
        for (let i = 2000; i < 2005; i++) {
            const res = await pub.post({ topic, data: payload(i) });
            if (res.status === 200) acked.push([res.id, payload(i)]);
            else {
                assertJsonError(res, 503, `publish ${i} on a full disk`);
                refused.push(payload(i));
            }
        }

        // The subscriber keeps its stream: keep-alives go on, and it has had exactly the
        // accepted events, none of the refused ones.
        const comments = sub.comments.length;
        await waitUntil(() => sub.comments.length >= comments + 2 || sub.ended,
            { ms: 5000, what: 'keep-alives on the subscriber while the disk is full' });
        assert.equal(sub.ended, false, 'the subscriber lost its stream when the disk filled up');
        await waitUntil(() => sub.events.length >= acked.length || sub.ended, {
            ms: 5000, what: `the ${acked.length} accepted events on the subscriber`, describe: () => `${sub.events.length} arrived`,
        });
        assert.deepEqual(sub.events.map((e) => [e.id, e.data]), acked, 'the live stream differs from the accepted events');

        // Make room: publishes succeed again, and then the hub is ready again.
        fs.unlinkSync(filler);
        let recovered = null;
        await waitUntil(async () => {
            const data = `after-${refused.length + acked.length}`;
            const res = await pub.post({ topic, data });
            if (res.status === 200) {
                recovered = [res.id, data];
                acked.push(recovered);
                return true;
            }
            assertJsonError(res, 503, 'a publish after room was made');
            refused.push(data);
            return false;
        }, { ms: 5000, every: 100, what: 'a publish to succeed once the filler was deleted' });
        await waitUntil(async () => (await request(`${h.url}/readyz`)).status === 200,
            { ms: 2000, what: '/readyz to answer 200 after a successful write' });
        acked.push(...await publishPairs(h.url, topic, 3, 'recovered'));
        await waitUntil(() => sub.events.length >= acked.length || sub.ended, {
            ms: 5000, what: 'the events published after the recovery', describe: () => `${sub.events.length} of ${acked.length}`,
        });
        assert.equal(sub.ended, false);
        assert.deepEqual(sub.events.map((e) => [e.id, e.data]), acked, 'the live stream after the recovery');
        sub.close();
        pub.close();
        await stopClean(h, 'herald');

        // After a restart: every acknowledged event, once, in order; no refused one.
        const h2 = await start(db, { env });
        const back = await history(h2.url, [topic]);
        const refusedSet = new Set(refused);
        assert.deepEqual(back.filter(([, data]) => refusedSet.has(data)).map(([id, data]) => [id, data.slice(0, 12)]), [],
            'a refused event is in the store');
        assert.deepEqual(back, acked, 'the store after the restart differs from the accepted events');
        await stopClean(h2, 'the restarted herald');
        assert.ok(isMounted(dir));
    });
});

// A folder that no file system can create (a name over 255 bytes) is refused, named.
describe('sqlite: a folder that cannot be created', () => {
    test('a path whose folder cannot be made is refused', T, async () => {
        const dir = tempDir('herald-mkdir-');
        const db = path.join(dir, 'x'.repeat(300), 'herald.db');
        const r = await expectRefusal(serveArgs(db));
        assertRefused(r, [dir], 'an impossible folder');
    });
});
