// Cluster-wide figures: two nodes on one real redis-server report to it about once a second;
// GET /cluster lists the live nodes with their connections and streams, /topics sums a
// topic's subscribers over the nodes, $sys/connections counts every node's subscribers, and
// a node that stops (cleanly at once, or killed: after 5 s of silence) no longer counts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { request } from './lib/harness.mjs';
import { makeTempDir, removeDir, freePort, storeEnv, stopClean, kill9 } from './lib/store.mjs';
import { spawnHerald, subscribe, uniqueTopic, waitUntil, sleep } from './lib/util.mjs';

const T = { timeout: 60000 };

async function json(base, p) {
    const r = await request(`${base}${p}`);
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
}

describe('cluster-wide figures', () => {
    let dir;
    let redis;
    let url;
    const nodes = [];
    const start = async (name) => {
        const h = await spawnHerald(['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '2',
            '--store', url, '--node-name', name], { env: storeEnv() });
        nodes.push(h);
        return h;
    };

    before(async () => {
        dir = makeTempDir('herald-cluster-figures-');
        const port = await freePort();
        redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
        await waitUntil(() => new Promise((resolve) => {
            const c = net.connect(port, '127.0.0.1');
            c.on('connect', () => { c.destroy(); resolve(true); });
            c.on('error', () => resolve(false));
        }), { ms: 10000, what: 'redis-server to listen' });
        url = `redis://127.0.0.1:${port}`;
    });
    after(async () => {
        for (const h of nodes) await h.stop('SIGKILL');
        redis?.kill('SIGKILL');
        await sleep(50);
        removeDir(dir);
    });

    test('GET /cluster, /topics and $sys/connections count every live node', T, async () => {
        const a = await start('fig-a');
        const b = await start('fig-b');
        const t = uniqueTopic('fig');
        const streams = [
            await subscribe(a.url, [t]),
            await subscribe(b.url, [t]),
            await subscribe(b.url, [t]),
        ];
        const watcher = await subscribe(a.url, ['$sys/connections']);
        try {
            // Both nodes list both, with b's two streams and a's two (t and the watcher).
            for (const h of [a, b]) {
                await waitUntil(async () => {
                    const { nodes: live } = await json(h.url, '/cluster');
                    const by = Object.fromEntries(live.map((n) => [n.name, n]));
                    return live.length === 2 && by['fig-a']?.subscribers === 2 && by['fig-b']?.subscribers === 2;
                }, { ms: 10000, what: `${h.url}/cluster to list both nodes`, describe: async () => JSON.stringify(await json(h.url, '/cluster')) });
            }
            const { nodes: live } = await json(a.url, '/cluster');
            assert.deepEqual(live.map((n) => n.name), ['fig-a', 'fig-b']);
            for (const n of live) {
                assert.ok(n.connections >= n.subscribers, JSON.stringify(n));
                assert.match(n.lastSeen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
            }
            // /topics on either node: the three streams naming t.
            for (const h of [a, b]) {
                const page = await json(h.url, `/topics?prefix=${encodeURIComponent(t)}`);
                assert.deepEqual(page.topics.map((x) => [x.topic, x.subscribers]), [[t, 3]], JSON.stringify(page));
            }
            // The watcher on a counts every node's subscribers: 4 (its own included).
            await waitUntil(() => watcher.events.some((e) => JSON.parse(e.data).count === 4), {
                ms: 10000, what: '$sys/connections to say 4', describe: () => JSON.stringify(watcher.events.map((e) => e.data)),
            });

            // One of b's streams leaves: everyone's figures follow.
            streams[2].close();
            await waitUntil(async () => {
                const page = await json(a.url, `/topics?prefix=${encodeURIComponent(t)}`);
                return page.topics[0]?.subscribers === 2;
            }, { ms: 10000, what: "a's /topics to count 2" });
            await waitUntil(() => JSON.parse(watcher.events.at(-1).data).count === 3, {
                ms: 10000, what: '$sys/connections to say 3', describe: () => JSON.stringify(watcher.events.map((e) => e.data)),
            });
        } finally {
            for (const s of streams) s.close();
            watcher.close();
        }

        // b stops cleanly: it leaves the live set at once, so a sees it gone at its next
        // exchange with Redis (about a second), not after 5 s of silence.
        await stopClean(b, 'node fig-b');
        await waitUntil(async () => (await json(a.url, '/cluster')).nodes.length === 1, {
            ms: 4000, what: 'fig-b to leave', describe: async () => JSON.stringify(await json(a.url, '/cluster')),
        });
        assert.deepEqual((await json(a.url, '/cluster')).nodes.map((n) => n.name), ['fig-a']);

        // c is killed: it stays listed until it has been silent for 5 s, then no longer.
        const c = await start('fig-c');
        await waitUntil(async () => (await json(a.url, '/cluster')).nodes.length === 2, { ms: 10000, what: 'fig-c to appear' });
        await kill9(c);
        // Just killed: it reported less than a second ago, so it still counts...
        assert.equal((await json(a.url, '/cluster')).nodes.length, 2);
        // ...until it has been silent for 5 s.
        await waitUntil(async () => (await json(a.url, '/cluster')).nodes.length === 1, {
            ms: 15000, what: 'fig-c to be dropped after 5 s of silence',
        });
        await stopClean(a, 'node fig-a');
    });
});
