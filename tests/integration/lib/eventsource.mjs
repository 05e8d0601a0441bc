// The npm `eventsource` client (the WHATWG EventSource for Node) with its requests
// recorded, for the suites that check what a real client sends and receives.
import { EventSource } from 'eventsource';

export { EventSource };

// Opens an EventSource on `url`. Returns { es, requests, opens, errors, messages, typed }:
// each request's { url, headers, status, lastEventId (the response header) }, the number
// of opens and errors so far, every untyped message as { data, lastEventId } and every
// event of the listed `types` as { type, data, lastEventId }.
export function openEventSource(url, types = []) {
    const requests = [];
    const spyFetch = async (input, init) => {
        const rec = { url: String(input), headers: { ...(init?.headers ?? {}) } };
        requests.push(rec);
        const res = await fetch(input, init);
        rec.status = res.status;
        rec.lastEventId = res.headers.get('last-event-id');
        return res;
    };
    const es = new EventSource(url, { fetch: spyFetch });
    const state = { es, requests, opens: 0, errors: 0, messages: [], typed: [] };
    es.addEventListener('open', () => { state.opens += 1; });
    es.addEventListener('error', () => { state.errors += 1; });
    es.onmessage = (e) => state.messages.push({ data: e.data, lastEventId: e.lastEventId });
    for (const type of types) {
        es.addEventListener(type, (e) => state.typed.push({ type, data: e.data, lastEventId: e.lastEventId }));
    }
    return state;
}
