// A minimal GRIP origin for the Pushpin benchmark peer (bench/peer.sh start pushpin).
//
//   node grip-origin.mjs PORT
//
// GET /stream/<topic> answers at once with a stream hold on channel <topic>: Pushpin sends
// this response's headers and body (one SSE comment) to the client, keeps the connection
// open and from then on writes whatever is published to the channel. The origin sees each
// subscription once, when it opens; events never pass through it.
// GET /health answers 200 (used by peer.sh to wait for the origin). Anything else is 404.
import http from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error('usage: node grip-origin.mjs PORT');
    process.exit(2);
}

const PREFIX = '/stream/';
const BODY = ':ok\n\n';

const server = http.createServer((req, res) => {
    const path = req.url.split('?', 1)[0];
    if (req.method === 'GET' && path.startsWith(PREFIX) && path.length > PREFIX.length) {
        let topic;
        try {
            topic = decodeURIComponent(path.slice(PREFIX.length));
        } catch {
            topic = '';
        }
        // A channel name goes into a header (where ',' and ';' separate channels and
        // parameters): refuse what cannot be one.
        if (topic === '' || /[\x00-\x1f\x7f,;]/.test(topic)) {
            res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad topic\n');
            return;
        }
        res.writeHead(200, {
            'Content-Type': 'text/event-stream',
            'Cache-Control': 'no-cache',
            'Grip-Hold': 'stream',
            'Grip-Channel': topic,
            'Content-Length': Buffer.byteLength(BODY),
        });
        res.end(BODY);
        return;
    }
    if (req.method === 'GET' && path === '/health') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
        return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
});

// Pushpin (through zurl) reuses its connections to the origin; keep them a while.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
    console.log(`grip-origin listening on http://127.0.0.1:${port}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
