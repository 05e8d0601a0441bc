// Helpers for the access-control suites (auth.test.mjs, auth_property.test.mjs): config
// files written to a temporary folder (TOML, with proper string quoting), JWTs signed in
// Node (HS256, RS256, and the forged kinds the hub must refuse), credentials placed where
// the hub looks for them, and assertions on 401/403 answers and on what a stream received.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStream, sleep } from './harness.mjs';
import { assertJsonError, eventsPath, waitUntil } from './util.mjs';

// ---------------------------------------------------------------------------------------
// Environment: the suites decide themselves whether AUTH_TOKEN and friends are set.

// `extra` over an environment where AUTH_TOKEN, AUTH_TOKEN_FILE and every HERALD_AUTH_* /
// HERALD_LOG_* / HERALD_SERVER_CORS_* variable inherited from the caller are unset
// (spawn drops keys whose value is undefined).
export function cleanEnv(extra = {}) {
    const env = { AUTH_TOKEN: undefined, AUTH_TOKEN_FILE: undefined };
    for (const k of Object.keys(process.env)) {
        if (/^HERALD_(AUTH|LOG|SERVER_CORS)_/.test(k)) env[k] = undefined;
    }
    return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------
// Temporary folders and TOML config files.

export function makeTempDir(prefix = 'herald-auth-') {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// A TOML basic string: quotes, backslashes and control characters escaped.
export function tomlString(s) {
    let out = '"';
    for (const ch of String(s)) {
        const c = ch.codePointAt(0);
        if (ch === '"') out += '\\"';
        else if (ch === '\\') out += '\\\\';
        else if (ch === '\n') out += '\\n';
        else if (ch === '\r') out += '\\r';
        else if (ch === '\t') out += '\\t';
        else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
        else out += ch;
    }
    return `${out}"`;
}

function tomlValue(v) {
    if (typeof v === 'string') return tomlString(v);
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
        assert.ok(Number.isFinite(v), `not a TOML number: ${v}`);
        return String(v);
    }
    if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
    if (v && typeof v === 'object') {
        return `{ ${Object.entries(v).map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(', ')} }`;
    }
    throw new Error(`no TOML form for ${JSON.stringify(v)}`);
}

const tomlKey = (k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k));
const isTableArray = (v) => Array.isArray(v) && v.length > 0 && v.every((x) => x && typeof x === 'object' && !Array.isArray(x));

// Serialises { section: { key: value } } to TOML. A value that is a non-empty array of
// objects becomes an array of tables ([[auth.tokens]]); a plain object an inline table;
// `undefined` values are left out.
export function toToml(config) {
    const lines = [];
    for (const [section, body] of Object.entries(config)) {
        if (body === undefined) continue;
        lines.push(`[${tomlKey(section)}]`);
        const later = [];
        for (const [k, v] of Object.entries(body)) {
            if (v === undefined) continue;
            if (isTableArray(v)) later.push([k, v]);
            else lines.push(`${tomlKey(k)} = ${tomlValue(v)}`);
        }
        lines.push('');
        for (const [k, tables] of later) {
            for (const t of tables) {
                lines.push(`[[${tomlKey(section)}.${tomlKey(k)}]]`);
                for (const [tk, tv] of Object.entries(t)) {
                    if (tv !== undefined) lines.push(`${tomlKey(tk)} = ${tomlValue(tv)}`);
                }
                lines.push('');
            }
        }
    }
    return lines.join('\n');
}

// Writes `config` (an object for toToml, or TOML text) to `dir/name`; returns the path.
export function writeConfig(dir, name, config) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof config === 'string' ? config : toToml(config));
    return file;
}

// A static token entry for [[auth.tokens]].
export const tokenEntry = (token, { subscribe = [], publish = [], admin = false } = {}) =>
    ({ token, subscribe, publish, admin });

// ---------------------------------------------------------------------------------------
// JWTs.

