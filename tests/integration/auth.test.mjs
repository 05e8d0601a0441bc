// Access control over HTTP against the real binary, one rule of docs/access-control.md per
// test: auth off (open, private events reach nobody, a warning), where a token travels and
// which place wins, static tokens and their grants on subscribe and publish, `*`, no-topic
// and URI-template subscriptions, `$sys/` topics, anonymous grants and private events,
// events on several topics, AUTH_TOKEN / AUTH_TOKEN_FILE, admin endpoints, JWTs (HS256,
// RS256 and every forged kind), CORS, SIGHUP reloads and the access log.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startHerald, publish, request, sleep } from './lib/harness.mjs';
import { waitUntil, runHerald, assertJsonError } from './lib/util.mjs';
import {
    cleanEnv, makeTempDir, writeConfig, tokenEntry, claims, signHS256, signRS256, unsignedJwt,
    rsaKeyPair, tamperSignature, credential, PLACES, bearer, withQuery, assert401, assert403,
    tryStream, openOk, expectExactly, expectEnded, closeAll, nowSeconds,
} from './lib/auth.mjs';

const T = { timeout: 30000 };
const rand = () => crypto.randomBytes(6).toString('hex');

// ---------------------------------------------------------------------------------------
// Calls as a given caller: `token` null is anonymous; `place` is where the token travels.

function creds(token, place = 'header') {
    return token === null || token === undefined ? { headers: {}, query: {} } : credential(token, place);
}

function pubAs(base, token, fields, { place = 'header', json = false, path: p = '/events', headers = {} } = {}) {
    const c = creds(token, place);
    return publish(base, fields, { json, headers: { ...c.headers, ...headers }, path: withQuery(p, c.query) });
}

async function pubOk(base, token, fields, opts = {}) {
    const r = await pubAs(base, token, fields, opts);
    assert.equal(r.status, 200, `publish ${JSON.stringify(fields)} as ${token === null ? 'anonymous' : 'a token'} -> ${r.status} ${r.body}`);
    const id = r.body.replace(/\r?\n$/, '');
    assert.ok(id.length > 0, 'publish answered 200 with an empty id');
    return id;
}

function subAs(base, token, topics, { place = 'header', headers = {}, query = {}, path: p } = {}) {
    const c = creds(token, place);
    return tryStream(base, topics, { headers: { ...c.headers, ...headers }, query: { ...c.query, ...query }, path: p });
}

async function subOk(base, token, topics, opts = {}) {
    const s = await subAs(base, token, topics, opts);
    if (s.status !== 200 || !s.parser) {
        assert.fail(`subscribe ${JSON.stringify(topics)} as ${token === null ? 'anonymous' : 'a token'}${opts.place ? ` (${opts.place})` : ''} answered ${s.status}, expected 200: ${s.body}`);
    }
    return s;
}

function getAs(base, token, p, { place = 'header', headers = {} } = {}) {
    const c = creds(token, place);
    return request(base + withQuery(p, c.query), { headers: { ...c.headers, ...headers } });
}

async function stopOk(h) {
    if (!h) return;
    const code = await h.stop('SIGTERM');
    assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-3000)}`);
}

// Parses the data of a $sys/connections event.
function countOf(e) {
    try {
        const v = JSON.parse(e.data);
        return typeof v.count === 'number' ? v.count : undefined;
    } catch {
        return undefined;
    }
}

// Opens and closes a throwaway stream (with `token`, on `topic`) so that the number of
// subscribers changes and the hub publishes on $sys/connections; waits until `watcher`
// (a $sys/connections stream) saw a new event, so that one was certainly published.
async function churnConnections(base, token, topic, watcher) {
    const before = watcher.events.length;
    const s = await subOk(base, token, [topic]);
    await waitUntil(() => watcher.events.length > before, {
        ms: 5000, what: 'a $sys/connections event after a subscriber joined', describe: () => JSON.stringify(watcher.events.map((e) => e.data)),
    });
    s.close();
}

// ---------------------------------------------------------------------------------------
// The main hub: static tokens, anonymous grants, both JWT keys and one CORS origin.

const ORIGIN = 'https://app.example.com';
const HS_SECRET = `hs256-secret-${rand()}`;
const BOOKS = 'https://example.com/books/{id}';
const book = (id) => `https://example.com/books/${id}`;

const TOK = {
    reader: `reader-${rand()}`, // news, the books template, $sys/connections
    star: `star-${rand()}`, // * and * (also the publisher of most tests)
    admin: `admin-${rand()}`, // admin, no grants
    anonOnly: `anononly-${rand()}`, // no grants of its own: the anonymous ones only
    ownAnon: `ownanon-${rand()}`, // its own grant on anon/read
    book1: `book1-${rand()}`, // exactly book 1
    sysPub: `syspub-${rand()}`, // publish grants naming $sys/ topics
};

const ANON = { subscribe: ['anon/read', 'anon/room/{id}'], publish: ['anon/write'] };

function mainConfig(pemFile) {
    return {
        server: { cors_origins: [ORIGIN] },
        auth: {
            jwt_secret: HS_SECRET,
            jwt_public_key_file: pemFile,
            anonymous: ANON,
            tokens: [
                tokenEntry(TOK.reader, { subscribe: ['news', BOOKS, '$sys/connections'], publish: ['news', BOOKS] }),
                tokenEntry(TOK.star, { subscribe: ['*'], publish: ['*'] }),
                tokenEntry(TOK.admin, { admin: true }),
                tokenEntry(TOK.anonOnly, {}),
                tokenEntry(TOK.ownAnon, { subscribe: ['anon/read'] }),
                tokenEntry(TOK.book1, { subscribe: [book(1)] }),
                tokenEntry(TOK.sysPub, { publish: ['$sys/connections', '$sys/{name}', 'sys-ok'] }),
            ],
        },
    };
}

let dir;
let rsa;
let pemFile;
let main; // the main hub, shared by most describes
let base;

before(async () => {
    dir = makeTempDir('herald-auth-');
    rsa = rsaKeyPair();
    pemFile = path.join(dir, 'jwt-public.pem');
    fs.writeFileSync(pemFile, rsa.publicKeyPem);
    const file = writeConfig(dir, 'main.toml', mainConfig(pemFile));
    main = await startHerald({ args: ['--config', file], env: cleanEnv() });
    base = main.url;
});

