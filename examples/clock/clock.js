// herald clock: ONE EventSource follows two topics, `clock` (an ISO-8601 time a second,
// published from run.sh's ticker through `herald serve --stdin`) and `$sys/connections`
// (the hub's {"count": N} whenever a subscriber comes or goes). Neither publisher sets an
// event type, so both arrive as plain messages and the SSE frame does not name the
// topic: the data tells them apart. A count is a JSON object with a number `count`; a
// tick is a time string. One stream rather than two keeps this page at one subscriber in
// the count it shows.
'use strict';

(() => {
    const $ = (id) => document.getElementById(id);
    const ui = {
        time: $('time'), date: $('date'), local: $('local'), online: $('online'), state: $('state'),
    };

    const url = new URL('events', document.baseURI);
    url.searchParams.append('topic', 'clock');
    url.searchParams.append('topic', '$sys/connections');
    const source = new EventSource(url);

    const dateFormat = new Intl.DateTimeFormat(undefined, {
        weekday: 'long', year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC',
    });
    const localFormat = new Intl.DateTimeFormat(undefined, {
        hour: '2-digit', minute: '2-digit', second: '2-digit',
    });

    function setState(state, text) {
        ui.state.dataset.state = state;
        ui.state.textContent = text;
    }

    // {"count": N} from $sys/connections, else null.
    function connectionCount(data) {
        if (!data.startsWith('{')) return null;
        try {
            const value = JSON.parse(data);
            return value && Number.isInteger(value.count) ? value.count : null;
        } catch {
            return null;
        }
    }

    function showTime(iso) {
        const when = new Date(iso);
        if (Number.isNaN(when.getTime())) return; // not a time: some other publisher
        ui.time.dateTime = when.toISOString();
        ui.time.textContent = when.toISOString().slice(11, 19);
        ui.date.textContent = dateFormat.format(when);
        ui.local.textContent = `Your time: ${localFormat.format(when)}`;
    }

    source.onopen = () => setState('live', 'live');
    source.onerror = () => {
        if (source.readyState === EventSource.CONNECTING) {
            setState('reconnecting', 'reconnecting…');
        } else {
            setState('offline', 'offline (reload the page)');
        }
    };
    source.onmessage = (ev) => {
        const count = connectionCount(ev.data);
        if (count !== null) {
            ui.online.textContent = String(count);
        } else {
            showTime(ev.data.trim());
        }
    };
})();
