// An SSE client on fetch(), for the dashboard. Unlike EventSource it sees every event
// whatever its type, sends the token in a header rather than the URL, and knows why a
// stream was refused (the status and herald's JSON error). It reconnects as EventSource
// does: after the server's retry: hint, with Last-Event-ID, and gives up on a 4xx.

// Parses the text/event-stream format: feed() takes decoded text in any pieces and calls
// onEvent({id, event, data}) for each complete event; `lastEventId` and `retry` follow the
// stream's fields.
export class SseParser {
    constructor(onEvent) {
        this.onEvent = onEvent;
        this.buffer = '';
        this.sawCR = false;
        this.data = [];
        this.event = '';
        this.lastEventId = '';
        this.retry = null;
    }

    feed(text) {
        let chunk = text;
        // A CR at the end of the last piece may be the first half of a CRLF.
        if (this.sawCR && chunk.startsWith('\n')) chunk = chunk.slice(1);
        this.sawCR = false;
        this.buffer += chunk;
        let start = 0;
        for (;;) {
            const cr = this.buffer.indexOf('\r', start);
            const lf = this.buffer.indexOf('\n', start);
            if (cr < 0 && lf < 0) break;
            let end;
            let next;
            if (cr >= 0 && (lf < 0 || cr < lf)) {
                end = cr;
                if (cr + 1 === this.buffer.length) {
                    next = cr + 1;
                    this.sawCR = true;
                } else {
                    next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
                }
            } else {
                end = lf;
                next = lf + 1;
            }
            this.line(this.buffer.slice(start, end));
            start = next;
        }
        this.buffer = this.buffer.slice(start);
    }

    line(text) {
        if (text === '') {
            if (this.data.length > 0) {
                this.onEvent({ id: this.lastEventId, event: this.event || 'message', data: this.data.join('\n') });
            }
            this.data = [];
            this.event = '';
            return;
        }
        if (text.startsWith(':')) return; // a comment: herald's keep-alive
        const colon = text.indexOf(':');
        const field = colon < 0 ? text : text.slice(0, colon);
        let value = colon < 0 ? '' : text.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') this.data.push(value);
        else if (field === 'event') this.event = value;
        else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
        else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    }
}

// One subscription that stays up. `onState(state, detail)` hears 'connecting', 'live',
// 'reconnecting' (detail: {attempt, delayMs, reason}), 'failed' (detail: the reason, for
// a refusal the client must fix) and 'stopped'. `onEvent({id, event, data})` hears events.
export class Subscription {
    constructor({ url, token = '', lastEventId = '', onEvent, onState }) {
        this.url = url;
        this.token = token;
        this.lastEventId = lastEventId;
        this.onEvent = onEvent;
        this.onState = onState;
        this.retryMs = 3000;
        this.reconnects = 0;
        this.stopped = false;
        this.controller = null;
        this.timer = null;
        this.run();
    }

    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.controller) this.controller.abort();
        this.onState('stopped');
    }

    async run() {
        if (this.stopped) return;
        this.onState(this.reconnects === 0 ? 'connecting' : 'reconnecting', this.detail());
        this.controller = new AbortController();
        const headers = { Accept: 'text/event-stream' };
        if (this.token) headers.Authorization = `Bearer ${this.token}`;
        if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
        let reason = 'the stream ended';
        try {
            const res = await fetch(this.url, { headers, cache: 'no-store', signal: this.controller.signal });
            if (res.status !== 200) {
                const why = await errorText(res);
                if (res.status >= 400 && res.status < 500) {
                    // The client must change something (token, topics): as EventSource, give up.
                    this.stopped = true;
                    this.onState('failed', why);
                    return;
                }
                reason = why;
            } else {
                this.onState('live', { reconnects: this.reconnects });
                const parser = new SseParser((ev) => {
                    this.lastEventId = parser.lastEventId;
                    this.onEvent(ev);
                });
                parser.lastEventId = this.lastEventId;
                const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
                for (;;) {
                    const { value, done } = await reader.read();
                    if (done) break;
                    parser.feed(value);
                    // An id on an event-less block still moves the resume point.
                    this.lastEventId = parser.lastEventId;
                    if (parser.retry !== null) this.retryMs = parser.retry;
                }
            }
        } catch (e) {
            if (this.stopped) return;
            reason = e && e.message ? e.message : String(e);
        }
        if (this.stopped) return;
        this.reconnects += 1;
        this.lastReason = reason;
        this.onState('reconnecting', this.detail());
        this.timer = setTimeout(() => this.run(), this.retryMs);
    }

    detail() {
        return { attempt: this.reconnects, delayMs: this.retryMs, reason: this.lastReason || '' };
    }
}

// "403: reading the topic x is not allowed", from herald's JSON error when there is one.
export async function errorText(res) {
    let text = '';
    try {
        text = await res.text();
        const parsed = JSON.parse(text);
        if (parsed && typeof parsed.error === 'string') text = parsed.error;
    } catch {
        // not JSON: keep the text as it is
    }
    text = text.trim();
    return text ? `${res.status}: ${text}` : `${res.status} ${res.statusText}`;
}