after(async () => {
    await stopOk(main);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const hsJwt = (opts, header) => signHS256(claims(opts), HS_SECRET, header);
const rsJwt = (opts, header) => signRS256(claims(opts), rsa.privateKey, header);

// =======================================================================================

describe('auth off', () => {
    let h;
    before(async () => { h = await startHerald({ env: cleanEnv() }); });
    after(async () => { await stopOk(h); });

    it('the hub warns at start that it is open to anyone', T, async () => {
        await waitUntil(() => h.output().split('\n').some((l) => /warn/i.test(l) && /(auth|credential|token|open|anyone)/i.test(l)), {
            ms: 3000, what: 'a warning that auth is off', describe: () => h.output(),
        });
    });

    it('anyone may subscribe to and publish on any topic, without a token', T, async () => {
        const s = await subOk(h.url, null, ['off/a', 'off/b']);
        try {
            await pubOk(h.url, null, { topic: 'off/a', data: 'one' });
            await pubOk(h.url, null, { topic: 'off/b', data: 'two' }, { json: true });
            await expectExactly(s, ['one', 'two']);
        } finally {
            s.close();
        }
    });

    it('the introspection endpoints are open: /status, /topics, /metrics answer 200', T, async () => {
        for (const p of ['/status', '/topics', '/metrics']) {
            const r = await request(h.url + p);
            assert.equal(r.status, 200, `${p} -> ${r.status} ${r.body}`);
        }
    });

    it('a private event reaches nobody, the public one after it reaches everyone', T, async () => {
        const exact = await subOk(h.url, null, ['off/private']);
        const star = await subOk(h.url, null, ['*']);
        const none = await subOk(h.url, null, []);
        try {
            const r = await pubAs(h.url, null, { topic: 'off/private', data: 'secret', private: 'on' });
            assert.equal(r.status, 200, `publishing a private event -> ${r.status} ${r.body}`);
            const j = await pubAs(h.url, null, { topic: 'off/private', data: 'secret-json', private: true }, { json: true });
            assert.equal(j.status, 200, `publishing a private JSON event -> ${j.status} ${j.body}`);
            await pubOk(h.url, null, { topic: 'off/private', data: 'public' });
            for (const [s, what] of [[exact, 'exact'], [star, '*'], [none, 'no topic']]) {
                await expectExactly(s, ['public'], { what });
            }
        } finally {
            closeAll(exact, star, none);
        }
    });

    it('$sys/connections is read when named; * and no topic never carry it; nobody publishes there', T, async () => {
        const watcher = await subOk(h.url, null, ['$sys/connections']);
        const star = await subOk(h.url, null, ['*']);
        const none = await subOk(h.url, null, []);
        try {
            await churnConnections(h.url, null, 'off/churn', watcher);
            await sleep(250); // more than the 100 ms between two $sys/connections events
            assert.ok(watcher.events.every((e) => countOf(e) !== undefined), `$sys/connections data: ${JSON.stringify(watcher.events.map((e) => e.data))}`);
            await pubOk(h.url, null, { topic: 'off/marker', data: 'marker' });
            await expectExactly(star, ['marker'], { what: '*' });
            await expectExactly(none, ['marker'], { what: 'no topic' });
            for (const t of ['$sys/connections', '$sys/other']) {
                assert403(await pubAs(h.url, null, { topic: t, data: '{"count": 1}' }), { what: `publish to ${t} with auth off` });
            }
        } finally {
            closeAll(watcher, star, none);
        }
    });
});

// =======================================================================================

describe('turning it on with anonymous grants alone', () => {
    let h;
    before(async () => {
        const file = writeConfig(dir, 'anon-only.toml', { auth: { anonymous: { subscribe: ['a/open'], publish: ['a/open'] } } });
        h = await startHerald({ args: ['--config', file], env: cleanEnv() });
    });
    after(async () => { await stopOk(h); });

    it('anonymous callers may do what is granted and nothing else (401)', T, async () => {
        const s = await subOk(h.url, null, ['a/open']);
        try {
            await pubOk(h.url, null, { topic: 'a/open', data: 'granted' });
            await expectExactly(s, ['granted']);
        } finally {
            s.close();
        }
        assert401(await subAs(h.url, null, ['a/closed']), { invalidToken: false, what: 'subscribe outside the grant' });
        assert401(await pubAs(h.url, null, { topic: 'a/closed', data: 'x' }), { invalidToken: false, what: 'publish outside the grant' });
    });

    it('the introspection endpoints need admin: 401 for anonymous', T, async () => {
        for (const p of ['/status', '/topics', '/metrics']) {
            assert401(await request(h.url + p), { invalidToken: false, what: p });
        }
    });

    it('private events reach no anonymous subscriber', T, async () => {
        const s = await subOk(h.url, null, ['a/open']);
        try {
            await pubOk(h.url, null, { topic: 'a/open', data: 'p', private: 'on' });
            await pubOk(h.url, null, { topic: 'a/open', data: 'marker' });
            await expectExactly(s, ['marker']);
        } finally {
            s.close();
        }
    });
});

// =======================================================================================

const PLACE_NAMES = {
    header: 'the header Authorization: Bearer',
    token: 'the query parameter ?token=',
    authorization: 'the query parameter ?authorization=',
    herald_token: 'the cookie herald_token',
    mercureAuthorization: 'the cookie mercureAuthorization',
};

describe('where the token travels', () => {
    for (const place of PLACES) {
        it(`a token in ${PLACE_NAMES[place]} works for subscribe and publish`, T, async () => {
            const s = await subOk(base, TOK.reader, ['news'], { place });
            try {
                await pubOk(base, TOK.reader, { topic: 'news', data: `via ${place}` }, { place });
                await expectExactly(s, [`via ${place}`]);
            } finally {
                s.close();
            }
        });
    }

    it('the cookie is found among other cookies', T, async () => {
        for (const name of ['herald_token', 'mercureAuthorization']) {
            const cookie = `theme=dark; ${name}=${TOK.reader}; lang=en`;
            const s = await subOk(base, null, ['news'], { headers: { Cookie: cookie } });
            try {
                await pubOk(base, null, { topic: 'news', data: name }, { headers: { Cookie: cookie } });
                await expectExactly(s, [name]);
            } finally {
                s.close();
            }
        }
    });

    it('without a token, the same topic is refused (so the token was what opened it)', T, async () => {
        assert401(await subAs(base, null, ['news']), { invalidToken: false, what: 'anonymous subscribe to news' });
        assert401(await pubAs(base, null, { topic: 'news', data: 'x' }), { invalidToken: false, what: 'anonymous publish to news' });
    });

    // Each pair: the first place holds `first`, the second place holds `second`.
    const pairs = [
        ['header', 'token'],
        ['token', 'authorization'],
        ['authorization', 'herald_token'],
        ['herald_token', 'mercureAuthorization'],
        ['header', 'mercureAuthorization'],
    ];
    const combine = (firstPlace, firstTok, secondPlace, secondTok) => {
        const a = credential(firstTok, firstPlace);
        const b = credential(secondTok, secondPlace);
        const headers = { ...b.headers, ...a.headers };
        if (a.headers.Cookie && b.headers.Cookie) headers.Cookie = `${b.headers.Cookie}; ${a.headers.Cookie}`;
        return { headers, query: { ...a.query, ...b.query } };
    };
    for (const [first, second] of pairs) {
        it(`precedence: ${first} wins over ${second}, whichever holds the bad token`, T, async () => {
            const bad = `unknown-${rand()}`;
            // The valid token first: the bad one later is ignored.
            let c = combine(first, TOK.reader, second, bad);
            const s = await subOk(base, null, ['news'], c);
            s.close();
            const r = await publish(base, { topic: 'news', data: 'precedence' }, { headers: c.headers, path: withQuery('/events', c.query) });
            assert.equal(r.status, 200, `publish with a valid ${first} and a bad ${second} -> ${r.status} ${r.body}`);
            // The bad token first: it is the credential, the valid one later does not help.
            c = combine(first, bad, second, TOK.reader);
            assert401(await subAs(base, null, ['news'], c), { invalidToken: true, secrets: [bad], what: `subscribe with a bad ${first} and a valid ${second}` });
            const r2 = await publish(base, { topic: 'news', data: 'precedence' }, { headers: c.headers, path: withQuery('/events', c.query) });
            assert401(r2, { invalidToken: true, secrets: [bad], what: `publish with a bad ${first} and a valid ${second}` });
        });
    }

    it('an Authorization header with another scheme is a 401, even with a valid ?token= and on a topic anonymous may read', T, async () => {
        for (const value of ['Basic dXNlcjpwYXNz', `Token ${TOK.reader}`, `Digest ${TOK.reader}`]) {
            const r = await subAs(base, null, ['anon/read'], { headers: { Authorization: value }, query: { token: TOK.reader } });
            closeAll(r);
            assert401(r, { what: `subscribe with Authorization: ${value.split(' ')[0]}` });
            assert401(await pubAs(base, null, { topic: 'anon/write', data: 'x' }, { headers: { Authorization: value } }),
                { what: `publish with Authorization: ${value.split(' ')[0]}` });
        }
    });

    it('an empty token is a 401, never anonymous (on a topic anonymous may read)', T, async () => {
        const cases = [
            ['Authorization: Bearer (nothing after)', { headers: { Authorization: 'Bearer ' } }],
            ['Authorization: Bearer (no space)', { headers: { Authorization: 'Bearer' } }],
            ['?token=', { query: { token: '' } }],
            ['?authorization=', { query: { authorization: '' } }],
            ['cookie herald_token=', { headers: { Cookie: 'herald_token=' } }],
            ['cookie mercureAuthorization=', { headers: { Cookie: 'mercureAuthorization=' } }],
        ];
        for (const [what, opts] of cases) {
            const r = await subAs(base, null, ['anon/read'], opts);
            closeAll(r);
            assert401(r, { what: `subscribe, ${what}` });
            const p = await publish(base, { topic: 'anon/write', data: 'x' }, { headers: opts.headers || {}, path: withQuery('/events', opts.query || {}) });
            assert401(p, { what: `publish, ${what}` });
        }
    });

    it('an unknown token is a 401 with error="invalid_token", never anonymous, and the answer does not quote it', T, async () => {
        const bad = `nosuchtoken-${rand()}`;
        for (const place of PLACES) {
            const r = await subAs(base, bad, ['anon/read'], { place });
            closeAll(r);
            assert401(r, { invalidToken: true, secrets: [bad], what: `subscribe, unknown token in ${place}` });
            assert401(await pubAs(base, bad, { topic: 'anon/write', data: 'x' }, { place }),
                { invalidToken: true, secrets: [bad], what: `publish, unknown token in ${place}` });
        }
        // A prefix or an extension of a real token is just as unknown.
        for (const near of [TOK.reader.slice(0, -1), `${TOK.reader}x`, TOK.reader.toUpperCase()]) {
            assert401(await subAs(base, near, ['news']), { invalidToken: true, secrets: [near], what: 'a near miss of a real token' });
        }
    });
});

// =======================================================================================

describe('subscribe', () => {
    it('an exact topic not granted: 403 for a token (naming the topic, not the token), 401 for anonymous', T, async () => {
        const r = await subAs(base, TOK.reader, ['secret']);
        closeAll(r);
        assert403(r, { names: ['secret'], secrets: [TOK.reader], what: 'token' });
        const a = await subAs(base, null, ['secret']);
        closeAll(a);
        assert401(a, { invalidToken: false, names: ['secret'], what: 'anonymous' });
    });

    it('every exact topic of a subscription must be readable: one refused topic refuses it all', T, async () => {
        const r = await subAs(base, TOK.reader, ['news', 'secret']);
        closeAll(r);
        assert403(r, { names: ['secret'], what: 'news + secret' });
        const r2 = await subAs(base, TOK.reader, ['*', 'secret']);
        closeAll(r2);
        assert403(r2, { names: ['secret'], what: '* + secret' });
    });

    it('a granted exact topic opens, and receives its events', T, async () => {
        const s = await subOk(base, TOK.reader, ['news']);
        try {
            await pubOk(base, TOK.star, { topic: 'news', data: 'n1' });
            await pubOk(base, TOK.star, { topic: 'secret', data: 's1' });
            await pubOk(base, TOK.star, { topic: 'news', data: 'n2' });
            await expectExactly(s, ['n1', 'n2']);
        } finally {
            s.close();
        }
    });

    for (const [what, topics] of [['*', ['*']], ['no topic', []]]) {
        it(`${what} receives only what the token may read`, T, async () => {
            const s = await subOk(base, TOK.reader, topics);
            try {
                await pubOk(base, TOK.star, { topic: 'news', data: 'news' });
                await pubOk(base, TOK.star, { topic: 'secret', data: 'secret' });
                await pubOk(base, TOK.star, { topic: book(1), data: 'book1' });
                await pubOk(base, TOK.star, { topic: `${book(1)}/reviews`, data: 'reviews' });
                await pubOk(base, TOK.star, { topic: 'https://example.com/authors/1', data: 'author' });
                await pubOk(base, TOK.star, { topic: 'anon/read', data: 'anon' }); // anonymous grant
                await pubOk(base, TOK.star, { topic: 'anon/write', data: 'anonwrite' });
                await pubOk(base, TOK.star, { topic: 'news', data: 'marker' });
                await expectExactly(s, ['news', 'book1', 'anon', 'marker']);
            } finally {
                s.close();
            }
        });
    }

    it('a URI template grant covers exact topics of one segment per variable', T, async () => {
        for (const t of [book(42), book('a-b.c')]) {
            const s = await subOk(base, TOK.reader, [t]);
            try {
                await pubOk(base, TOK.star, { topic: t, data: t });
                await expectExactly(s, [t]);
            } finally {
                s.close();
            }
        }
        for (const t of [`${book(42)}/reviews`, 'https://example.com/books/', 'https://example.com/books', 'https://example.com/authors/42', 'http://example.com/books/42']) {
            const r = await subAs(base, TOK.reader, [t]);
            closeAll(r);
            assert403(r, { names: [t], what: `template grant and ${t}` });
        }
    });

    it('a template subscription receives the matching topics the token may read', T, async () => {
        const s = await subOk(base, TOK.reader, [BOOKS]);
        try {
            await pubOk(base, TOK.star, { topic: book(1), data: 'b1' });
            await pubOk(base, TOK.star, { topic: `${book(1)}/reviews`, data: 'deeper' });
            await pubOk(base, TOK.star, { topic: 'news', data: 'news' });
            await pubOk(base, TOK.star, { topic: book(2), data: 'b2' });
            await expectExactly(s, ['b1', 'b2']);
        } finally {
            s.close();
        }
    });

    it('a template subscription never reaches beyond the grants (exact grant on book 1 only)', T, async () => {
        const s = await subOk(base, TOK.book1, [BOOKS]);
        try {
            await pubOk(base, TOK.star, { topic: book(2), data: 'b2' });
            await pubOk(base, TOK.star, { topic: book(1), data: 'b1' });
            await pubOk(base, TOK.star, { topic: book(3), data: 'b3' });
            await pubOk(base, TOK.star, { topic: book(1), data: 'marker' });
            await expectExactly(s, ['b1', 'marker']);
        } finally {
            s.close();
        }
    });

    it('$sys/connections is read when granted by its exact name', T, async () => {
        const w = await subOk(base, TOK.reader, ['$sys/connections']);
        try {
            await churnConnections(base, TOK.reader, 'news', w);
            const e = w.events[w.events.length - 1];
            assert.ok(countOf(e) !== undefined, `$sys/connections data is not {"count": N}: ${e.data}`);
        } finally {
            w.close();
        }
    });

    it('$sys/connections is refused to a `*` grant (403) and to anonymous (401)', T, async () => {
        const r = await subAs(base, TOK.star, ['$sys/connections']);
        closeAll(r);
        assert403(r, { names: ['$sys/connections'], what: 'a * grant' });
        const r2 = await subAs(base, TOK.book1, ['$sys/connections']);
        closeAll(r2);
        assert403(r2, { what: 'no grant' });
        const a = await subAs(base, null, ['$sys/connections']);
        closeAll(a);
        assert401(a, { invalidToken: false, what: 'anonymous' });
    });

    it('`*`, no topic and templates never carry $sys/ topics, even for a token granted $sys/connections', T, async () => {
        const watcher = await subOk(base, TOK.reader, ['$sys/connections']);
        const streams = [
            ['reader *', await subOk(base, TOK.reader, ['*'])],
            ['reader no topic', await subOk(base, TOK.reader, [])],
            ['reader $sys/{name}', await subOk(base, TOK.reader, ['$sys/{name}'])],
            ['star *', await subOk(base, TOK.star, ['*'])],
            ['star no topic', await subOk(base, TOK.star, [])],
        ];
        try {
            await churnConnections(base, TOK.reader, 'news', watcher);
            await sleep(250);
            await pubOk(base, TOK.star, { topic: 'news', data: 'marker' });
            for (const [what, s] of streams) {
                if (what.includes('$sys')) {
                    await sleep(100);
                    assert.deepEqual(s.events.map((e) => e.data), [], `${what} received events`);
                } else {
                    await expectExactly(s, ['marker'], { what });
                }
            }
        } finally {
            closeAll(watcher, ...streams.map((x) => x[1]));
        }
    });
});

// =======================================================================================

describe('publish', () => {
    it('a topic not granted: 403 for a token (naming the topic, not the token), 401 for anonymous; nothing is delivered', T, async () => {
        const s = await subOk(base, TOK.star, ['*']);
        try {
            assert403(await pubAs(base, TOK.reader, { topic: 'secret', data: 'no' }), { names: ['secret'], secrets: [TOK.reader], what: 'token' });
            assert403(await pubAs(base, TOK.reader, { topic: 'secret', data: 'no' }, { json: true }), { names: ['secret'], what: 'token, JSON body' });
            assert403(await pubAs(base, TOK.admin, { topic: 'news', data: 'no' }), { what: 'admin is no publish grant' });
            assert401(await pubAs(base, null, { topic: 'secret', data: 'no' }), { invalidToken: false, names: ['secret'], what: 'anonymous' });
            assert401(await pubAs(base, null, { topic: 'news', data: 'no' }, { json: true }), { invalidToken: false, what: 'anonymous, JSON body' });
            await pubOk(base, TOK.star, { topic: 'secret', data: 'marker' });
            await expectExactly(s, ['marker']);
        } finally {
            s.close();
        }
    });

    it('an event on several topics needs a grant for each: one refused topic refuses it', T, async () => {
        const s = await subOk(base, TOK.star, ['*']);
        try {
            assert403(await pubAs(base, TOK.reader, { topic: ['news', 'secret'], data: 'half' }), { names: ['secret'], what: 'news + secret' });
            await pubOk(base, TOK.star, { topic: 'news', data: 'marker' });
            await expectExactly(s, ['marker']);
        } finally {
            s.close();
        }
    });

    it('a granted topic (exact or through a template) answers 200 and is delivered', T, async () => {
        const s = await subOk(base, TOK.star, ['*']);
        try {
            await pubOk(base, TOK.reader, { topic: 'news', data: 'exact' });
            await pubOk(base, TOK.reader, { topic: book(9), data: 'template' }, { json: true });
            await pubOk(base, TOK.reader, { topic: ['news', book(10)], data: 'both' });
            assert403(await pubAs(base, TOK.reader, { topic: `${book(9)}/x`, data: 'deeper' }), { what: 'two segments for one variable' });
            await pubOk(base, TOK.star, { topic: 'anything/at/all', data: 'star' });
            await expectExactly(s, ['exact', 'template', 'both', 'star']);
        } finally {
            s.close();
        }
    });

    it('$sys/ topics: 403 for everyone, even a `*` grant and a grant naming the topic', T, async () => {
        const watcher = await subOk(base, TOK.reader, ['$sys/connections']);
        try {
            for (const [tok, what] of [[TOK.star, '* grant'], [TOK.sysPub, 'grant by name'], [TOK.reader, 'no grant']]) {
                for (const topic of ['$sys/connections', '$sys/custom']) {
                    assert403(await pubAs(base, tok, { topic, data: '{"count": 12345}' }), { what: `${what}, ${topic}` });
                }
            }
            assert403(await pubAs(base, TOK.star, { topic: ['news', '$sys/connections'], data: '{"count": 12345}' }), { what: 'news + $sys' });
            // Anonymous may publish here (anon/write), so $sys/ is a 403 for it too.
            assert403(await pubAs(base, null, { topic: '$sys/connections', data: '{"count": 12345}' }), { what: 'anonymous, $sys/connections' });
            await pubOk(base, TOK.sysPub, { topic: 'sys-ok', data: 'sanity' });
            await sleep(200);
            assert.ok(!watcher.events.some((e) => e.data.includes('12345')), `a forged $sys event arrived: ${JSON.stringify(watcher.events.map((e) => e.data))}`);
        } finally {
            watcher.close();
        }
    });
});

// =======================================================================================

describe('anonymous grants', () => {
    it('anonymous subscribes and publishes as granted (exact and template)', T, async () => {
        const s = await subOk(base, null, ['anon/read']);
        const room = await subOk(base, null, ['anon/room/7']);
        try {
            await pubOk(base, null, { topic: 'anon/write', data: 'anon-wrote' });
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'read' });
            await pubOk(base, TOK.star, { topic: 'anon/room/7', data: 'room7' });
            await expectExactly(s, ['read']);
            await expectExactly(room, ['room7']);
        } finally {
            closeAll(s, room);
        }
    });

    it('anonymous is refused (401) what is not granted', T, async () => {
        for (const t of ['news', 'anon/write', 'anon/room/7/x', 'anon/room/']) {
            const r = await subAs(base, null, [t]);
            closeAll(r);
            assert401(r, { invalidToken: false, what: `subscribe ${t}` });
        }
        for (const t of ['news', 'anon/read']) {
            assert401(await pubAs(base, null, { topic: t, data: 'x' }), { invalidToken: false, what: `publish ${t}` });
        }
    });

    it('anonymous `*` and no topic carry the anonymous topics only', T, async () => {
        const star = await subOk(base, null, ['*']);
        const none = await subOk(base, null, []);
        try {
            await pubOk(base, TOK.star, { topic: 'news', data: 'news' });
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'read' });
            await pubOk(base, TOK.star, { topic: 'anon/room/3', data: 'room3' });
            await pubOk(base, TOK.star, { topic: 'anon/room/3/x', data: 'deeper' });
            await pubOk(base, TOK.star, { topic: 'secret', data: 'secret' });
            await pubOk(base, TOK.star, { topic: 'anon/write', data: 'write' });
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'marker' });
            await expectExactly(star, ['read', 'room3', 'marker'], { what: '*' });
            await expectExactly(none, ['read', 'room3', 'marker'], { what: 'no topic' });
        } finally {
            closeAll(star, none);
        }
    });

    it('a token has its own grants plus the anonymous ones', T, async () => {
        const s = await subOk(base, TOK.reader, ['anon/read', 'news', 'anon/room/1']);
        const only = await subOk(base, TOK.anonOnly, ['anon/read']);
        try {
            await pubOk(base, TOK.reader, { topic: 'anon/write', data: 'reader-wrote' });
            await pubOk(base, TOK.anonOnly, { topic: 'anon/write', data: 'anononly-wrote' });
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'a' });
            await pubOk(base, TOK.star, { topic: 'news', data: 'n' });
            await pubOk(base, TOK.star, { topic: 'anon/room/1', data: 'r' });
            await expectExactly(s, ['a', 'n', 'r']);
            await expectExactly(only, ['a']);
            const r = await subAs(base, TOK.anonOnly, ['news']);
            closeAll(r);
            assert403(r, { names: ['news'], what: 'a token refused outside its grants gets 403, not 401' });
        } finally {
            closeAll(s, only);
        }
    });

    it('private events are read only through a token\'s own grants, never the anonymous ones', T, async () => {
        const anon = await subOk(base, null, ['anon/read']);
        const viaAnon = await subOk(base, TOK.reader, ['anon/read']); // anon/read only through anonymous
        const viaAnonStar = await subOk(base, TOK.anonOnly, ['*']);
        const own = await subOk(base, TOK.ownAnon, ['anon/read']); // its own grant
        const star = await subOk(base, TOK.star, ['*']); // its own `*`
        const room = await subOk(base, TOK.reader, ['anon/room/{id}']);
        try {
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'private', private: 'on' });
            await pubOk(base, TOK.star, { topic: 'anon/room/2', data: 'private-room', private: true }, { json: true });
            await pubOk(base, TOK.star, { topic: 'anon/read', data: 'marker' });
            await pubOk(base, TOK.star, { topic: 'anon/room/2', data: 'room-marker' });
            await expectExactly(anon, ['marker'], { what: 'anonymous' });
            await expectExactly(viaAnon, ['marker'], { what: 'token reading through the anonymous grant' });
            await expectExactly(viaAnonStar, ['marker', 'room-marker'], { what: 'token without grants, *' });
            await expectExactly(own, ['private', 'marker'], { what: 'token with its own grant' });
            await expectExactly(star, ['private', 'private-room', 'marker', 'room-marker'], { what: 'token with its own *' });
            await expectExactly(room, ['room-marker'], { what: 'template through the anonymous grant' });
        } finally {
            closeAll(anon, viaAnon, viaAnonStar, own, star, room);
        }
    });
});

