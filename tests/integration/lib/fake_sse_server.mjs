// A small SSE server that misbehaves on purpose, for testing `herald bench` against
// something other than herald (which never drops, repeats or garbles an event).
//
// Routes, by default like Nchan:  GET /sub/<topic> streams SSE; POST /pub/<topic> with a
// raw body publishes the body as the event's data and answers 201.
// With formRoutes: true, like herald: GET /events?topic=T and form-encoded POST /events
// (topic=...&data=...), answering 200.
//
// Misbehaviour, aimed at one subscriber, the victim (the `victim`-th to connect, counting
// from 0; the first by default). `<n>` matches the event whose data starts with `<p>-<n> `
// for any publisher p (the tests that use these run one publisher):
//   dropSeq: n         never send the victim event n
//   duplicateSeq: n    send the victim event n twice
//   garbage: true      send the victim one event whose data is not a bench event, just
//                      before its first real one
//   closeAfter: k      end the victim's stream once it has been sent k events
// For everyone:
//   failPublishSeq: n  answer 500 to the publish of event n and deliver it to nobody
//                      (with deliverFailed: true, deliver it all the same)
//   splitWrites: true  write every stream byte by byte-ish (1 to 3 bytes a write, a tick
//                      apart), HTTP chunk framing included, so that reads end mid-line and
//                      mid-chunk-header
//   chunked: false     with splitWrites, a close-delimited body instead of chunked
//   eol: '\r\n'        the line ending of every SSE line ('\n', '\r\n' or '\r'; SSE allows all)
//   fancy: true        frames as other hubs write them: a comment, an `event:` line, `data:`
//                      without its space, and a second data line after the stamp
//   endKeepsConnection: true   closeAfter ends the chunked body but leaves the connection
//                      open for another request, as Node's res.end() does by itself
//
// startFakeSse(opts) resolves to { port, base, close(), stats }; stats counts connects,
// open subscribers, accepted and failed publishes, events sent, and keeps the last
// subscribe and publish request headers seen, the subscribers' source addresses and
// topics, the published data sizes and the topic and stamp of each accepted publish.
import http from 'node:http';
import { once } from 'node:events';

const seqOf = (data) => {
    const m = /^\d+-(\d+) /.exec(data);
    return m ? Number(m[1]) : null;
};

