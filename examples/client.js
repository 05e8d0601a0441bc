// herald in the browser console: a snippet to paste into the devtools console of a page
// served by the hub's origin (http://127.0.0.1:8080/dashboard/, or any page that
// `herald serve --static DIR` serves), so that no CORS setting is needed.
//
// 1. Set HUB, TOPIC and, on a hub with auth on, TOKEN just below.
// 2. Paste the whole file and press Enter. Every event is logged as
//    "[herald] <type> #<id>" followed by its data (parsed when it is JSON), and so is
//    every change of the connection (live, reconnecting with Last-Event-ID, closed).
// 3. Then, in the console:
//      await herald.publish({hello: 'world'})          // publishes on TOPIC; returns the id
//      await herald.publish('text', {event: 'note'})   // plain text, with an event type
//      herald.stop()                                    // closes the stream
//      herald.source                                    // the EventSource itself
//
// Pasting again (with other settings, say) stops the previous stream first. Everything
// lives inside one function, so a second paste declares nothing twice.
(() => {
    const HUB = location.origin; // the hub's base URL
    const TOPIC = 'demo'; // the topic to follow and to publish on
    const TOKEN = ''; // a token, when the hub has auth on
    const EVENT_TYPES = []; // event types to log besides untyped messages, e.g. ['note']

    const tag = '[herald]';
    if (window.herald && typeof window.herald.stop === 'function') window.herald.stop();

    const url = new URL('/events', HUB);
    url.searchParams.append('topic', TOPIC);
    if (TOKEN) url.searchParams.append('token', TOKEN); // EventSource cannot set headers

    const parse = (text) => {
        try {
            return JSON.parse(text);
        } catch {
            return text;
        }
    };
    const log = (ev) => console.log(`${tag} ${ev.type} #${ev.lastEventId}`, parse(ev.data));

    const source = new EventSource(url);
    let lastId = '';
    console.info(`${tag} connecting to ${HUB}, topic ${JSON.stringify(TOPIC)}`);
    source.onopen = () => {
        console.info(lastId ? `${tag} live again (resumed after #${lastId})` : `${tag} live`);
    };
    source.onerror = () => {
        if (source.readyState === EventSource.CONNECTING) {
            console.warn(`${tag} connection lost; the browser reconnects` +
                (lastId ? ` and asks for what came after #${lastId}` : ''));
        } else {
            console.error(`${tag} the hub refused the stream (a status other than 200: check ` +
                'TOPIC and TOKEN, or open the URL in a tab to read the error): ' + url);
        }
    };
    const onEvent = (ev) => {
        if (ev.lastEventId) lastId = ev.lastEventId;
        log(ev);
    };
    source.onmessage = onEvent;
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);

    // Publishes `data` (a string, or any JSON value) on `topic`; resolves to the event id,
    // rejects with the status and herald's error sentence.
    const publish = async (data, { topic = TOPIC, event } = {}) => {
        const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
        if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
        const body = { topic, data };
        if (event) body.event = event;
        const response = await fetch(new URL('/events', HUB), {
            method: 'POST',
            headers,
            body: JSON.stringify(body),
        });
        const text = await response.text();
        const answer = parse(text);
        if (!response.ok) {
            const why = answer && answer.error ? answer.error : text;
            throw new Error(`publish failed: ${response.status} ${why}`);
        }
        const id = answer && answer.id ? answer.id : text.trim();
        console.info(`${tag} published #${id} on ${JSON.stringify(topic)}`);
        return id;
    };

    const stop = () => {
        source.close();
        console.info(`${tag} stopped`);
    };

    window.herald = { publish, stop, source };
    console.info(`${tag} ready: herald.publish(data), herald.stop()`);
})();