// =======================================================================================

describe('events on several topics', () => {
    it('an event on [unreadable, readable] reaches a `*` subscriber once; on [unreadable] alone, not at all', T, async () => {
        const s = await subOk(base, TOK.reader, ['*']);
        try {
            await pubOk(base, TOK.star, { topic: ['secret', 'news'], data: 'mixed' });
            await pubOk(base, TOK.star, { topic: ['secret'], data: 'secret-only' });
            await pubOk(base, TOK.star, { topic: ['secret', 'other-secret'], data: 'secrets' });
            await pubOk(base, TOK.star, { topic: ['news', book(5)], data: 'two-readable' });
            await pubOk(base, TOK.star, { topic: ['news'], data: 'marker' });
            await expectExactly(s, ['mixed', 'two-readable', 'marker'], { settleMs: 300 });
        } finally {
            s.close();
        }
    });

    it('an event reaches a subscriber through a topic both followed and readable, not one followed only', T, async () => {
        const exact = await subOk(base, TOK.reader, ['news']);
        const template = await subOk(base, TOK.book1, [BOOKS]);
        try {
            await pubOk(base, TOK.star, { topic: ['secret', 'news'], data: 'to-news' });
            await pubOk(base, TOK.star, { topic: [book(2), 'news'], data: 'book2-news' }); // book1 token: book 2 followed, not readable
            await pubOk(base, TOK.star, { topic: [book(2), book(1)], data: 'book2-book1' });
            await pubOk(base, TOK.star, { topic: ['news', book(1)], data: 'marker' });
            await expectExactly(exact, ['to-news', 'book2-news', 'marker'], { what: 'exact news' });
            await expectExactly(template, ['book2-book1', 'marker'], { what: 'template, grant on book 1' });
        } finally {
            closeAll(exact, template);
        }
    });

    it('a private event on several topics needs one topic readable through the token\'s own grants', T, async () => {
        const s = await subOk(base, TOK.reader, ['*']);
        try {
            await pubOk(base, TOK.star, { topic: ['anon/read', 'secret'], data: 'anon-secret', private: 'on' });
            await pubOk(base, TOK.star, { topic: ['anon/read', 'news'], data: 'anon-news', private: 'on' });
            await pubOk(base, TOK.star, { topic: ['anon/read', book(3)], data: 'anon-book', private: 'on' });
            await pubOk(base, TOK.star, { topic: ['anon/read'], data: 'marker' });
            await expectExactly(s, ['anon-news', 'anon-book', 'marker']);
        } finally {
            s.close();
        }
    });
});