export const b64url = (data) => Buffer.from(typeof data === 'string' ? data : data).toString('base64url');
const b64json = (obj) => b64url(Buffer.from(JSON.stringify(obj), 'utf8'));
export const nowSeconds = () => Math.floor(Date.now() / 1000);

// The payload of a token granting `subscribe`/`publish` (and `admin`) under `claim`
// ('herald' or 'mercure'), with `extra` top-level claims (exp, nbf, ...).
export function claims({ subscribe = [], publish = [], admin, claim = 'herald', extra = {} } = {}) {
    const grants = { subscribe, publish };
    if (admin !== undefined) grants.admin = admin;
    return { [claim]: grants, ...extra };
}

export function signHS256(payload, secret, header = {}) {
    const h = b64json({ alg: 'HS256', typ: 'JWT', ...header });
    const p = b64json(payload);
    const sig = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest();
    return `${h}.${p}.${b64url(sig)}`;
}

export function signRS256(payload, privateKey, header = {}) {
    const h = b64json({ alg: 'RS256', typ: 'JWT', ...header });
    const p = b64json(payload);
    const sig = crypto.sign('sha256', Buffer.from(`${h}.${p}`), privateKey);
    return `${h}.${p}.${b64url(sig)}`;
}

// An unsigned token (`alg: none`), with an empty signature part.
export function unsignedJwt(payload) {
    return `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(payload)}.`;
}

