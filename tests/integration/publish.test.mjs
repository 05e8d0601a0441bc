// POST /events: form and JSON bodies, the id in the response (text or JSON), ids unique
// and in publish order, publisher ids and duplicates, the `type` alias, and every way a
// publish is refused (400, 403, 409, 413, 415, JSON nested too deep), each with a JSON
// error body and without anything reaching subscribers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, request } from './lib/harness.mjs';
import {
    subscribe, waitEvents, waitData, publishOk, uniqueTopic, assertJsonError, getMetrics,
} from './lib/util.mjs';

const T = { timeout: 30000 };
const FORM = 'application/x-www-form-urlencoded';
const MAX_BODY = 4096;
const MAX_TOPICS = 3;

function post(base, contentType, body, headers = {}) {
    const h = { ...headers };
    if (contentType !== null) h['Content-Type'] = contentType;
    return request(`${base}/events`, { method: 'POST', headers: h, body });
}

describe('publish', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald({
            env: {
                HERALD_SERVER_MAX_BODY_BYTES: String(MAX_BODY),
                HERALD_SERVER_MAX_TOPICS_PER_EVENT: String(MAX_TOPICS),
            },
        });
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    test('a form publish answers 200 text/plain with the id the subscriber sees', T, async () => {
        const topic = uniqueTopic('form');
        const s = await subscribe(base, [topic]);
        try {
            const res = await publish(base, { topic, data: 'form data é', event: 'created' });
            assert.equal(res.status, 200, res.body);
            assert.match(String(res.headers['content-type']), /^text\/plain\b/i);
            assert.match(res.body, /^\S+\n?$/, `the body is the id alone: ${JSON.stringify(res.body)}`);
            const id = res.body.trim();
            const [e] = await waitEvents(s, 1);
            assert.deepEqual(e, { id, event: 'created', data: 'form data é', lines: 1 });
        } finally {
            s.close();
        }
    });

    test('a form publish to several topics reaches each of them', T, async () => {
        const a = uniqueTopic('form-a');
        const b = uniqueTopic('form-b');
        const sa = await subscribe(base, [a]);
        const sb = await subscribe(base, [b]);
        try {
            const id = await publishOk(base, { topic: [a, b], data: 'both' });
            for (const s of [sa, sb]) {
                const [e] = await waitEvents(s, 1);
                assert.equal(e.id, id);
                assert.equal(e.data, 'both');
            }
        } finally {
            sa.close();
            sb.close();
        }
    });

    test('JSON bodies: string data as is, any other JSON value as compact text', T, async () => {
        const topic = uniqueTopic('json');
        const s = await subscribe(base, [topic]);
        try {
            const cases = [
                ['{"topic": %T, "data": "plain text"}', 'plain text'],
                ['{"topic": %T, "data": "two\\nlines"}', 'two\nlines'],
                ['{"topic": %T, "data": {"a": 1, "b": [1, 2, {"c": "d e"}], "f": null}}', '{"a":1,"b":[1,2,{"c":"d e"}],"f":null}'],
                ['{"topic": [%T], "data": [1, "x", true]}', '[1,"x",true]'],
                ['{"topic": %T, "data": 42}', '42'],
                ['{"topic": %T, "data": true}', 'true'],
                ['{"topic": %T, "data": {"s": "line\\nbreak"}}', '{"s":"line\\nbreak"}'],
                ['{"topic": %T, "data": "\\u00e9\\u2713"}', 'é✓'],
            ];
            const ids = [];
            for (const [body] of cases) {
                const res = await post(base, 'application/json', body.replace('%T', JSON.stringify(topic)));
                assert.equal(res.status, 200, `${body} -> ${res.status} ${res.body}`);
                ids.push(res.body.trim());
            }
            const events = await waitEvents(s, cases.length);
            assert.deepEqual(events.map((e) => e.data), cases.map((c) => c[1]));
            assert.deepEqual(events.map((e) => e.id), ids);
            // Compact JSON with a string holding "\n" stays on one data line.
            assert.equal(events[6].lines, 1);
        } finally {
            s.close();
        }
    });

    test('JSON bodies take event, id and retry', T, async () => {
        const topic = uniqueTopic('json-fields');
        const s = await subscribe(base, [topic]);
        try {
            const customId = uniqueTopic('json-id');
            const res = await publish(base, { topic, data: 'x', event: 'kind', id: customId, retry: 2100 }, { json: true });
            assert.equal(res.status, 200, res.body);
            assert.equal(res.body.trim(), customId);
            const [e] = await waitEvents(s, 1);
            assert.deepEqual(e, { id: customId, event: 'kind', data: 'x', lines: 1 });
            assert.equal(s.parser.retry, 2100);
        } finally {
            s.close();
        }
    });

    test('form `type` is an alias of `event`', T, async () => {
        const topic = uniqueTopic('type');
        const s = await subscribe(base, [topic]);
        try {
            await publishOk(base, { topic, data: 'typed', type: 'mercure-type' });
            const [e] = await waitEvents(s, 1);
            assert.equal(e.event, 'mercure-type');
            assert.equal(e.data, 'typed');
        } finally {
            s.close();
        }
    });

    test('Content-Type parameters are accepted', T, async () => {
        const topic = uniqueTopic('charset');
        const s = await subscribe(base, [topic]);
        try {
            let res = await post(base, `${FORM}; charset=utf-8`, new URLSearchParams({ topic, data: 'f' }).toString());
            assert.equal(res.status, 200, res.body);
            res = await post(base, 'application/json; charset=UTF-8', JSON.stringify({ topic, data: 'j' }));
            assert.equal(res.status, 200, res.body);
            const events = await waitEvents(s, 2);
            assert.deepEqual(events.map((e) => e.data), ['f', 'j']);
        } finally {
            s.close();
        }
    });

    test('ids are unique and arrive in publish order', T, async () => {
        const topics = [uniqueTopic('order-a'), uniqueTopic('order-b'), uniqueTopic('order-c')];
        const s = await subscribe(base, topics);
        try {
            const ids = [];
            for (let i = 0; i < 30; i++) {
                ids.push(await publishOk(base, { topic: topics[i % 3], data: `n${i}` }, { json: i % 2 === 1 }));
            }
            assert.equal(new Set(ids).size, ids.length, `ids repeat: ${ids.join(' ')}`);
            const events = await waitEvents(s, 30);
            assert.deepEqual(events.map((e) => e.id), ids);
            assert.deepEqual(events.map((e) => e.data), ids.map((_, i) => `n${i}`));
        } finally {
            s.close();
        }
    });

    test('Accept: application/json answers {"id": ...}', T, async () => {
        const topic = uniqueTopic('accept');
        const s = await subscribe(base, [topic]);
        try {
            const ids = [];
            for (const json of [false, true]) {
                const res = await publish(base, { topic, data: `json=${json}` }, { json, headers: { Accept: 'application/json' } });
                assert.equal(res.status, 200, res.body);
                assert.match(String(res.headers['content-type']), /^application\/json\b/i);
                const body = JSON.parse(res.body);
                assert.equal(typeof body.id, 'string');
                assert.ok(body.id.length > 0);
                ids.push(body.id);
            }
            const events = await waitEvents(s, 2);
            assert.deepEqual(events.map((e) => e.id), ids);
        } finally {
            s.close();
        }
    });

    test('a publisher id is honoured and its duplicate refused with 409', T, async () => {
        const topic = uniqueTopic('custom-id');
        const s = await subscribe(base, [topic]);
        try {
            const custom = `urn:uuid:${uniqueTopic('id')}`;
            const res = await publish(base, { topic, data: 'first', id: custom });
            assert.equal(res.status, 200, res.body);
            assert.equal(res.body.trim(), custom);
            const dup = await publish(base, { topic, data: 'second', id: custom });
            assertJsonError(dup, 409, 'duplicate id (form)');
            const dupJson = await publish(base, { topic, data: 'third', id: custom }, { json: true });
            assertJsonError(dupJson, 409, 'duplicate id (JSON)');
            // Hub ids go on being unique after a publisher id.
            const next = await publishOk(base, { topic, data: 'sentinel' });
            assert.notEqual(next, custom);
            await waitData(s, 'sentinel');
            assert.deepEqual(s.events.map((e) => [e.id, e.data]), [[custom, 'first'], [next, 'sentinel']]);
        } finally {
            s.close();
        }
    });

    test('a duplicate id on another topic is refused as well (ids are global)', T, async () => {
        const custom = uniqueTopic('global-id');
        await publishOk(base, { topic: uniqueTopic('dup-a'), data: 'a', id: custom });
        const dup = await publish(base, { topic: uniqueTopic('dup-b'), data: 'b', id: custom });
        assertJsonError(dup, 409, 'duplicate id on another topic');
    });

    test('invalid publishes answer 400 with a JSON error and deliver nothing', T, async () => {
        const topic = uniqueTopic('bad');
        const s = await subscribe(base, ['*']);
        const long = 'a'.repeat(1025);
        const longMultibyte = 'é'.repeat(513); // 513 characters, 1026 bytes
        const tooMany = Array.from({ length: MAX_TOPICS + 1 }, (_, i) => `${topic}-${i}`);
        const form = (fields) => new URLSearchParams(fields).toString();
        const formCases = [
            ['missing topic', form({ data: 'x' })],
            ['missing data', form({ topic })],
            ['invalid UTF-8 topic (%FF)', 'topic=%FF&data=x'],
            ['invalid UTF-8 topic (%C3%28)', `topic=${topic}%C3%28&data=x`],
            ['topic over 1024 bytes', form({ topic: long, data: 'x' })],
            ['topic over 1024 bytes in UTF-8', form({ topic: longMultibyte, data: 'x' })],
            [`${MAX_TOPICS + 1} topics`, tooMany.map((t) => `topic=${encodeURIComponent(t)}`).join('&') + '&data=x'],
            ['id with LF', form({ topic, data: 'x', id: 'a\nb' })],
            ['id with CR', form({ topic, data: 'x', id: 'a\rb' })],
            ['id with CRLF', form({ topic, data: 'x', id: 'a\r\nb' })],
            ['id with NUL', form({ topic, data: 'x', id: 'a\u0000b' })],
            ['event with LF', form({ topic, data: 'x', event: 'a\nb' })],
            ['event with CR', form({ topic, data: 'x', event: 'a\rb' })],
            ['type with LF', form({ topic, data: 'x', type: 'a\nb' })],
        ];
        const jsonCases = [
            ['malformed JSON', '{"topic": "x", "data": '],
            ['a JSON array', JSON.stringify([{ topic, data: 'x' }])],
            ['a JSON string', JSON.stringify('topic')],
            ['a numeric topic', JSON.stringify({ topic: 5, data: 'x' })],
            ['an empty topic list', JSON.stringify({ topic: [], data: 'x' })],
            ['missing topic', JSON.stringify({ data: 'x' })],
            ['missing data', JSON.stringify({ topic })],
            ['topic over 1024 bytes', JSON.stringify({ topic: long, data: 'x' })],
            [`${MAX_TOPICS + 1} topics`, JSON.stringify({ topic: tooMany, data: 'x' })],
            ['id with LF', JSON.stringify({ topic, data: 'x', id: 'a\nb' })],
            ['id with NUL', JSON.stringify({ topic, data: 'x', id: 'a\u0000b' })],
            ['event with CR', JSON.stringify({ topic, data: 'x', event: 'a\rb' })],
            ['invalid UTF-8 in a string', Buffer.concat([
                Buffer.from(`{"topic": "${topic}`), Buffer.from([0xff, 0xfe]), Buffer.from('", "data": "x"}')])],
            // A JSON parser that stops at the NUL would take the object before it.
            ['a raw NUL after the object', Buffer.concat([
                Buffer.from(JSON.stringify({ topic, data: 'x' })), Buffer.from([0]), Buffer.from('junk')])],
        ];
        try {
            for (const [what, body] of formCases) {
                assertJsonError(await post(base, FORM, body), 400, `form: ${what}`);
            }
            for (const [what, body] of jsonCases) {
                assertJsonError(await post(base, 'application/json', body), 400, `JSON: ${what}`);
            }
            // Still an error body in JSON when the client asked for JSON.
            assertJsonError(await post(base, FORM, form({ topic }), { Accept: 'application/json' }), 400, 'missing data, Accept JSON');
            await publishOk(base, { topic, data: 'sentinel' });
            await waitData(s, 'sentinel');
            assert.deepEqual(s.events.map((e) => e.data), ['sentinel'], 'a refused publish reached a subscriber');
        } finally {
            s.close();
        }
    });

    test('topic length and topic count limits are inclusive', T, async () => {
        const exact = 'b'.repeat(1024);
        const exactMultibyte = 'é'.repeat(512); // 1024 bytes
        const s = await subscribe(base, [exact, exactMultibyte]);
        try {
            await publishOk(base, { topic: exact, data: '1024 ASCII' });
            await publishOk(base, { topic: exactMultibyte, data: '1024 UTF-8' }, { json: true });
            const topics = Array.from({ length: MAX_TOPICS }, (_, i) => `${uniqueTopic('max')}-${i}`);
            await publishOk(base, { topic: topics, data: 'max topics' });
            await publishOk(base, { topic: topics, data: 'max topics json' }, { json: true });
            const events = await waitEvents(s, 2);
            assert.deepEqual(events.map((e) => e.data), ['1024 ASCII', '1024 UTF-8']);
        } finally {
            s.close();
        }
    });

    test('publishing to $sys/ topics is forbidden (403)', T, async () => {
        const watcher = await subscribe(base, ['$sys/connections', '$sys/custom']);
        try {
            assertJsonError(await publish(base, { topic: '$sys/connections', data: '{"count":999}' }), 403, 'form $sys/connections');
            assertJsonError(await publish(base, { topic: '$sys/custom', data: 'x' }), 403, 'form $sys/custom');
            assertJsonError(await publish(base, { topic: '$sys/custom', data: 'x' }, { json: true }), 403, 'JSON $sys/custom');
            assertJsonError(await publish(base, { topic: [uniqueTopic('ok'), '$sys/custom'], data: 'x' }), 403, 'one of several topics is $sys/');
            // Nothing we sent reached the $sys watcher (it may see real connection counts).
            const forged = watcher.events.filter((e) => e.data === 'x' || e.data.includes('999'));
            assert.deepEqual(forged, []);
        } finally {
            watcher.close();
        }
    });

    test('bodies over max_body_bytes answer 413', T, async () => {
        const topic = uniqueTopic('big');
        const s = await subscribe(base, [topic]);
        try {
            const big = 'x'.repeat(MAX_BODY + 100);
            assertJsonError(await publish(base, { topic, data: big }), 413, 'form body over the limit');
            assertJsonError(await publish(base, { topic, data: big }, { json: true }), 413, 'JSON body over the limit');
            const fits = 'y'.repeat(MAX_BODY - 200);
            await publishOk(base, { topic, data: fits });
            const [e] = await waitEvents(s, 1);
            assert.equal(e.data, fits);
        } finally {
            s.close();
        }
    });

    test('unsupported content types answer 415', T, async () => {
        for (const ct of ['text/plain', 'application/xml', 'image/png']) {
            assertJsonError(await post(base, ct, 'topic=a&data=b'), 415, `Content-Type ${ct}`);
        }
    });

    test('a Mercure-style private=on event is not delivered to anonymous subscribers', T, async () => {
        const topic = uniqueTopic('private-on');
        const s = await subscribe(base, [topic]);
        try {
            const res = await publish(base, { topic, data: 'secret', private: 'on' });
            assert.equal(res.status, 200, res.body);
            await publishOk(base, { topic, data: 'public' });
            await waitData(s, 'public');
            assert.deepEqual(s.events.map((e) => e.data), ['public']);
        } finally {
            s.close();
        }
    });
});