// =======================================================================================

describe('AUTH_TOKEN', () => {
    let h;
    const ROOT = `root-${rand()}`;
    const STATIC = `static-${rand()}`;
    const SECRET = `hs-${rand()}`;
    before(async () => {
        const file = writeConfig(dir, 'root.toml', {
            auth: {
                jwt_secret: SECRET,
                anonymous: { subscribe: ['anon/read', '*'], publish: ['anon/write'] },
                tokens: [tokenEntry(STATIC, { subscribe: ['st'], publish: ['st'] })],
            },
        });
        const www = path.join(dir, 'www');
        fs.mkdirSync(path.join(www, 'js'), { recursive: true });
        fs.writeFileSync(path.join(www, 'index.html'), '<h1>root only</h1>');
        fs.writeFileSync(path.join(www, 'js', 'app.js'), 'console.log(1)');
        h = await startHerald({ args: ['--config', file, '--static', www], env: cleanEnv({ AUTH_TOKEN: ROOT }) });
    });
    after(async () => { await stopOk(h); });

    it('/healthz and /readyz stay open, whatever credential comes along', T, async () => {
        const variants = [
            ['no token', {}],
            ['a bad token', { headers: bearer(`bad-${rand()}`) }],
            ['another scheme', { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }],
            ['an empty ?token=', { query: { token: '' } }],
            ['the root token', { headers: bearer(ROOT) }],
        ];
        for (const p of ['/healthz', '/readyz']) {
            for (const [what, v] of variants) {
                const r = await request(h.url + withQuery(p, v.query || {}), { headers: v.headers || {} });
                assert.equal(r.status, 200, `${p} with ${what} -> ${r.status} ${r.body}`);
            }
        }
    });

    it('every other request needs a token: 401 for endpoints, static files and unknown paths', T, async () => {
        // (The dashboard's files hold no data and are served to anyone: dashboard.test.mjs.)
        for (const p of ['/topics', '/status', '/metrics', '/', '/index.html', '/js/app.js', '/nope.html', '/no/such/path', '/favicon.ico']) {
            const r = await request(h.url + p);
            assert401(r, { invalidToken: false, what: `GET ${p}` });
            assert.ok(!r.body.includes('root only') && !r.body.includes('console.log'), `GET ${p} without a token leaked the file`);
        }
        assert401(await request(`${h.url}/no/such/path`, { method: 'POST', body: 'x' }), { invalidToken: false, what: 'POST /no/such/path' });
        assert401(await pubAs(h.url, null, { topic: 'anon/write', data: 'x' }), { invalidToken: false, what: 'publish on an anonymous grant' });
        for (const topics of [['anon/read'], ['*'], []]) {
            const r = await subAs(h.url, null, topics);
            closeAll(r);
            assert401(r, { invalidToken: false, what: `subscribe ${JSON.stringify(topics)}: anonymous grants are off` });
        }
        assert401(await getAs(h.url, `wrong-${rand()}`, '/no/such/path'), { invalidToken: true, what: 'unknown path, wrong token' });
    });

    it('with the root token: unknown paths 404, static files and admin endpoints 200', T, async () => {
        for (const p of ['/no/such/path', '/nope.html']) {
            assertJsonError(await getAs(h.url, ROOT, p), 404, `${p} with the root token`);
        }
        const idx = await getAs(h.url, ROOT, '/');
        assert.equal(idx.status, 200, `/ with the root token -> ${idx.status}`);
        assert.equal(idx.body, '<h1>root only</h1>');
        const js = await getAs(h.url, ROOT, '/js/app.js', { place: 'herald_token' });
        assert.equal(js.status, 200, `/js/app.js with the root token in the cookie -> ${js.status}`);
        assert.equal(js.body, 'console.log(1)');
        for (const p of ['/topics', '/status', '/metrics']) {
            const r = await getAs(h.url, ROOT, p);
            assert.equal(r.status, 200, `${p} with the root token -> ${r.status}`);
        }
        const r = await getAs(h.url, ROOT, '/topics', { place: 'token' });
        assert.equal(r.status, 200, '/topics?token=<root>');
    });

    it('a static token and a JWT still work next to the root token', T, async () => {
        const s = await subOk(h.url, STATIC, ['st']);
        const jwt = signHS256(claims({ subscribe: ['jw'], publish: ['jw'] }), SECRET);
        const j = await subOk(h.url, jwt, ['jw']);
        try {
            await pubOk(h.url, STATIC, { topic: 'st', data: 'static' });
            await pubOk(h.url, jwt, { topic: 'jw', data: 'jwt' });
            await expectExactly(s, ['static']);
            await expectExactly(j, ['jwt']);
            assert403(await getAs(h.url, STATIC, '/topics'), { what: 'static token, /topics' });
        } finally {
            closeAll(s, j);
        }
    });

    it('root reads private events; its `*` carries every topic, private included, but no $sys/ topic', T, async () => {
        const exact = await subOk(h.url, ROOT, ['root/a']);
        const star = await subOk(h.url, ROOT, ['*']);
        const none = await subOk(h.url, ROOT, [], { place: 'token' });
        const watcher = await subOk(h.url, ROOT, ['$sys/connections']);
        try {
            await churnConnections(h.url, ROOT, 'root/churn', watcher);
            await sleep(250);
            await pubOk(h.url, ROOT, { topic: 'root/a', data: 'private-a', private: 'on' });
            await pubOk(h.url, STATIC, { topic: 'st', data: 'private-st', private: 'on' });
            await pubOk(h.url, ROOT, { topic: 'root/a', data: 'marker' });
            await expectExactly(exact, ['private-a', 'marker'], { what: 'exact' });
            await expectExactly(star, ['private-a', 'private-st', 'marker'], { what: '*' });
            await expectExactly(none, ['private-a', 'private-st', 'marker'], { what: 'no topic' });
            assert.ok(watcher.events.length > 0 && watcher.events.every((e) => countOf(e) !== undefined),
                `root reads $sys/connections by name: ${JSON.stringify(watcher.events.map((e) => e.data))}`);
        } finally {
            closeAll(exact, star, none, watcher);
        }
    });

    it('root publishes on every topic but $sys/ ones (403)', T, async () => {
        await pubOk(h.url, ROOT, { topic: ['st', 'jw', 'anything/else'], data: 'x' });
        await pubOk(h.url, ROOT, { topic: 'https://example.com/x/y', data: 'x' }, { json: true });
        for (const topic of ['$sys/connections', '$sys/other']) {
            assert403(await pubAs(h.url, ROOT, { topic, data: '{"count": 1}' }), { secrets: [ROOT], what: topic });
        }
    });
});

