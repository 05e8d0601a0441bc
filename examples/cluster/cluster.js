// herald cluster page: reads one topic's stream through nginx with fetch() and a small SSE
// parser instead of EventSource, because EventSource does not show response headers and
// this page shows X-Herald-Node, the node that serves the stream. Like EventSource it
// remembers the last event id and, when the stream ends or fails, reconnects with a
// Last-Event-ID header; nginx then picks a node (the other one, when this one was killed)
// and that node replays what was missed before going on live.
'use strict';

(() => {
    const $ = (id) => document.getElementById(id);
    const ui = {
        topic: $('topic'), node: $('node'), state: $('state'), count: $('count'),
        lastId: $('last-id'), dups: $('dups'), disorder: $('disorder'), skipped: $('skipped'),
        moves: $('moves'), events: $('events'),
    };

    const topic = new URLSearchParams(location.search).get('topic') || 'counter';
    const url = new URL('events', document.baseURI);
    url.searchParams.set('topic', topic);
    ui.topic.textContent = topic;

    const KEEP_EVENTS = 200; // rows in the list
    const KEEP_IDS = 10000; // ids remembered to count duplicates
    // The first reconnection after a stream that was live goes at once (a node was killed
    // or restarted: the other one is there); further attempts wait the server's retry:
    // hint, as EventSource does.
    const FIRST_RETRY_MS = 250;
    // herald sends a comment every 15 s on an idle stream: three missed means the
    // connection is dead even if no error came (a node whose host vanished).
    const SILENCE_MS = 45000;

    let lastId = null; // the last event id seen, sent back as Last-Event-ID
    let retryMs = 3000;
    let currentNode = null;
    let lastN = null;
    let count = 0;
    let dups = 0;
    let disorder = 0;
    let skipped = 0;
    const seenIds = new Set();

    function setState(state, text) {
        ui.state.dataset.state = state;
        ui.state.textContent = text;
    }

    const clock = () => new Date().toTimeString().slice(0, 8);

    function addMove(text, kind) {
        const li = document.createElement('li');
        li.className = kind;
        const time = document.createElement('time');
        time.textContent = clock();
        li.append(time, ` ${text}`);
        ui.moves.prepend(li);
        while (ui.moves.children.length > 50) ui.moves.lastElementChild.remove();
    }

    // The parser of the WHATWG EventSource processing model, fed text chunks: lines end in
    // CRLF, LF or CR; `id` (without NUL) becomes the last event id when the event is
    // dispatched, at the blank line, even an event without data; `retry` sets the delay;
    // `:` lines are comments. An event cut off by the end of the stream is dropped, and
    // its id with it, so the resume asks for it again.
    class SseParser {
        constructor(onEvent) {
            this.onEvent = onEvent;
            this.buf = '';
            this.first = true;
            this.idBuf = lastId;
            this.data = [];
            this.type = '';
        }

        push(chunk) {
            this.buf += chunk;
            if (this.first && this.buf.length > 0) {
                if (this.buf.charCodeAt(0) === 0xfeff) this.buf = this.buf.slice(1);
                this.first = false;
            }
            const re = /\r\n|\r|\n/g;
            let pos = 0;
            for (let m = re.exec(this.buf); m; m = re.exec(this.buf)) {
                // A CR at the very end may be half of a CRLF: wait for the next chunk.
                if (m[0] === '\r' && m.index === this.buf.length - 1) break;
                this.line(this.buf.slice(pos, m.index));
                pos = m.index + m[0].length;
                re.lastIndex = pos;
            }
            this.buf = this.buf.slice(pos);
        }

        line(line) {
            if (line === '') {
                lastId = this.idBuf;
                if (this.data.length > 0) {
                    this.onEvent({ id: lastId, type: this.type || 'message', data: this.data.join('\n') });
                }
                this.data = [];
                this.type = '';
                return;
            }
            if (line.startsWith(':')) return;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'data') this.data.push(value);
            else if (field === 'event') this.type = value;
            else if (field === 'id' && !value.includes('\0')) this.idBuf = value;
            else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
        }
    }

    function showEvent(ev) {
        count += 1;
        if (seenIds.has(ev.id)) dups += 1;
        seenIds.add(ev.id);
        if (seenIds.size > KEEP_IDS) seenIds.delete(seenIds.values().next().value);

        let body = null;
        try {
            body = JSON.parse(ev.data);
        } catch {
            // not the generator's JSON: shown as it is
        }
        const n = body && Number.isInteger(body.n) ? body.n : null;
        if (n !== null && lastN !== null) {
            if (n <= lastN) disorder += 1;
            else skipped += n - lastN - 1;
        }
        if (n !== null) lastN = n;

        const li = document.createElement('li');
        li.dataset.id = ev.id ?? '';
        li.dataset.node = currentNode;
        if (n !== null) li.dataset.n = String(n);
        const num = document.createElement('span');
        num.className = 'n';
        num.textContent = n !== null ? `#${n}` : ev.data;
        const time = document.createElement('span');
        time.className = 'time';
        time.textContent = body && typeof body.time === 'string' ? body.time.slice(11, 23) : '';
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = `id ${ev.id ?? '–'} · ${currentNode}`;
        li.append(num, time, meta);
        ui.events.prepend(li);
        while (ui.events.children.length > KEEP_EVENTS) ui.events.lastElementChild.remove();

        ui.count.textContent = String(count);
        ui.lastId.textContent = ev.id ?? '–';
        ui.dups.textContent = String(dups);
        ui.disorder.textContent = String(disorder);
        ui.skipped.textContent = String(skipped);
    }

    function opened(node, answeredId, askedId) {
        const previous = currentNode;
        currentNode = node;
        ui.node.textContent = node;
        ui.node.dataset.node = node;
        setState('live', 'live');
        let kind = 'first';
        let text = `connected to ${node}`;
        if (previous !== null) {
            kind = previous !== node ? 'moved' : 'same';
            text = kind === 'moved' ? `moved from ${previous} to ${node}` : `reconnected to ${node}`;
        }
        if (askedId) {
            text += `, resuming after id ${askedId}`;
            // herald answers `earliest` when it no longer knows the id asked for.
            if (answeredId === 'earliest') {
                text += ': that id is no longer known, all retained events follow (some may be gone)';
                kind = 'lost';
            }
        }
        addMove(text, kind);
        if (kind === 'moved') {
            ui.node.classList.remove('flash');
            void ui.node.offsetWidth; // restart the animation
            ui.node.classList.add('flash');
        }
    }

    // One connection, until the stream ends or fails. Resolves to whether it was live;
    // throws when the hub refused it for a reason retrying does not fix (a 4xx).
    async function connectOnce() {
        const abort = new AbortController();
        let silence = setTimeout(() => abort.abort(), SILENCE_MS);
        const heard = () => {
            clearTimeout(silence);
            silence = setTimeout(() => abort.abort(), SILENCE_MS);
        };
        const askedId = lastId;
        const headers = { Accept: 'text/event-stream' };
        if (askedId) headers['Last-Event-ID'] = askedId;
        let live = false;
        try {
            const res = await fetch(url, { headers, cache: 'no-store', signal: abort.signal });
            const type = res.headers.get('Content-Type') || '';
            if (res.status !== 200 || !type.startsWith('text/event-stream')) {
                const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').slice(0, 120);
                const err = new Error(`${res.status} ${text}`.trim());
                err.status = res.status;
                throw err;
            }
            // Same origin (nginx serves this page and /events), so every header is readable.
            opened(res.headers.get('X-Herald-Node') || '(no X-Herald-Node)',
                res.headers.get('Last-Event-ID'), askedId);
            live = true;
            const parser = new SseParser(showEvent);
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                heard();
                parser.push(value);
            }
            addMove(`${currentNode} ended the stream`, 'ended');
        } catch (e) {
            if (e.status >= 400 && e.status < 500) throw e;
            const why = abort.signal.aborted ? 'silent for too long' : e.message;
            addMove(live ? `${currentNode} dropped the stream (${why})` : `no stream: ${why}`, 'ended');
        } finally {
            clearTimeout(silence);
            abort.abort();
        }
        return live;
    }

    async function run() {
        let wasLive = false;
        for (;;) {
            try {
                wasLive = await connectOnce();
            } catch (e) {
                setState('failed', `refused: ${e.message} (reload the page)`);
                return;
            }
            const delay = wasLive ? FIRST_RETRY_MS : retryMs;
            setState('reconnecting', `reconnecting in ${(delay / 1000).toFixed(1)} s…`);
            await new Promise((resolve) => setTimeout(resolve, delay));
        }
    }

    run();
})();