// A fresh 2048-bit RSA key pair: { privateKey (KeyObject), publicKeyPem }.
export function rsaKeyPair() {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

// The same token with one character of its signature changed.
export function tamperSignature(jwt) {
    const [h, p, s] = jwt.split('.');
    const bytes = Buffer.from(s, 'base64url');
    bytes[0] ^= 0x01;
    return `${h}.${p}.${b64url(bytes)}`;
}

// ---------------------------------------------------------------------------------------
// Where a credential travels.

export const PLACES = ['header', 'token', 'authorization', 'herald_token', 'mercureAuthorization'];

// { headers, query } carrying `token` in `place` (one of PLACES).
export function credential(token, place = 'header') {
    switch (place) {
    case 'header': return { headers: { Authorization: `Bearer ${token}` }, query: {} };
    case 'token': return { headers: {}, query: { token } };
    case 'authorization': return { headers: {}, query: { authorization: token } };
    case 'herald_token': return { headers: { Cookie: `herald_token=${token}` }, query: {} };
    case 'mercureAuthorization': return { headers: { Cookie: `mercureAuthorization=${token}` }, query: {} };
    default: throw new Error(`unknown place ${place}`);
    }
}

export const bearer = (token) => ({ Authorization: `Bearer ${token}` });

// Appends `query` (an object) to `p`, which may already hold a query string.
export function withQuery(p, query = {}) {
    const q = new URLSearchParams(query).toString();
    if (!q) return p;
    return p + (p.includes('?') ? '&' : '?') + q;
}

// ---------------------------------------------------------------------------------------
// Assertions on refusals.

// A 401: JSON error body, WWW-Authenticate `Bearer realm="herald"`, with
// `error="invalid_token"` when `invalidToken` is true, without it when false, either when
// undefined. `names` must appear in the sentence, `secrets` must not appear in the body.
// Returns the parsed body.
export function assert401(res, { invalidToken, names = [], secrets = [], what = '' } = {}) {
    const label = what ? `${what}: ` : '';
    const parsed = assertErrorBody(res, 401, label, secrets);
    for (const n of names) {
        assert.ok(parsed.error.includes(n), `${label}the error ${JSON.stringify(parsed.error)} does not name ${JSON.stringify(n)}`);
    }
    const wa = String(res.headers['www-authenticate'] ?? '');
    assert.ok(wa.length > 0, `${label}401 without WWW-Authenticate`);
    assert.match(wa, /^Bearer\b/, `${label}WWW-Authenticate is ${JSON.stringify(wa)}`);
    assert.match(wa, /realm="herald"/, `${label}WWW-Authenticate is ${JSON.stringify(wa)}`);
    if (invalidToken === true) {
        assert.match(wa, /error="invalid_token"/, `${label}a refused token: WWW-Authenticate is ${JSON.stringify(wa)}`);
    } else if (invalidToken === false) {
        assert.doesNotMatch(wa, /error=/, `${label}no token was given: WWW-Authenticate is ${JSON.stringify(wa)}`);
    }
    return parsed;
}

// A 403 with a JSON error body; `names` must appear in the sentence, `secrets` must not.
export function assert403(res, { names = [], secrets = [], what = '' } = {}) {
    const label = what ? `${what}: ` : '';
    const parsed = assertErrorBody(res, 403, label, secrets);
    for (const n of names) {
        assert.ok(parsed.error.includes(n), `${label}the error ${JSON.stringify(parsed.error)} does not name ${JSON.stringify(n)}`);
    }
    return parsed;
}

function assertErrorBody(res, status, label, secrets) {
    const parsed = assertJsonError(res, status, label.replace(/: $/, ''));
    for (const s of secrets) {
        assert.ok(!res.body.includes(s), `${label}the error body quotes the token: ${res.body}`);
    }
    return parsed;
}

// ---------------------------------------------------------------------------------------
// Streams.

// GET /events (or `path`) on `topics` with `headers` and extra `query`. For a 200, the
// open stream (after its first block arrived); otherwise { status, headers, body } once
// the answer is complete. Never hangs: a 200 whose first block does not come fails.
export async function tryStream(base, topics, { headers = {}, query = {}, path: p = '/events', ms = 5000 } = {}) {
    const target = eventsPath(topics, query, p);
    const s = await openStream(base, target, { headers });
    if (s.status === 200) {
        try {
            await s.waitFor(0, ms, () => s.body.includes('\n') || s.ended);
        } catch {
            s.close();
            throw new Error(`GET ${target}: 200 but no retry block within ${ms} ms`);
        }
        return s;
    }
    try {
        await s.waitEnd(ms);
    } catch {
        s.close();
        throw new Error(`GET ${target}: ${s.status} whose body did not end within ${ms} ms: ${JSON.stringify(s.body)}`);
    }
    return { status: s.status, headers: s.headers, body: s.body, close() {} };
}

// A stream that must open (200); `what` labels the failure.
export async function openOk(base, topics, opts = {}, what = '') {
    const s = await tryStream(base, topics, opts);
    if (s.status !== 200 || !s.parser) {
        assert.fail(`${what ? `${what}: ` : ''}GET ${eventsPath(topics, opts.query, opts.path)} answered ${s.status}, expected 200: ${s.body}`);
    }
    return s;
}

// Waits for the event whose data is `marker` (which must arrive), lets `settleMs` pass so
// that anything wrongly sent around it shows up too, then asserts that the data of the
// events received is exactly `expected` (the marker last), in that order.
export async function expectExactly(s, expected, { marker = expected[expected.length - 1], ms = 5000, settleMs = 150, what = '' } = {}) {
    const label = what ? `${what}: ` : '';
    try {
        await s.waitFor(0, ms, () => s.events.some((e) => e.data === marker) || s.ended);
    } catch {
        // asserted below
    }
    assert.ok(s.events.some((e) => e.data === marker),
        `${label}the marker ${JSON.stringify(marker)} did not arrive within ${ms} ms (ended=${s.ended}); got ${JSON.stringify(s.events.map((e) => e.data))}`);
    if (settleMs) await sleep(settleMs);
    assert.deepEqual(s.events.map((e) => e.data), expected, `${label}events received`);
}

// Waits until the stream `s` has been ended by the server; fails after `ms`.
export async function expectEnded(s, ms, what) {
    await waitUntil(() => s.ended, { ms, what: what || 'the hub to close the stream' });
}

export const closeAll = (...streams) => {
    for (const s of streams) if (s && typeof s.close === 'function') s.close();
};