describe('AUTH_TOKEN_FILE', () => {
    it('wins over AUTH_TOKEN, and its trailing newline is trimmed', T, async () => {
        const fileTok = `filetok-${rand()}`;
        const envTok = `envtok-${rand()}`;
        const f = path.join(dir, 'root-token');
        fs.writeFileSync(f, `${fileTok}\n`);
        const h = await startHerald({ env: cleanEnv({ AUTH_TOKEN: envTok, AUTH_TOKEN_FILE: f }) });
        try {
            const ok = await getAs(h.url, fileTok, '/topics');
            assert.equal(ok.status, 200, `/topics with the file's token -> ${ok.status} ${ok.body}`);
            const s = await subOk(h.url, fileTok, ['ft'], { place: 'token' });
            s.close();
            assert401(await getAs(h.url, envTok, '/topics'), { invalidToken: true, secrets: [envTok], what: 'AUTH_TOKEN when AUTH_TOKEN_FILE is set' });
            assert401(await getAs(h.url, `${fileTok}\n`, '/topics', { place: 'token' }), { invalidToken: true, what: 'the token with its newline' });
            assert401(await request(`${h.url}/topics`), { invalidToken: false, what: 'no token' });
        } finally {
            await stopOk(h);
        }
        assert.ok(!h.output().includes(fileTok) && !h.output().includes(envTok), `a root token reached the log:\n${h.output()}`);
    });

    it('an unreadable AUTH_TOKEN_FILE stops `herald serve` with exit code 2 and a message naming AUTH_TOKEN_FILE', T, async () => {
        for (const f of [path.join(dir, 'no-such-dir', 'token'), dir]) {
            const r = await runHerald(['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1'],
                { env: cleanEnv({ AUTH_TOKEN_FILE: f, AUTH_TOKEN: `fallback-${rand()}` }), ms: 10000 });
            assert.equal(r.timedOut, false, `herald did not exit with AUTH_TOKEN_FILE=${f}:\n${r.output}`);
            assert.equal(r.code, 2, `exit code with AUTH_TOKEN_FILE=${f}:\n${r.output}`);
            assert.match(r.output, /AUTH_TOKEN_FILE/, `the message does not name AUTH_TOKEN_FILE:\n${r.output}`);
            assert.doesNotMatch(r.output, /listening on/, 'herald listened before refusing');
        }
    });

    it('credentials that cannot be used stop `herald serve` with exit code 2, naming the variable or key', T, async () => {
        const emptyFile = path.join(dir, 'empty-token');
        fs.writeFileSync(emptyFile, '\n');
        const notAKey = path.join(dir, 'not-a-key.pem');
        fs.writeFileSync(notAKey, '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n');
        const ecKey = path.join(dir, 'ec-key.pem');
        fs.writeFileSync(ecKey, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
            .publicKey.export({ type: 'spki', format: 'pem' }));
        const cases = [
            { what: 'an AUTH_TOKEN_FILE holding only a newline', env: { AUTH_TOKEN_FILE: emptyFile }, names: /AUTH_TOKEN_FILE/ },
            { what: 'a missing public key file', config: { auth: { jwt_public_key_file: path.join(dir, 'missing.pem') } }, names: /auth\.jwt_public_key_file/ },
            { what: 'a PEM that is no key', config: { auth: { jwt_public_key_file: notAKey } }, names: /auth\.jwt_public_key_file: not an RSA public key/ },
            { what: 'an EC key where RS256 needs RSA', config: { auth: { jwt_public_key_file: ecKey } }, names: /auth\.jwt_public_key_file: not an RSA public key/ },
            { what: 'open_metrics that is not a boolean', env: { HERALD_AUTH_OPEN_METRICS: 'maybe' }, names: /auth\.open_metrics: expected true or false/ },
            { what: 'log.access that is not a boolean', env: { HERALD_LOG_ACCESS: 'yes please' }, names: /log\.access: expected true or false/ },
        ];
        for (const c of cases) {
            const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--threads', '1'];
            if (c.config) args.push('--config', writeConfig(dir, `bad-${rand()}.toml`, c.config));
            const r = await runHerald(args, { env: cleanEnv(c.env ?? {}), ms: 10000 });
            assert.equal(r.timedOut, false, `${c.what}: herald did not exit:\n${r.output}`);
            assert.equal(r.code, 2, `${c.what}: exit code:\n${r.output}`);
            assert.match(r.output, c.names, `${c.what}: the message does not say what is wrong:\n${r.output}`);
            assert.doesNotMatch(r.output, /listening on/, `${c.what}: herald listened before refusing`);
        }
    });
});

// =======================================================================================