// JSON nesting: dump() of a non-string `data` used to recurse once per level, so one body of
// 100,000 nested arrays (200 KB, under the body limit) ended the process. A JSON body may
// nest arrays and objects at most 64 levels deep, its own object included.
describe('JSON nesting', () => {
    let h;
    let base;
    before(async () => {
        h = await startHerald();
        base = h.url;
    });
    after(async () => {
        const code = await h.stop('SIGTERM');
        assert.equal(code, 0, `herald exited with ${code} on SIGTERM:\n${h.output().slice(-2000)}`);
    });

    const arrays = (n) => '['.repeat(n) + ']'.repeat(n);
    const objects = (n) => '{"k":'.repeat(n) + '1' + '}'.repeat(n);
    const jsonPost = (body) => post(base, 'application/json', body).catch((e) => {
        assert.fail(`the hub dropped the request (${e.message}); it ${h.proc.exitCode !== null || h.proc.signalCode !== null ? `exited (${h.proc.exitCode ?? h.proc.signalCode})` : 'is still running'}`);
    });
    const assertTooDeep = (res, what) => {
        const err = assertJsonError(res, 400, what);
        assert.match(err.error, /\b64\b/, `${what}: the error does not name the limit: ${err.error}`);
        assert.match(err.error, /deep/, `${what}: the error does not say what is wrong: ${err.error}`);
    };

    test('data nested 100,000 deep gets 400; the hub stays up and other streams notice nothing', T, async () => {
        const target = uniqueTopic('deep');
        const other = uniqueTopic('bystander');
        const onTarget = await subscribe(base, [target]);
        const onOther = await subscribe(base, [other]);
        try {
            const rejected0 = (await getMetrics(base)).sum('herald_requests_rejected_total', /reason="bad_request"/);
            const body = `{"topic":${JSON.stringify(target)},"data":${arrays(100000)}}`;
            assert.ok(body.length > 190000 && body.length < 1048576, `the body is ${body.length} bytes`);
            assertTooDeep(await jsonPost(body), 'data 100,000 deep');
            const health = await request(`${base}/healthz`);
            assert.equal(health.status, 200, `/healthz after the deep publish: ${health.status} ${health.body}`);
            assert.equal(h.proc.exitCode, null, 'the hub exited');
            await publishOk(base, { topic: other, data: 'after' });
            await publishOk(base, { topic: target, data: 'marker' });
            await waitData(onOther, 'after');
            await waitData(onTarget, 'marker');
            assert.deepEqual(onOther.events.map((e) => e.data), ['after']);
            assert.deepEqual(onTarget.events.map((e) => e.data), ['marker']);
            assert.equal(onOther.ended, false, 'the bystander stream ended');
            const rejected1 = (await getMetrics(base)).sum('herald_requests_rejected_total', /reason="bad_request"/);
            assert.equal(rejected1, rejected0 + 1, 'the refusal is counted once as bad_request');
        } finally {
            onTarget.close();
            onOther.close();
        }
    });

    test('a body 64 levels deep is accepted (data 63 deep), 65 is refused', T, async () => {
        const topic = uniqueTopic('depth');
        const s = await subscribe(base, [topic]);
        try {
            const t = JSON.stringify(topic);
            assert.equal((await jsonPost(`{"topic":${t},"data":${arrays(63)}}`)).status, 200, 'arrays, 64 deep');
            assert.equal((await jsonPost(`{"topic":${t},"data":${objects(63)}}`)).status, 200, 'objects, 64 deep');
            assertTooDeep(await jsonPost(`{"topic":${t},"data":${arrays(64)}}`), 'arrays, 65 deep');
            assertTooDeep(await jsonPost(`{"topic":${t},"data":${objects(64)}}`), 'objects, 65 deep');
            await publishOk(base, { topic, data: 'marker' });
            await waitData(s, 'marker');
            assert.deepEqual(s.events.map((e) => e.data), [arrays(63), objects(63).replace(/\s/g, ''), 'marker']);
        } finally {
            s.close();
        }
    });

    test('too deep anywhere in the body is refused, not only in data', T, async () => {
        const topic = uniqueTopic('elsewhere');
        const s = await subscribe(base, [topic]);
        try {
            const t = JSON.stringify(topic);
            for (const [what, body] of [
                ['an unknown field', `{"topic":${t},"data":"x","meta":${arrays(64)}}`],
                ['topic', `{"topic":${arrays(100000)},"data":"x"}`],
                ['id', `{"topic":${t},"data":"x","id":${objects(100)}}`],
                ['unclosed brackets', `{"topic":${t},"data":${'['.repeat(500000)}`],
                ['the body itself', arrays(70)],
            ]) {
                assertTooDeep(await jsonPost(body), what);
            }
            // Brackets inside strings are text, not nesting.
            const text = '['.repeat(1000);
            assert.equal((await jsonPost(`{"topic":${t},"data":${JSON.stringify(text)}}`)).status, 200);
            await waitData(s, text);
            assert.deepEqual(s.events.map((e) => e.data), [text]);
        } finally {
            s.close();
        }
    });
});