export async function startFakeSse({
    formRoutes = false,
    victim = 0,
    dropSeq = null,
    duplicateSeq = null,
    garbage = false,
    closeAfter = null,
    failPublishSeq = null,
    deliverFailed = false,
    splitWrites = false,
    chunked = true,
    eol = '\n',
    fancy = false,
    endKeepsConnection = false,
} = {}) {
    const stats = {
        connects: 0, subscribers: 0, publishes: 0, failedPublishes: 0, sent: 0,
        subHeaders: null, pubHeaders: null,
        sources: new Map(), // remote address -> subscriber connections from it
        topics: new Map(), // topic -> subscriber connections to it
        dataSizes: new Set(), // byte lengths of the published data
        published: [], // [topic, '<p>-<seq>'] of each accepted publish
    };
    const topics = new Map(); // topic -> Set of subscribers
    let nextId = 1;

    // One subscriber: `send(text)` writes SSE text (with `eol` line ends) in order, whatever
    // the write mode; `end()` ends the stream.
    function addSubscriber(req, res, topic) {
        stats.subHeaders = req.headers;
        const index = stats.connects++;
        const from = req.socket.remoteAddress;
        stats.sources.set(from, (stats.sources.get(from) || 0) + 1);
        stats.topics.set(topic, (stats.topics.get(topic) || 0) + 1);
        const sub = { index, topic, sent: 0, sawGarbage: false, ended: false };
        const socket = req.socket;
        socket.setNoDelay(true);
        if (splitWrites) {
            // Take the socket over: raw head, then the body as a stream of tiny writes.
            let queue = Promise.resolve();
            const raw = (bytes) => {
                queue = queue.then(async () => {
                    for (let i = 0; i < bytes.length && !socket.destroyed;) {
                        const n = 1 + Math.floor(Math.random() * 3);
                        socket.write(bytes.subarray(i, i + n));
                        i += n;
                        await new Promise((r) => setImmediate(r));
                    }
                });
            };
            const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n' +
                (chunked ? 'Transfer-Encoding: chunked\r\n' : 'Connection: close\r\n') + '\r\n';
            socket.write(head); // the head in one piece: the tiny writes are for the body
            sub.write = (text) => {
                const body = Buffer.from(text);
                if (!chunked) { raw(body); return; }
                // Two HTTP chunks per frame when it is long enough, split mid-line.
                const cut = Math.max(1, Math.floor(body.length / 2));
                for (const part of [body.subarray(0, cut), body.subarray(cut)]) {
                    if (part.length) {
                        raw(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
                    }
                }
            };
            sub.end = () => {
                if (chunked) raw(Buffer.from('0\r\n\r\n'));
                queue = queue.then(() => socket.end());
            };
        } else {
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
            res.flushHeaders();
            sub.write = (text) => res.write(text);
            // End the body, then (unless asked not to) the connection.
            sub.end = () => res.end(() => { if (!endKeepsConnection) socket.end(); });
        }
        sub.send = (text) => sub.write(text.replaceAll('\n', eol));
        sub.send(': hello\n\n');
        let set = topics.get(topic);
        if (!set) topics.set(topic, set = new Set());
        set.add(sub);
        stats.subscribers += 1;
        socket.on('close', () => {
            if (set.delete(sub)) stats.subscribers -= 1;
        });
    }

    function deliver(topic, data) {
        const id = nextId++;
        const lines = data.split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('');
        const frame = fancy
            ? `: keep-alive\nevent: message\nid: ${id}\ndata:${data}\ndata: a second line\n\n`
            : `id: ${id}\n${lines}\n`;
        const seq = seqOf(data);
        for (const sub of [...(topics.get(topic) || [])]) {
            if (sub.ended) continue;
            const isVictim = sub.index === victim;
            if (isVictim && garbage && !sub.sawGarbage) {
                sub.sawGarbage = true;
                sub.send('data: this is not a bench event\n\n');
            }
            if (isVictim && dropSeq !== null && seq === dropSeq) continue;
            const copies = isVictim && duplicateSeq !== null && seq === duplicateSeq ? 2 : 1;
            for (let c = 0; c < copies; c++) {
                sub.send(frame);
                sub.sent += 1;
                stats.sent += 1;
            }
            if (isVictim && closeAfter !== null && sub.sent >= closeAfter) {
                sub.ended = true;
                sub.end();
            }
        }
        return id;
    }

    const readBody = async (req) => {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        return Buffer.concat(chunks).toString('utf8');
    };

    const server = http.createServer(async (req, res) => {
        const url = new URL(req.url, 'http://fake');
        let sub = null;
        let pub = null;
        if (formRoutes) {
            if (url.pathname === '/events' && req.method === 'GET') sub = url.searchParams.get('topic');
            if (url.pathname === '/events' && req.method === 'POST') pub = 'form';
        } else if (url.pathname.startsWith('/sub/') && req.method === 'GET') {
            sub = decodeURIComponent(url.pathname.slice(5));
        } else if (url.pathname.startsWith('/pub/') && req.method === 'POST') {
            pub = decodeURIComponent(url.pathname.slice(5));
        }
        if (sub) {
            addSubscriber(req, res, sub);
            return;
        }
        if (pub === null) {
            res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
            return;
        }
        stats.pubHeaders = req.headers;
        const body = await readBody(req);
        let topic = pub;
        let data = body;
        if (pub === 'form') {
            const form = new URLSearchParams(body);
            topic = form.get('topic');
            data = form.get('data');
            if (!topic || data === null) {
                res.writeHead(400, { 'Content-Type': 'text/plain' }).end('topic and data required\n');
                return;
            }
        }
        if (failPublishSeq !== null && seqOf(data) === failPublishSeq) {
            stats.failedPublishes += 1;
            if (deliverFailed) deliver(topic, data);
            res.writeHead(500, { 'Content-Type': 'text/plain' }).end('failing on purpose\n');
            return;
        }
        stats.publishes += 1;
        stats.dataSizes.add(Buffer.byteLength(data));
        stats.published.push([topic, data.split(' ')[0]]);
        const id = deliver(topic, data);
        res.writeHead(formRoutes ? 200 : 201, { 'Content-Type': 'text/plain' }).end(`${id}\n`);
    });
    // A connection left open after its stream ended stays open for the whole test.
    if (endKeepsConnection) server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    return {
        port,
        base: `http://127.0.0.1:${port}`,
        stats,
        async close() {
            const closed = once(server, 'close');
            server.close();
            server.closeAllConnections();
            await closed;
        },
    };
}