describe('admin endpoints', () => {
    const ADMIN_PATHS = ['/status', '/topics', '/metrics'];

    it('without a token: 401', T, async () => {
        for (const p of ADMIN_PATHS) assert401(await request(base + p), { invalidToken: false, what: p });
    });

    it('with a token that is not admin: 403 (even a `*` grant)', T, async () => {
        for (const p of ADMIN_PATHS) {
            for (const tok of [TOK.reader, TOK.star]) assert403(await getAs(base, tok, p), { secrets: [tok], what: p });
        }
    });

    it('with an admin token: 200, in any place the token travels', T, async () => {
        for (const p of ADMIN_PATHS) {
            for (const place of PLACES) {
                const r = await getAs(base, TOK.admin, p, { place });
                assert.equal(r.status, 200, `${p} with the admin token in ${place} -> ${r.status} ${r.body}`);
            }
        }
        const r = await getAs(base, TOK.admin, '/status');
        assert.doesNotThrow(() => JSON.parse(r.body), '/status is JSON');
    });

    it('with a bad token: 401 invalid_token', T, async () => {
        for (const p of ADMIN_PATHS) assert401(await getAs(base, `bad-${rand()}`, p), { invalidToken: true, what: p });
    });

    it('JWT: `herald.admin: true` is admin, without it 403', T, async () => {
        for (const make of [hsJwt, rsJwt]) {
            const adm = make({ admin: true });
            const non = make({ subscribe: ['*'], publish: ['*'] });
            const nonFalse = make({ subscribe: ['*'], admin: false });
            for (const p of ADMIN_PATHS) {
                const r = await getAs(base, adm, p);
                assert.equal(r.status, 200, `${p} with an admin JWT -> ${r.status} ${r.body}`);
                assert403(await getAs(base, non, p), { what: `${p}, JWT without admin` });
                assert403(await getAs(base, nonFalse, p), { what: `${p}, JWT admin false` });
            }
        }
    });

    it('auth.open_metrics = true opens /metrics to all, not /status or /topics', T, async () => {
        const tok = `plain-${rand()}`;
        const file = writeConfig(dir, 'open-metrics.toml', {
            auth: { open_metrics: true, tokens: [tokenEntry(tok, { subscribe: ['x'] }), tokenEntry(`adm-${rand()}`, { admin: true })] },
        });
        const h = await startHerald({ args: ['--config', file], env: cleanEnv() });
        try {
            for (const who of [null, tok]) {
                const r = await getAs(h.url, who, '/metrics');
                assert.equal(r.status, 200, `/metrics as ${who ? 'a plain token' : 'anonymous'} -> ${r.status} ${r.body}`);
                assert.match(r.body, /^# (HELP|TYPE) /m, '/metrics is Prometheus text');
            }
            assert401(await request(`${h.url}/status`), { invalidToken: false, what: '/status' });
            assert401(await request(`${h.url}/topics`), { invalidToken: false, what: '/topics' });
            assert403(await getAs(h.url, tok, '/status'), { what: '/status, plain token' });
        } finally {
            await stopOk(h);
        }
    });
});

// =======================================================================================

describe('JWT', () => {
    for (const [alg, make] of [['HS256', hsJwt], ['RS256', rsJwt]]) {
        for (const claim of ['herald', 'mercure']) {
            it(`${alg} with the ${claim} claim: subscribe and publish as granted`, T, async () => {
                const topic = `jwt/${alg}/${claim}`;
                const jwt = make({ claim, subscribe: [topic, 'jwt/{a}/{b}/tpl'], publish: [topic], extra: { exp: nowSeconds() + 600 } });
                const s = await subOk(base, jwt, [topic]);
                const place = claim === 'mercure' ? 'authorization' : 'token';
                const t = await subOk(base, jwt, ['*'], { place });
                try {
                    await pubOk(base, jwt, { topic, data: 'own' });
                    await pubOk(base, TOK.star, { topic: 'news', data: 'not-granted' });
                    await pubOk(base, TOK.star, { topic: `jwt/${alg}/x/tpl`, data: 'template' });
                    await pubOk(base, TOK.star, { topic, data: 'private', private: 'on' });
                    await pubOk(base, TOK.star, { topic, data: 'marker' });
                    await expectExactly(s, ['own', 'private', 'marker'], { what: 'exact' });
                    await expectExactly(t, ['own', 'template', 'private', 'marker'], { what: '*' });
                    assert403(await pubAs(base, jwt, { topic: 'news', data: 'x' }), { names: ['news'], what: 'publish not granted' });
                    const r = await subAs(base, jwt, ['news']);
                    closeAll(r);
                    assert403(r, { names: ['news'], what: 'subscribe not granted' });
                } finally {
                    closeAll(s, t);
                }
            });
        }
    }

    it('the herald claim wins over the mercure claim', T, async () => {
        const jwt = signHS256({ herald: { subscribe: ['jwt/h'], publish: ['jwt/h'] }, mercure: { subscribe: ['*'], publish: ['*'] } }, HS_SECRET);
        const s = await subOk(base, jwt, ['jwt/h']);
        s.close();
        const r = await subAs(base, jwt, ['jwt/m']);
        closeAll(r);
        assert403(r, { what: 'subscribe granted by mercure only' });
        assert403(await pubAs(base, jwt, { topic: 'jwt/m', data: 'x' }), { what: 'publish granted by mercure only' });
    });

    // Each: [what, token]; every one is refused with 401 invalid_token on subscribe and publish.
    const refused = () => {
        const grants = { subscribe: ['jwt/r'], publish: ['jwt/r'] };
        const now = nowSeconds();
        return [
            ['HS256 expired (exp 2 s ago)', hsJwt({ ...grants, extra: { exp: now - 2 } })],
            ['RS256 expired (exp 2 s ago)', rsJwt({ ...grants, extra: { exp: now - 2 } })],
            ['HS256 expired an hour ago', hsJwt({ ...grants, extra: { exp: now - 3600 } })],
            ['HS256 not yet valid (nbf in 30 s)', hsJwt({ ...grants, extra: { nbf: now + 30 } })],
            ['RS256 not yet valid (nbf in 30 s)', rsJwt({ ...grants, extra: { nbf: now + 30 } })],
            ['HS256 bad signature', tamperSignature(hsJwt(grants))],
            ['RS256 bad signature', tamperSignature(rsJwt(grants))],
            ['HS256 signed with another secret', signHS256(claims(grants), `${HS_SECRET}x`)],
            ['RS256 signed with another key', signRS256(claims(grants), rsaKeyPair().privateKey)],
            ['alg none', unsignedJwt(claims(grants))],
            ['alg none with the HS256 signature', (() => { const [, p, sig] = hsJwt(grants).split('.'); return `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.${sig}`; })()],
            ['HS512', (() => {
                const h = Buffer.from('{"alg":"HS512","typ":"JWT"}').toString('base64url');
                const p = Buffer.from(JSON.stringify(claims(grants))).toString('base64url');
                return `${h}.${p}.${crypto.createHmac('sha512', HS_SECRET).update(`${h}.${p}`).digest('base64url')}`;
            })()],
            ['no herald nor mercure claim', signHS256({ sub: 'someone', exp: now + 600 }, HS_SECRET)],
            ['subscribe is a string, not a list', signHS256({ herald: { subscribe: 'jwt/r', publish: ['jwt/r'] } }, HS_SECRET)],
            ['subscribe holds a number', signHS256({ herald: { subscribe: ['jwt/r', 3], publish: ['jwt/r'] } }, HS_SECRET)],
            ['publish is an object', signHS256({ mercure: { subscribe: ['jwt/r'], publish: { a: 1 } } }, HS_SECRET)],
            ['claim is a string', signHS256({ herald: 'jwt/r' }, HS_SECRET)],
            ['payload is not JSON', (() => {
                const h = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
                const p = Buffer.from('not json').toString('base64url');
                return `${h}.${p}.${crypto.createHmac('sha256', HS_SECRET).update(`${h}.${p}`).digest('base64url')}`;
            })()],
            ['three parts of garbage', 'abc.def.ghi'],
            ['two parts', hsJwt(grants).split('.').slice(0, 2).join('.')],
        ];
    };

    it('refused with 401 invalid_token: expired, not yet valid, badly signed, alg none, malformed claims', T, async () => {
        for (const [what, jwt] of refused()) {
            const r = await subAs(base, jwt, ['jwt/r']);
            closeAll(r);
            assert401(r, { invalidToken: true, secrets: [jwt], what: `subscribe, ${what}` });
            assert401(await pubAs(base, jwt, { topic: 'jwt/r', data: 'x' }), { invalidToken: true, secrets: [jwt], what: `publish, ${what}` });
            assert401(await getAs(base, jwt, '/status'), { invalidToken: true, what: `/status, ${what}` });
        }
        // The same grants, well signed and valid, work (so the refusals above are about the token).
        const ok = hsJwt({ subscribe: ['jwt/r'], publish: ['jwt/r'], extra: { exp: nowSeconds() + 60, nbf: nowSeconds() - 1 } });
        const s = await subOk(base, ok, ['jwt/r']);
        s.close();
        await pubOk(base, ok, { topic: 'jwt/r', data: 'x' });
    });

    it('a stream opened with a JWT is closed once the token expires', { timeout: 20000 }, async () => {
        const exp = nowSeconds() + 3; // 2 to 3 s from now
        const jwt = hsJwt({ subscribe: ['jwt/exp'], publish: ['jwt/exp'], extra: { exp } });
        const s = await subOk(base, jwt, ['jwt/exp']);
        const other = await subOk(base, TOK.star, ['jwt/exp']);
        try {
            await pubOk(base, TOK.star, { topic: 'jwt/exp', data: 'before' });
            await expectExactly(s, ['before'], { settleMs: 0 });
            assert.equal(s.ended, false, 'the stream ended before its token expired');
            await waitUntil(() => s.ended, { ms: exp * 1000 - Date.now() + 3000, what: 'the hub to close the stream of an expired JWT' });
            assert.ok(Date.now() >= exp * 1000 - 200, `the stream was closed ${exp * 1000 - Date.now()} ms before the token expired`);
            // The stream of a token that does not expire is not touched.
            await pubOk(base, TOK.star, { topic: 'jwt/exp', data: 'after' });
            await expectExactly(other, ['before', 'after']);
            assert.equal(other.ended, false);
            // And the expired token is now refused.
            const r = await subAs(base, jwt, ['jwt/exp']);
            closeAll(r);
            assert401(r, { invalidToken: true, what: 'reconnecting with the expired token' });
        } finally {
            closeAll(s, other);
        }
    });

    // RFC 7515 4.1.11: a `crit` header names extensions the recipient must understand, and
    // herald understands none; a token carrying one is refused, as is a malformed `crit`.
    it('a header crit naming any extension, or a malformed crit, is refused with 401 invalid_token', T, async () => {
        const grants = { subscribe: ['jwt/crit'], publish: ['jwt/crit'] };
        const exp = nowSeconds() + 600;
        const cases = [
            ['HS256 crit ["b64"]', hsJwt({ ...grants, extra: { exp } }, { crit: ['b64'], b64: false }), /crit names an extension .*: b64/],
            ['RS256 crit ["b64"]', rsJwt({ ...grants, extra: { exp } }, { crit: ['b64'], b64: false }), /crit names an extension .*: b64/],
            ['crit naming a private extension', hsJwt(grants, { crit: ['urn:x-ext'], 'urn:x-ext': 1 }), /crit names an extension/],
            ['crit naming exp', hsJwt(grants, { crit: ['exp'], exp }), /crit names an extension/],
            ['crit []', hsJwt(grants, { crit: [] }), /crit must be a non-empty array of strings/],
            ['crit "b64"', hsJwt(grants, { crit: 'b64', b64: false }), /crit must be a non-empty array of strings/],
            ['crit [1]', hsJwt(grants, { crit: [1] }), /crit must be a non-empty array of strings/],
            ['crit null', hsJwt(grants, { crit: null }), /crit must be a non-empty array of strings/],
            ['crit {}', hsJwt(grants, { crit: {} }), /crit must be a non-empty array of strings/],
        ];
        for (const [what, jwt, reason] of cases) {
            for (const place of ['header', 'token']) {
                const r = await subAs(base, jwt, ['jwt/crit'], { place });
                closeAll(r);
                const err = assert401(r, { invalidToken: true, secrets: [jwt], what: `subscribe (${place}), ${what}` });
                assert.match(err.error, reason, `subscribe, ${what}: ${err.error}`);
            }
            const p = assert401(await pubAs(base, jwt, { topic: 'jwt/crit', data: 'x' }), { invalidToken: true, secrets: [jwt], what: `publish, ${what}` });
            assert.match(p.error, reason, `publish, ${what}: ${p.error}`);
        }
        // The same grants without crit are accepted: the refusals above are about crit.
        const ok = hsJwt({ ...grants, extra: { exp } }, { b64: false, kid: 'k1' });
        const s = await subOk(base, ok, ['jwt/crit']);
        try {
            await pubOk(base, ok, { topic: 'jwt/crit', data: 'without crit' });
            await expectExactly(s, ['without crit']);
        } finally {
            s.close();
        }
    });

    it('a JWT whose JSON nests more than 64 deep is refused with 401 naming the limit; the hub stays up', T, async () => {
        const b64 = (text) => Buffer.from(text).toString('base64url');
        const signRaw = (header, payload) => {
            const input = `${b64(header)}.${b64(payload)}`;
            return `${input}.${crypto.createHmac('sha256', HS_SECRET).update(input).digest('base64url')}`;
        };
        const arrays = (n) => '['.repeat(n) + ']'.repeat(n);
        const header = '{"alg":"HS256","typ":"JWT"}';
        const grants = '{"herald":{"subscribe":["jwt/deep"],"publish":["jwt/deep"]},"x":';
        // The payload object is level 1: "x" may hold 63 levels.
        const ok = signRaw(header, `${grants}${arrays(63)}}`);
        const s = await subOk(base, ok, ['jwt/deep']);
        try {
            // As deep as a request head of 8 KiB can carry, and unbalanced.
            for (const [what, jwt] of [
                ['payload 65 deep', signRaw(header, `${grants}${arrays(64)}}`)],
                ['payload 1,000 deep', signRaw(header, `${grants}${arrays(1000)}}`)],
                ['payload 2,500 deep', signRaw(header, `${grants}${arrays(2500)}}`)],
                ['payload of 5,500 unclosed brackets', signRaw(header, '['.repeat(5500))],
                ['header 100 deep', signRaw(`{"alg":"HS256","x":${arrays(100)}}`, `${grants}1}`)],
            ]) {
                const r = await subAs(base, jwt, ['jwt/deep']);
                closeAll(r);
                const err = assert401(r, { invalidToken: true, secrets: [jwt], what: `subscribe, ${what}` });
                assert.match(err.error, /more than 64 levels deep/, `subscribe, ${what}: ${err.error}`);
                const p = assert401(await pubAs(base, jwt, { topic: 'jwt/deep', data: 'x' }), { invalidToken: true, what: `publish, ${what}` });
                assert.match(p.error, /more than 64 levels deep/, `publish, ${what}: ${p.error}`);
            }
            // 100,000 deep does not fit in a request head: 431, and nothing is parsed.
            const huge = signRaw(header, `${grants}${arrays(100000)}}`);
            const r = await pubAs(base, huge, { topic: 'jwt/deep', data: 'x' });
            assertJsonError(r, 431, 'a 100,000-deep JWT in the Authorization header');
            assert.equal((await request(`${base}/healthz`)).status, 200);
            await pubOk(base, ok, { topic: 'jwt/deep', data: 'still here' });
            await expectExactly(s, ['still here']);
        } finally {
            s.close();
        }
    });

    describe('key confusion', () => {
        it('only RS256 configured: an HS256 token signed with the public key PEM as secret is refused', T, async () => {
            const tok = `rsonly-${rand()}`;
            const file = writeConfig(dir, 'rs-only.toml', { auth: { jwt_public_key_file: pemFile, tokens: [tokenEntry(tok, {})] } });
            const h = await startHerald({ args: ['--config', file], env: cleanEnv() });
            try {
                const grants = { subscribe: ['*', 'kc'], publish: ['kc'], admin: true };
                for (const secret of [rsa.publicKeyPem, rsa.publicKeyPem.trim(), '']) {
                    const forged = signHS256(claims(grants), secret);
                    const r = await subAs(h.url, forged, ['kc']);
                    closeAll(r);
                    assert401(r, { invalidToken: true, what: `HS256 with secret ${secret ? 'the PEM' : '""'}` });
                    assert401(await pubAs(h.url, forged, { topic: 'kc', data: 'x' }), { invalidToken: true, what: 'publish, forged HS256' });
                    assert401(await getAs(h.url, forged, '/status'), { invalidToken: true, what: '/status, forged HS256' });
                }
                // A genuine RS256 token works there.
                const good = rsJwt(grants);
                const s = await subOk(h.url, good, ['kc']);
                try {
                    await pubOk(h.url, good, { topic: 'kc', data: 'genuine' });
                    await expectExactly(s, ['genuine']);
                } finally {
                    s.close();
                }
                // The hub with no anonymous grant: a token that may read nothing gets 403 on * and no topic.
                for (const topics of [['*'], []]) {
                    const r = await subAs(h.url, tok, topics);
                    closeAll(r);
                    assert403(r, { secrets: [tok], what: `${JSON.stringify(topics)} with a token that may read nothing` });
                    const a = await subAs(h.url, null, topics);
                    closeAll(a);
                    assert401(a, { invalidToken: false, what: `${JSON.stringify(topics)} anonymous, nothing granted` });
                }
                const empty = rsJwt({ subscribe: [], publish: [] });
                const e = await subAs(h.url, empty, ['*']);
                closeAll(e);
                assert403(e, { what: '* with a JWT that may read nothing' });
            } finally {
                await stopOk(h);
            }
        });

        it('only HS256 configured: an RS256 token is refused', T, async () => {
            const file = writeConfig(dir, 'hs-only.toml', { auth: { jwt_secret: HS_SECRET } });
            const h = await startHerald({ args: ['--config', file], env: cleanEnv() });
            try {
                const grants = { subscribe: ['kc'], publish: ['kc'], admin: true };
                const forged = rsJwt(grants);
                const r = await subAs(h.url, forged, ['kc']);
                closeAll(r);
                assert401(r, { invalidToken: true, what: 'subscribe, RS256 without a public key' });
                assert401(await pubAs(h.url, forged, { topic: 'kc', data: 'x' }), { invalidToken: true, what: 'publish, RS256 without a public key' });
                const good = hsJwt(grants);
                const s = await subOk(h.url, good, ['kc']);
                s.close();
                // jwt_secret alone turns auth on.
                const a = await subAs(h.url, null, ['kc']);
                closeAll(a);
                assert401(a, { invalidToken: false, what: 'anonymous subscribe with only jwt_secret set' });
                assert401(await pubAs(h.url, null, { topic: 'kc', data: 'x' }), { invalidToken: false, what: 'anonymous publish with only jwt_secret set' });
                assert401(await request(`${h.url}/topics`), { invalidToken: false, what: '/topics with only jwt_secret set' });
            } finally {
                await stopOk(h);
            }
        });
    });
});

// =======================================================================================

describe('CORS', () => {
    const EVIL = 'https://evil.example.com';
    // `expose`: Access-Control-Expose-Headers is checked on actual answers; on a preflight
    // the Fetch standard ignores it.
    function assertCors(res, origin, what, { expose = true } = {}) {
        const h = res.headers;
        assert.equal(h['access-control-allow-origin'], origin, `${what}: Access-Control-Allow-Origin`);
        assert.equal(h['access-control-allow-credentials'], 'true', `${what}: Access-Control-Allow-Credentials`);
        if (expose) {
            const exposed = String(h['access-control-expose-headers'] ?? '').split(',').map((x) => x.trim().toLowerCase());
            assert.ok(exposed.includes('last-event-id'), `${what}: Access-Control-Expose-Headers ${JSON.stringify(h['access-control-expose-headers'])}`);
            assert.ok(exposed.includes('www-authenticate'), `${what}: Access-Control-Expose-Headers ${JSON.stringify(h['access-control-expose-headers'])}`);
        }
        const vary = String(h.vary ?? '').split(',').map((x) => x.trim().toLowerCase());
        assert.ok(vary.includes('origin'), `${what}: Vary ${JSON.stringify(h.vary)}`);
    }
    function assertNoCors(res, what) {
        for (const k of ['access-control-allow-origin', 'access-control-allow-credentials']) {
            assert.equal(res.headers[k], undefined, `${what}: ${k} is ${JSON.stringify(res.headers[k])}`);
        }
    }

    it('a listed origin: CORS headers on a normal answer (GET and publish)', T, async () => {
        const r = await request(`${base}/healthz`, { headers: { Origin: ORIGIN } });
        assert.equal(r.status, 200);
        assertCors(r, ORIGIN, 'GET /healthz');
        const p = await pubAs(base, TOK.star, { topic: 'cors', data: 'x' }, { headers: { Origin: ORIGIN } });
        assert.equal(p.status, 200, p.body);
        assertCors(p, ORIGIN, 'POST /events');
        const a = await getAs(base, TOK.admin, '/topics', { headers: { Origin: ORIGIN } });
        assert.equal(a.status, 200);
        assertCors(a, ORIGIN, 'GET /topics');
    });

    it('a listed origin: CORS headers on error answers (401, 403, 404)', T, async () => {
        const u = await subAs(base, null, ['secret'], { headers: { Origin: ORIGIN } });
        closeAll(u);
        assert401(u, { what: 'anonymous subscribe' });
        assertCors(u, ORIGIN, '401 on subscribe');
        const f = await pubAs(base, TOK.reader, { topic: 'secret', data: 'x' }, { headers: { Origin: ORIGIN } });
        assert403(f, { what: 'publish not granted' });
        assertCors(f, ORIGIN, '403 on publish');
        const n = await getAs(base, TOK.admin, '/no/such/path', { headers: { Origin: ORIGIN } });
        assert.equal(n.status, 404);
        assertCors(n, ORIGIN, '404');
    });

    it('a listed origin: CORS headers on an SSE stream', T, async () => {
        const s = await subOk(base, TOK.reader, ['news'], { headers: { Origin: ORIGIN } });
        try {
            assertCors(s, ORIGIN, 'SSE stream');
            await pubOk(base, TOK.star, { topic: 'news', data: 'cors-stream' });
            await expectExactly(s, ['cors-stream']);
        } finally {
            s.close();
        }
    });

    it('a preflight from a listed origin: 204 with methods, headers and max age, without a token', T, async () => {
        for (const p of ['/events', '/status', '/topics', '/events?topic=secret']) {
            const r = await request(base + p, {
                method: 'OPTIONS',
                headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization, last-event-id' },
            });
            assert.equal(r.status, 204, `OPTIONS ${p} -> ${r.status} ${r.body}`);
            assertCors(r, ORIGIN, `preflight ${p}`, { expose: false });
            const methods = String(r.headers['access-control-allow-methods'] ?? '').split(',').map((x) => x.trim().toUpperCase());
            for (const m of ['GET', 'POST', 'OPTIONS']) assert.ok(methods.includes(m), `Allow-Methods ${JSON.stringify(r.headers['access-control-allow-methods'])} lacks ${m}`);
            const allowed = String(r.headers['access-control-allow-headers'] ?? '').split(',').map((x) => x.trim().toLowerCase());
            for (const hd of ['authorization', 'content-type', 'last-event-id', 'cache-control', 'accept', 'x-requested-with']) {
                assert.ok(allowed.includes(hd), `Allow-Headers ${JSON.stringify(r.headers['access-control-allow-headers'])} lacks ${hd}`);
            }
            assert.equal(r.headers['access-control-max-age'], '86400', 'Access-Control-Max-Age');
            assert.equal(r.body, '', 'a 204 has no body');
        }
        const post = await request(`${base}/events`, { method: 'OPTIONS', headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' } });
        assert.equal(post.status, 204, `preflight for POST -> ${post.status}`);
    });

    it('a preflight from an origin not listed: 403 without CORS headers', T, async () => {
        for (const origin of [EVIL, 'https://app.example.com.evil.com', 'http://app.example.com', 'https://app.example.co', 'null']) {
            const r = await request(`${base}/events`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' } });
            assertJsonError(r, 403, `preflight from ${origin}`);
            assertNoCors(r, `preflight from ${origin}`);
        }
    });

    it('a request from an origin not listed is served without CORS headers', T, async () => {
        for (const origin of [EVIL, 'https://app.example.com.evil.com', 'http://app.example.com']) {
            const r = await request(`${base}/healthz`, { headers: { Origin: origin } });
            assert.equal(r.status, 200);
            assertNoCors(r, `GET /healthz from ${origin}`);
            const e = await subAs(base, null, ['secret'], { headers: { Origin: origin } });
            closeAll(e);
            assert.equal(e.status, 401);
            assertNoCors(e, `401 from ${origin}`);
            const s = await subOk(base, TOK.reader, ['news'], { headers: { Origin: origin } });
            s.close();
            assertNoCors(s, `stream from ${origin}`);
        }
        const none = await request(`${base}/healthz`);
        assertNoCors(none, 'no Origin at all');
    });

    it('cors_origins = ["*"] allows any origin, echoing it (never "*")', T, async () => {
        const file = writeConfig(dir, 'cors-any.toml', { server: { cors_origins: ['*'] } });
        const h = await startHerald({ args: ['--config', file], env: cleanEnv() });
        try {
            for (const origin of ['https://one.example.org', 'http://localhost:3000']) {
                const r = await request(`${h.url}/healthz`, { headers: { Origin: origin } });
                assertCors(r, origin, `GET from ${origin}`);
                const pf = await request(`${h.url}/events`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' } });
                assert.equal(pf.status, 204, `preflight from ${origin}`);
                assertCors(pf, origin, `preflight from ${origin}`, { expose: false });
                const s = await subOk(h.url, null, ['any'], { headers: { Origin: origin } });
                s.close();
                assertCors(s, origin, `stream from ${origin}`);
            }
        } finally {
            await stopOk(h);
        }
    });
});

// =======================================================================================

// A log line after a failed reload: it names the file, or says what failed (reload/SIGHUP).
const reloadFailureLogged = (out, file) => out.includes(file) || path.basename(file) && out.includes(path.basename(file)) || /(reload|SIGHUP)/i.test(out);

describe('SIGHUP', () => {
    const A = `hup-a-${rand()}`;
    const B = `hup-b-${rand()}`;
    const C = `hup-c-${rand()}`;
    const D = `hup-d-${rand()}`;
    const P = `hup-p-${rand()}`;
    const HS = `hup-hs-${rand()}`;
    let h;
    let file;
    const configV1 = () => ({
        auth: {
            jwt_secret: HS,
            tokens: [
                tokenEntry(A, { subscribe: ['t1'] }),
                tokenEntry(B, { subscribe: ['t1'] }),
                tokenEntry(D, { subscribe: ['t1'] }),
                tokenEntry(P, { publish: ['*'] }),
            ],
        },
    });
    const configV2 = () => ({
        auth: {
            jwt_secret: HS,
            tokens: [
                tokenEntry(B, { subscribe: ['t1'] }), // unchanged
                tokenEntry(C, { subscribe: ['t1'] }), // new
                tokenEntry(D, { subscribe: ['t1', 't2'] }), // its read rights changed
                tokenEntry(P, { publish: ['*'] }),
            ],
        },
    });
    before(async () => {
        file = writeConfig(dir, 'hup.toml', configV1());
        h = await startHerald({ args: ['--config', file], env: cleanEnv() });
    });
    after(async () => { await stopOk(h); });

    it('a reload closes the streams of removed tokens and changed rights, keeps the others, and swaps the tokens in', { timeout: 40000 }, async () => {
        const sa = await subOk(h.url, A, ['t1']);
        const sb = await subOk(h.url, B, ['t1']);
        const sd = await subOk(h.url, D, ['t1']);
        const jwt = signHS256(claims({ subscribe: ['t1'] }), HS);
        const sj = await subOk(h.url, jwt, ['t1']);
        let sc;
        try {
            await pubOk(h.url, P, { topic: 't1', data: 'before' });
            for (const s of [sa, sb, sd, sj]) await expectExactly(s, ['before'], { settleMs: 0 });
            writeConfig(dir, 'hup.toml', configV2());
            h.proc.kill('SIGHUP');
            await expectEnded(sa, 5000, 'the hub to close the stream of the removed token A');
            await expectEnded(sd, 5000, 'the hub to close the stream of D, whose read rights changed');
            await sleep(300);
            assert.equal(sb.ended, false, 'the stream of the unchanged token B was closed');
            assert.equal(sj.ended, false, 'the stream of a JWT whose key did not change was closed');
            await pubOk(h.url, P, { topic: 't1', data: 'after' });
            await expectExactly(sb, ['before', 'after'], { what: 'B' });
            await expectExactly(sj, ['before', 'after'], { what: 'JWT' });
            sc = await subOk(h.url, C, ['t1']);
            await pubOk(h.url, P, { topic: 't1', data: 'for-c' });
            await expectExactly(sc, ['for-c'], { what: 'C' });
            const ra = await subAs(h.url, A, ['t1']);
            closeAll(ra);
            assert401(ra, { invalidToken: true, secrets: [A], what: 'A after the reload' });
            const sd2 = await subOk(h.url, D, ['t2']);
            sd2.close();
            assert.equal(h.proc.exitCode, null, 'herald exited on SIGHUP');
        } finally {
            closeAll(sa, sb, sd, sj, sc);
        }
    });

    it('a config that no longer loads is logged and ignored: the old tokens keep working, no stream is dropped', { timeout: 40000 }, async () => {
        const sb = await subOk(h.url, B, ['t1']);
        const sc = await subOk(h.url, C, ['t1']);
        try {
            const mark = h.output().length;
            fs.writeFileSync(file, '[auth\ntokens = = broken\n');
            h.proc.kill('SIGHUP');
            await waitUntil(() => reloadFailureLogged(h.output().slice(mark), file), {
                ms: 5000, what: 'a log line about the config file that no longer loads', describe: () => h.output().slice(mark),
            });
            await sleep(300);
            assert.equal(sb.ended, false, 'B\'s stream was dropped');
            assert.equal(sc.ended, false, 'C\'s stream was dropped');
            await pubOk(h.url, P, { topic: 't1', data: 'still' });
            await expectExactly(sb, ['still'], { what: 'B' });
            await expectExactly(sc, ['still'], { what: 'C' });
            const again = await subOk(h.url, C, ['t1']);
            again.close();
            const ra = await subAs(h.url, A, ['t1']);
            closeAll(ra);
            assert401(ra, { invalidToken: true, what: 'A stays refused' });
            // A config with a bad value (not a syntax error) is ignored just the same.
            const mark2 = h.output().length;
            fs.writeFileSync(file, '[auth]\ntokens = "not a list"\n');
            h.proc.kill('SIGHUP');
            await waitUntil(() => reloadFailureLogged(h.output().slice(mark2), file), {
                ms: 5000, what: 'a log line naming the config file with a bad value', describe: () => h.output().slice(mark2),
            });
            await sleep(300);
            assert.equal(sb.ended, false, 'B\'s stream was dropped after the second bad reload');
            const again2 = await subOk(h.url, B, ['t1']);
            again2.close();
            assert.equal(h.proc.exitCode, null, 'herald exited on a bad reload');
            assert.ok(![A, B, C, D, P].some((t) => h.output().includes(t)), `a token reached the log:\n${h.output()}`);
        } finally {
            closeAll(sb, sc);
        }
    });

    it('a reload that changes the anonymous grants closes the streams whose read rights changed', { timeout: 40000 }, async () => {
        const E = `hup-e-${rand()}`;
        const F = `hup-f-${rand()}`;
        const Q = `hup-q-${rand()}`;
        const f = writeConfig(dir, 'hup-anon.toml', {
            auth: {
                anonymous: { subscribe: ['pub'], publish: [] },
                tokens: [tokenEntry(E, { subscribe: ['t1'] }), tokenEntry(F, { subscribe: ['t1'] }), tokenEntry(Q, { publish: ['*'] })],
            },
        });
        const ha = await startHerald({ args: ['--config', f], env: cleanEnv() });
        const streams = [];
        try {
            const anon = await subOk(ha.url, null, ['pub']);
            const star = await subOk(ha.url, E, ['*']); // t1 (own) and pub (anonymous)
            streams.push(anon, star);
            await pubOk(ha.url, Q, { topic: 'pub', data: 'pub-before' });
            await expectExactly(anon, ['pub-before'], { settleMs: 0 });
            await expectExactly(star, ['pub-before'], { settleMs: 0 });
            writeConfig(dir, 'hup-anon.toml', {
                auth: {
                    anonymous: { subscribe: [], publish: [] },
                    tokens: [tokenEntry(E, { subscribe: ['t1'] }), tokenEntry(F, { subscribe: ['t1'] }), tokenEntry(Q, { publish: ['*'] })],
                },
            });
            ha.proc.kill('SIGHUP');
            await expectEnded(anon, 5000, 'the hub to close the anonymous stream on a topic anonymous may no longer read');
            await expectEnded(star, 5000, 'the hub to close the `*` stream of a token that no longer reads the anonymous topic');
            await pubOk(ha.url, Q, { topic: 'pub', data: 'pub-after' });
            await sleep(200);
            assert.ok(!star.events.some((e) => e.data === 'pub-after'), 'a token read a topic it lost after the reload');
            const a = await subAs(ha.url, null, ['pub']);
            closeAll(a);
            assert401(a, { invalidToken: false, what: 'anonymous on pub after the reload' });
            const e2 = await subOk(ha.url, E, ['*']);
            streams.push(e2);
            await pubOk(ha.url, Q, { topic: 'pub', data: 'pub-later' });
            await pubOk(ha.url, Q, { topic: 't1', data: 'marker' });
            await expectExactly(e2, ['marker']);
        } finally {
            closeAll(...streams);
            await stopOk(ha);
        }
    });

    it('a reload reads AUTH_TOKEN_FILE again: the old root token is refused and its streams closed', { timeout: 40000 }, async () => {
        const f = path.join(dir, 'hup-root');
        const r1 = `root1-${rand()}`;
        const r2 = `root2-${rand()}`;
        fs.writeFileSync(f, `${r1}\n`);
        const hr = await startHerald({ env: cleanEnv({ AUTH_TOKEN_FILE: f }) });
        try {
            const s = await subOk(hr.url, r1, ['r']);
            fs.writeFileSync(f, `${r2}\n`);
            hr.proc.kill('SIGHUP');
            await expectEnded(s, 5000, 'the hub to close the stream of the old root token');
            assert401(await getAs(hr.url, r1, '/topics'), { invalidToken: true, what: 'the old root token' });
            const ok = await getAs(hr.url, r2, '/topics');
            assert.equal(ok.status, 200, `the new root token -> ${ok.status}`);
        } finally {
            await stopOk(hr);
        }
    });
});

// =======================================================================================

describe('access log', () => {
    it('one line per request with the target, its token and authorization values masked; secrets appear nowhere', T, async () => {
        const tok = 'SECRETVALUE';
        const file = writeConfig(dir, 'access.toml', {
            log: { access: true },
            auth: { tokens: [tokenEntry(tok, { subscribe: ['logged'], publish: ['logged'], admin: true })] },
        });
        const h = await startHerald({ args: ['--config', file], env: cleanEnv() });
        try {
            const r1 = await request(`${h.url}/healthz?token=SECRETVALUE`);
            assert.equal(r1.status, 200);
            const r2 = await request(`${h.url}/topics?authorization=SECRETVALUE2`);
            assert.equal(r2.status, 401);
            const r3 = await request(`${h.url}/status`, { headers: { Authorization: 'Bearer SECRETVALUE3' } });
            assert.equal(r3.status, 401);
            const r4 = await request(`${h.url}/metrics?x=1`, { headers: { Cookie: 'herald_token=SECRETVALUE4' } });
            assert.equal(r4.status, 401);
            const r5 = await request(`${h.url}/topics?token=SECRETVALUE`);
            assert.equal(r5.status, 200);
            const r6 = await publish(h.url, { topic: 'logged', data: 'x' }, { path: '/events?a=b&token=SECRETVALUE&authorization=SECRETVALUE5' });
            assert.equal(r6.status, 200, r6.body);
            const s = await subOk(h.url, null, ['logged'], { query: { token: 'SECRETVALUE' } });
            s.close();

            const lines = () => h.output().split('\n');
            const lineWith = (needle) => lines().find((l) => l.includes(needle));
            for (const needle of ['/healthz?token=***', '/topics?authorization=***', '/status', '/metrics?x=1', '/topics?token=***']) {
                await waitUntil(() => lineWith(needle), { ms: 5000, what: `an access line with ${needle}`, describe: () => h.output() });
            }
            await waitUntil(() => lines().some((l) => l.includes('/events?') && l.includes('token=***') && l.includes('authorization=***') && /POST/.test(l)),
                { ms: 5000, what: 'the access line of the publish', describe: () => h.output() });
            const l1 = lineWith('/healthz?token=***');
            assert.match(l1, /\bGET\b/, l1);
            assert.match(l1, /\b200\b/, l1);
            assert.match(l1, /127\.0\.0\.1/, `the remote address: ${l1}`);
            assert.match(lineWith('/topics?authorization=***'), /\b401\b/);
            assert.match(lineWith('/metrics?x=1'), /\b401\b/);
            assert.ok(h.output().includes('token=***'));
            await sleep(200);
            assert.ok(!h.output().includes('SECRETVALUE'), `a secret reached the output:\n${h.output()}`);
        } finally {
            await stopOk(h);
        }
        assert.ok(!h.output().includes('SECRETVALUE'), `a secret reached the output:\n${h.output()}`);
    });

    it('HERALD_LOG_ACCESS=true turns the access log on too', T, async () => {
        const h = await startHerald({ env: cleanEnv({ HERALD_LOG_ACCESS: 'true' }) });
        try {
            const r = await request(`${h.url}/healthz?token=SECRETVALUE6&x=y`);
            assert.equal(r.status, 200);
            await waitUntil(() => h.output().split('\n').some((l) => l.includes('/healthz?token=***')),
                { ms: 5000, what: 'an access line with /healthz?token=***', describe: () => h.output() });
            assert.ok(!h.output().includes('SECRETVALUE6'), h.output());
        } finally {
            await stopOk(h);
        }
    });

    it('without it, requests are not logged line by line', T, async () => {
        const h = await startHerald({ env: cleanEnv() });
        try {
            const r = await request(`${h.url}/healthz?marker=unlogged`);
            assert.equal(r.status, 200);
            await sleep(300);
            assert.ok(!h.output().includes('/healthz?marker'), `an access line without [log] access:\n${h.output()}`);
        } finally {
            await stopOk(h);
        }
    });
});
