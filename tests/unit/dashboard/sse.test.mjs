// The dashboard's SSE parser (src/dashboard/web/sse.js), fed the text/event-stream format
// in every way a network may cut it: the same events must come out whatever the pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from '../../../src/dashboard/web/sse.js';

function parse(pieces) {
    const events = [];
    const p = new SseParser((e) => events.push(e));
    for (const piece of pieces) p.feed(piece);
    return { events, parser: p };
}

// Every way to cut `text` in two, and one character at a time.
function cuts(text) {
    const out = [[text], [...text]];
    for (let i = 1; i < text.length; i += 1) out.push([text.slice(0, i), text.slice(i)]);
    return out;
}

const STREAM = 'retry: 3000\n\nid: 1\nevent: ticket\ndata: {"a":\ndata:  1}\n\n: keep-alive\n\nid: 2\ndata: two\n\n';
const EXPECTED = [
    { id: '1', event: 'ticket', data: '{"a":\n 1}' },
    { id: '2', event: 'message', data: 'two' },
];

test('LF, CRLF and lone-CR line ends give the same events, however the text is cut', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
        const text = STREAM.replaceAll('\n', eol);
        for (const pieces of cuts(text)) {
            const { events, parser } = parse(pieces);
            assert.deepEqual(events, EXPECTED, `${JSON.stringify(eol)} cut as ${JSON.stringify(pieces).slice(0, 80)}`);
            assert.equal(parser.retry, 3000);
            assert.equal(parser.lastEventId, '2');
        }
    }
});

test('an id without data moves the resume point but sends nothing; an id with NUL is ignored', () => {
    const { events, parser } = parse(['id: 7\n\n', 'id: bad\0id\ndata: x\n\n']);
    assert.deepEqual(events, [{ id: '7', event: 'message', data: 'x' }]);
    assert.equal(parser.lastEventId, '7');
});

test('field details: no space after the colon, a bare field name, unknown fields, a bad retry', () => {
    const { events, parser } = parse(['data:tight\ndata\ndata: \nfoo: bar\nretry: 12x\n\n']);
    assert.deepEqual(events, [{ id: '', event: 'message', data: 'tight\n\n' }]);
    assert.equal(parser.retry, null);
});

test('an event without its blank line is not sent yet', () => {
    const { events } = parse(['data: half\n']);
    assert.deepEqual(events, []);
});
