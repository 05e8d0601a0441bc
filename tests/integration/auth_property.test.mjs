// A seeded randomized property test of access control: a config with random tokens and
// anonymous grants (exact topics, `*`, URI templates), plus random HS256 JWTs; tens of
// subscriptions of random callers; hundreds of random events (several topics, some
// private). A model in JS says, for each subscription, exactly which events it must
// receive; the hub must deliver exactly those, in publish order, and never an event none
// of whose topics the subscriber may read. Then random subscribe, publish and admin
// requests must get the answer (200/401/403) the model gives.
//
// HERALD_PROPERTY_SEED=<n> replays a run; the seed is in every failure message.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { startHerald, request, sleep } from './lib/harness.mjs';
import { requestWith, formBody } from './lib/util.mjs';
import {
    cleanEnv, makeTempDir, writeConfig, tokenEntry, claims, signHS256, credential, PLACES,
    withQuery, tryStream,
} from './lib/auth.mjs';

const SEED = process.env.HERALD_PROPERTY_SEED !== undefined && process.env.HERALD_PROPERTY_SEED !== ''
    ? Number(process.env.HERALD_PROPERTY_SEED) >>> 0
    : crypto.randomInt(0, 2 ** 32 - 1);
const TAG = `[HERALD_PROPERTY_SEED=${SEED}]`;

const N_TOKENS = 20;
const N_JWTS = 5;
const N_SUBSCRIPTIONS = 40;
const N_EVENTS = 300;

// ---------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32) and helpers on it.

function mulberry32(a) {
    return () => {
        a |= 0;
        a = (a + 0x6D2B79F5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
const rnd = mulberry32(SEED);
const chance = (p) => rnd() < p;
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1)); // inclusive
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
function sample(arr, n) {
    const copy = [...arr];
    const out = [];
    while (out.length < n && copy.length) out.push(copy.splice(Math.floor(rnd() * copy.length), 1)[0]);
    return out;
}

// ---------------------------------------------------------------------------------------
// The topics, the selectors, and the model.

const TOPICS = [
    'news', 'sports', 'weather',
    'room/1', 'room/2', 'room/3', 'room/1/x', 'room/2/x',
    'chat/a', 'chat/b',
    'https://example.com/books/1', 'https://example.com/books/2',
];
const TEMPLATES = [
    'room/{id}', 'room/{id}/x', 'chat/{name}', 'https://example.com/books/{id}', '{a}/{b}',
    '{kind}', 'room/{id}/{sub}', 'https://example.com/{what}/1',
];
// Grants may name $sys/connections: `*` and templates must still never yield it.
const SYS = '$sys/connections';

const isTemplate = (s) => /\{[^{}/]+\}/.test(s);

// Whether `selector` (exact topic, `*` or template) matches `topic`.
function matches(selector, topic) {
    if (selector === '*') return !topic.startsWith('$sys/');
    if (!isTemplate(selector)) return selector === topic;
    if (topic.startsWith('$sys/')) return false;
    const sp = selector.split('/');
    const tp = topic.split('/');
    if (sp.length !== tp.length) return false;
    return sp.every((part, i) => {
        if (/^\{[^{}/]+\}$/.test(part)) return tp[i].length > 0;
        return part === tp[i];
    });
}
const anyMatch = (selectors, topic) => selectors.some((s) => matches(s, topic));

// A caller: { name, credential (null: anonymous), own: {subscribe, publish}, admin }.
function mayRead(caller, anon, topic) {
    return anyMatch(caller.own.subscribe, topic) || anyMatch(anon.subscribe, topic);
}
const mayReadPrivate = (caller, topic) => anyMatch(caller.own.subscribe, topic);
function mayPublish(caller, anon, topic) {
    if (topic.startsWith('$sys/')) return false;
    return anyMatch(caller.own.publish, topic) || anyMatch(anon.publish, topic);
}
const readsSomething = (caller, anon) => caller.own.subscribe.length + anon.subscribe.length > 0;

// The selectors a subscription follows: no topic means `*`.
const followed = (sub) => (sub.topics.length ? sub.topics : ['*']);

// Whether `event` ({topics, private}) reaches subscription `sub`.
function delivers(sub, anon, event) {
    return event.topics.some((t) => anyMatch(followed(sub), t)
        && (event.private ? mayReadPrivate(sub.caller, t) : mayRead(sub.caller, anon, t)));
}

// The answer to a subscription request, as the rules give it: 200, 401 or 403.
function subscribeStatus(caller, anon, topics) {
    const refused = caller.credential === null ? 401 : 403;
    const exact = topics.filter((t) => t !== '*' && !isTemplate(t));
    // An admin may also follow the hub's own $sys/ topics by name.
    const named = (t) => mayRead(caller, anon, t) || (caller.admin && t.startsWith('$sys/'));
    if (exact.some((t) => !named(t))) return refused;
    if ((topics.length === 0 || topics.includes('*')) && !readsSomething(caller, anon)) return refused;
    // Templates alone, for a caller that may read nothing: the rules do not say.
    if (!readsSomething(caller, anon)) return null;
    return 200;
}

// ---------------------------------------------------------------------------------------
// A random world.

function randomGrants({ star = 0.1, sys = 0.1, max = 4 } = {}) {
    const out = new Set();
    const n = int(0, max);
    for (let i = 0; i < n; i++) {
        const r = rnd();
        if (r < 0.55) out.add(pick(TOPICS));
        else out.add(pick(TEMPLATES));
    }
    if (chance(star)) out.add('*');
    if (chance(sys)) out.add(SYS);
    return [...out];
}

function buildWorld() {
    const secret = `prop-secret-${SEED}`;
    const anon = chance(0.85)
        ? { subscribe: randomGrants({ star: 0.05, sys: 0, max: 3 }), publish: randomGrants({ star: 0.05, sys: 0, max: 2 }) }
        : { subscribe: [], publish: [] };
    const callers = [];
    const tokens = [];
    for (let i = 0; i < N_TOKENS; i++) {
        const token = `prop-${SEED}-${i}-${crypto.randomBytes(4).toString('hex')}`;
        const own = { subscribe: randomGrants(), publish: randomGrants({ star: 0.1, sys: 0.1, max: 3 }) };
        const admin = chance(0.3);
        tokens.push(tokenEntry(token, { ...own, admin }));
        callers.push({ name: `token#${i}`, credential: token, own, admin });
    }
    for (let i = 0; i < N_JWTS; i++) {
        const own = { subscribe: randomGrants(), publish: randomGrants({ max: 3 }) };
        const admin = chance(0.3);
        const claim = chance(0.5) ? 'herald' : 'mercure';
        const jwt = signHS256(claims({ claim, ...own, admin: claim === 'herald' ? admin : undefined, extra: { exp: Math.floor(Date.now() / 1000) + 3600 } }), secret);
        callers.push({ name: `jwt#${i}(${claim})`, credential: jwt, own, admin: claim === 'herald' && admin });
    }
    const publisher = `prop-publisher-${SEED}`;
    tokens.push(tokenEntry(publisher, { publish: ['*'] }));
    const anonymous = { name: 'anonymous', credential: null, own: { subscribe: [], publish: [] }, admin: false };
    const config = { auth: { jwt_secret: secret, anonymous: anon, tokens } };
    return { anon, callers, anonymous, publisher, config };
}

// A random subscription of `caller` that the hub must accept (200).
function randomSubscription(caller, anon) {
    const readableExact = TOPICS.filter((t) => mayRead(caller, anon, t));
    if (chance(0.1) && mayRead(caller, anon, SYS)) readableExact.push(SYS);
    const r = rnd();
    let topics;
    if (r < 0.35 && readableExact.length) topics = sample(readableExact, int(1, 3));
    else if (r < 0.55) topics = ['*'];
    else if (r < 0.7) topics = [];
    else if (r < 0.85) topics = [pick(TEMPLATES)];
    else topics = [...sample(readableExact, int(0, 2)), pick(TEMPLATES), ...(chance(0.3) ? ['*'] : [])];
    // An exact $sys/connections carries the hub's own events: keep it out of the exact
    // delivery check (it is still checked by the refusal test below).
    topics = topics.filter((t) => t !== SYS);
    return topics;
}

function randomEvent(i) {
    const topics = sample(TOPICS, int(1, 3));
    return { topics, private: chance(0.25), data: `ev-${i}-${topics.length}` };
}

// ---------------------------------------------------------------------------------------

describe(`access control, randomized ${TAG}`, () => {
    let dir;
    let h;
    let world;
    before(async () => {
        world = buildWorld();
        dir = makeTempDir('herald-auth-prop-');
        const file = writeConfig(dir, 'prop.toml', world.config);
        h = await startHerald({ args: ['--config', file], env: cleanEnv() });
    });
    after(async () => {
        if (h) {
            const code = await h.stop('SIGTERM');
            assert.equal(code, 0, `${TAG} herald exited with ${code}:\n${h.output().slice(-2000)}`);
        }
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('every subscriber receives exactly the events the model says, in publish order', { timeout: 90000 }, async (t) => {
        const { anon, callers, anonymous, publisher } = world;
        const candidates = [...callers, anonymous].filter((c) => readsSomething(c, anon));
        assert.ok(candidates.length > 0, `${TAG} no caller may read anything`);
        const subs = [];
        try {
            for (let i = 0; i < N_SUBSCRIPTIONS; i++) {
                const caller = chance(0.2) && readsSomething(anonymous, anon) ? anonymous : pick(candidates);
                const topics = randomSubscription(caller, anon);
                const place = pick(PLACES);
                const c = caller.credential === null ? { headers: {}, query: {} } : credential(caller.credential, place);
                const sub = { i, caller, topics, place };
                const what = `${TAG} subscription #${i} of ${caller.name} on ${JSON.stringify(topics)} (token in ${place}; own ${JSON.stringify(caller.own.subscribe)}, anonymous ${JSON.stringify(anon.subscribe)})`;
                sub.what = what;
                const s = await tryStream(h.url, topics, { headers: c.headers, query: c.query });
                if (s.status !== 200 || !s.parser) {
                    assert.fail(`${what}: answered ${s.status}, the model says 200: ${s.body}`);
                }
                sub.stream = s;
                subs.push(sub);
            }

            // Publish, one at a time on a keep-alive connection, so the hub's order is ours.
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            const events = [];
            const byId = new Map();
            try {
                for (let i = 0; i < N_EVENTS; i++) {
                    const ev = randomEvent(i);
                    const fields = { topic: ev.topics, data: ev.data };
                    if (ev.private) fields.private = 'on';
                    const r = await requestWith(`${h.url}/events`, {
                        agent,
                        method: 'POST',
                        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Bearer ${publisher}` },
                        body: formBody(fields),
                    });
                    assert.equal(r.status, 200, `${TAG} publish #${i} ${JSON.stringify(ev)} -> ${r.status} ${r.body}`);
                    ev.id = r.body.trim();
                    events.push(ev);
                    byId.set(ev.id, ev);
                }
            } finally {
                agent.destroy();
            }

            // Each subscriber: wait for the count the model gives, then a little more.
            for (const sub of subs) sub.expected = events.filter((ev) => delivers(sub, anon, ev));
            const deadline = Date.now() + 20000;
            for (const sub of subs) {
                const s = sub.stream;
                const n = sub.expected.length;
                try {
                    await s.waitFor(n, Math.max(1, deadline - Date.now()), () => s.events.length >= n || s.ended);
                } catch {
                    // the comparison below says what is missing
                }
            }
            await sleep(300);

            const failures = [];
            for (const sub of subs) {
                const got = sub.stream.events.map((e) => ({ id: e.id, data: e.data }));
                // Safety first: nothing unreadable, nothing unknown (no $sys/ event through * or a template).
                for (const e of got) {
                    const ev = byId.get(e.id);
                    if (!ev) {
                        failures.push(`${sub.what}: received an event the test did not publish: ${JSON.stringify(e)}`);
                        continue;
                    }
                    const readable = ev.topics.some((t) => (ev.private ? mayReadPrivate(sub.caller, t) : mayRead(sub.caller, anon, t)));
                    if (!readable) {
                        failures.push(`${sub.what}: SAFETY: received ${JSON.stringify(ev)} though it may read none of its topics${ev.private ? ' (private: own grants only)' : ''}`);
                    }
                }
                const want = sub.expected.map((ev) => ({ id: ev.id, data: ev.data }));
                if (sub.stream.ended) failures.push(`${sub.what}: the stream ended`);
                try {
                    assert.deepEqual(got, want);
                } catch {
                    const gotIds = new Set(got.map((e) => e.id));
                    const wantIds = new Set(want.map((e) => e.id));
                    const missing = sub.expected.filter((ev) => !gotIds.has(ev.id)).slice(0, 5);
                    const extra = got.filter((e) => !wantIds.has(e.id)).map((e) => byId.get(e.id) || e).slice(0, 5);
                    failures.push(`${sub.what}: received ${got.length} events, the model says ${want.length}; ` +
                        `missing (first 5): ${JSON.stringify(missing)}; unexpected (first 5): ${JSON.stringify(extra)}` +
                        `${missing.length === 0 && extra.length === 0 ? '; same events, another order or duplicates' : ''}`);
                }
            }
            assert.ok(failures.length === 0, `${TAG} ${failures.length} of ${subs.length} subscriptions are wrong:\n${failures.join('\n')}`);
            // The test means something only if the model expected a fair mix.
            const totals = subs.map((s) => s.expected.length);
            assert.ok(totals.some((n) => n > 0), `${TAG} no subscription expected any event`);
            const privates = subs.reduce((a, s) => a + s.expected.filter((ev) => ev.private).length, 0);
            t.diagnostic(`${TAG} ${subs.length} subscriptions, ${events.length} events ` +
                `(${events.filter((ev) => ev.private).length} private), ${totals.reduce((a, n) => a + n, 0)} deliveries ` +
                `(${privates} private), ${totals.filter((n) => n === 0).length} subscriptions expecting none`);
        } finally {
            for (const sub of subs) sub.stream?.close();
        }
    });

    it('subscribe, publish and admin requests get the status the model gives', { timeout: 60000 }, async () => {
        const { anon, callers, anonymous } = world;
        const all = [...callers, anonymous];
        const failures = [];
        const check = (what, got, want, body) => {
            if (got !== want) failures.push(`${what}: ${got}, the model says ${want} (${String(body).slice(0, 200)})`);
        };
        for (let i = 0; i < 120; i++) {
            const caller = pick(all);
            const place = pick(PLACES);
            const c = caller.credential === null ? { headers: {}, query: {} } : credential(caller.credential, place);
            const grants = `own ${JSON.stringify(caller.own)}, anonymous ${JSON.stringify(anon)}`;
            const kind = rnd();
            if (kind < 0.45) {
                const r = rnd();
                let topics;
                if (r < 0.6) topics = sample([...TOPICS, SYS], int(1, 3));
                else if (r < 0.75) topics = ['*'];
                else if (r < 0.85) topics = [];
                else topics = [pick(TEMPLATES), ...sample(TOPICS, int(0, 1))];
                const want = subscribeStatus(caller, anon, topics);
                if (want === null) continue;
                const s = await tryStream(h.url, topics, { headers: c.headers, query: c.query });
                s.close();
                check(`${TAG} #${i} ${caller.name} subscribes ${JSON.stringify(topics)} (token in ${place}; ${grants})`, s.status, want, s.body);
            } else if (kind < 0.85) {
                const topics = chance(0.1) ? [SYS] : sample(TOPICS, int(1, 2));
                let want = 200;
                // $sys/: 403 whoever asks, except an anonymous caller that may publish
                // nothing at all: publishing is an endpoint closed to it (401).
                if (topics.some((t) => t.startsWith('$sys/'))) want = caller.credential === null && anon.publish.length === 0 ? 401 : 403;
                else if (topics.some((t) => !mayPublish(caller, anon, t))) want = caller.credential === null ? 401 : 403;
                const r = await request(`${h.url}${withQuery('/events', c.query)}`, {
                    method: 'POST',
                    headers: { ...c.headers, 'Content-Type': 'application/x-www-form-urlencoded' },
                    body: formBody({ topic: topics, data: `decision-${i}` }),
                });
                check(`${TAG} #${i} ${caller.name} publishes to ${JSON.stringify(topics)} (token in ${place}; ${grants})`, r.status, want, r.body);
            } else {
                const p = pick(['/status', '/topics', '/metrics']);
                const want = caller.credential === null ? 401 : caller.admin ? 200 : 403;
                const r = await request(`${h.url}${withQuery(p, c.query)}`, { headers: c.headers });
                check(`${TAG} #${i} ${caller.name} (admin ${caller.admin}) GET ${p} (token in ${place})`, r.status, want, r.body);
            }
        }
        assert.ok(failures.length === 0, `${TAG} ${failures.length} wrong answers:\n${failures.join('\n')}`);
    });

    it('the output of the hub never holds a token', async () => {
        const out = h.output();
        for (const c of [...world.callers]) {
            assert.ok(!out.includes(c.credential), `${TAG} the credential of ${c.name} reached the output`);
        }
    });
});
