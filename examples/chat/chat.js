// herald chat: one room is one topic. Joining a room subscribes with lastEventID=earliest,
// so what the hub retains replays first and live messages follow; posting publishes JSON
// {"topic": room, "data": {"text", "room", "name"}}. Plain browser APIs, no build step.
'use strict';

(() => {
    const MAX_MESSAGES = 500; // older ones leave the page
    const MAX_SEEN_IDS = 5000; // ids remembered to drop a message delivered twice
    const NAME_KEY = 'herald-chat-name';

    // Settings from the page address: ?k=v or #k=v (the fragment wins, and never reaches
    // a server log). `token` authenticates against a hub with auth on; `hub` points at a
    // hub on another origin (it must list this page's origin in server.cors_origins).
    const settings = readSettings();
    const token = settings.get('token') || '';
    const hubBase = parseHub(settings.get('hub'));

    const $ = (id) => document.getElementById(id);
    const ui = {
        state: $('state'),
        joinForm: $('join-form'),
        roomInput: $('room-input'),
        notice: $('notice'),
        roomTitle: $('room-title'),
        empty: $('empty'),
        messages: $('messages'),
        postForm: $('post-form'),
        nameInput: $('name-input'),
        textInput: $('text-input'),
        sendButton: $('send-button'),
    };

    let room = null; // the room shown
    let source = null; // its EventSource
    let seen = new Set(); // event ids shown in this room
    const mine = new Set(); // ids of the messages this page published

    function readSettings() {
        const merged = new URLSearchParams(location.search);
        const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
        for (const [k, v] of hash) merged.set(k, v);
        return merged;
    }

    // The `hub` setting as a base URL ending in `/`; null (this origin) when absent or bad.
    function parseHub(value) {
        if (!value) return null;
        try {
            const url = new URL(value, location.href);
            url.pathname = url.pathname.replace(/\/?$/, '/');
            url.search = '';
            url.hash = '';
            return url;
        } catch {
            console.warn(`herald chat: ignoring hub=${value}: not a URL`);
            return null;
        }
    }

    // `/events` on the hub: the page's own origin (relative, so a proxy prefix works too)
    // unless `hub` names another one.
    function eventsUrl(params) {
        const url = new URL('events', hubBase || document.baseURI);
        for (const [k, v] of params) url.searchParams.append(k, v);
        return url;
    }

    function setState(state, text) {
        ui.state.dataset.state = state;
        ui.state.textContent = text;
    }

    function showNotice(text) {
        ui.notice.textContent = text;
        ui.notice.hidden = false;
    }

    function clearNotice() {
        ui.notice.hidden = true;
        ui.notice.textContent = '';
    }

    // The error sentence of a herald error response ({"error": "..."}), else the raw text.
    async function errorSentence(response) {
        const body = await response.text().catch(() => '');
        try {
            const parsed = JSON.parse(body);
            if (parsed && typeof parsed.error === 'string') return parsed.error;
        } catch {
            // not JSON: fall through
        }
        return body.trim() || response.statusText || 'no details';
    }

    function tokenHint(status) {
        if (status !== 401 && status !== 403) return '';
        return token ? ' Check the token in the page address.'
            : ' Add #token=YOUR_TOKEN to the page address.';
    }

    // --- the room's stream ---------------------------------------------------------------

    function join(name) {
        const next = name.trim();
        if (!next) return;
        if (source) source.close();
        source = null;
        room = next;
        seen = new Set();
        ui.messages.replaceChildren();
        ui.empty.hidden = true;
        ui.roomTitle.textContent = `# ${room}`;
        ui.roomInput.value = room;
        document.title = `${room} · herald chat`;
        ui.textInput.disabled = false;
        ui.sendButton.disabled = false;
        clearNotice();
        rememberRoom(room);
        highlightChip(room);
        open();
    }

    function open() {
        const params = [['topic', room], ['lastEventID', 'earliest']];
        if (token) params.push(['token', token]);
        const url = eventsUrl(params);
        const es = new EventSource(url);
        source = es;
        setState('connecting', 'connecting…');

        es.onopen = () => {
            if (es !== source) return;
            setState('live', 'live');
            clearNotice();
            // The replay follows the open at once: only an empty room stays empty.
            setTimeout(() => {
                if (es === source) ui.empty.hidden = ui.messages.childElementCount > 0;
            }, 400);
        };
        es.onmessage = (ev) => {
            if (es !== source) return; // a late event of a room left behind
            receive(ev);
        };
        es.onerror = () => {
            if (es !== source) return;
            if (es.readyState === EventSource.CONNECTING) {
                // The browser comes back by itself and sends Last-Event-ID: the hub replays
                // what was missed, and `seen` drops anything shown already.
                setState('reconnecting', 'reconnecting…');
            } else {
                setState('offline', 'offline');
                explainRefusal(url, es);
            }
        };
    }

    // An EventSource that gave up (the hub answered something other than 200) does not
    // say why: ask the same URL once more with fetch to read the status and the error.
    async function explainRefusal(url, es) {
        const abort = new AbortController();
        let status = 0;
        let sentence = '';
        try {
            const response = await fetch(url, {
                headers: { Accept: 'text/event-stream' },
                signal: abort.signal,
                cache: 'no-store',
            });
            status = response.status;
            if (response.ok) {
                abort.abort(); // a stream after all: the refusal was passing
            } else {
                sentence = await errorSentence(response);
            }
        } catch {
            // unreachable hub: status stays 0
        }
        if (es !== source) return;
        if (status === 200 || status === 0) {
            showNotice(status === 0 ? 'The hub cannot be reached. Trying again in a few seconds…'
                : 'The hub closed the stream. Trying again in a few seconds…');
            setTimeout(() => { if (es === source) open(); }, 5000);
        } else {
            showNotice(`Cannot join “${room}”: ${status} — ${sentence}.${tokenHint(status)}`);
        }
    }

    function receive(ev) {
        const id = ev.lastEventId;
        if (id) {
            if (seen.has(id)) return;
            seen.add(id);
            if (seen.size > MAX_SEEN_IDS) seen.delete(seen.values().next().value);
        }
        let name = '';
        let text = ev.data;
        try {
            const data = JSON.parse(ev.data);
            if (data && typeof data === 'object' && typeof data.text === 'string') {
                text = data.text;
                name = typeof data.name === 'string' ? data.name : '';
            }
        } catch {
            // not JSON: someone published plain text to the room; show it as is
        }
        render(id, name, text);
    }

    function render(id, name, text) {
        const list = ui.messages;
        const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
        const item = document.createElement('li');
        item.className = 'message';
        item.dataset.id = id;
        if (mine.has(id)) item.classList.add('mine');
        const who = document.createElement('span');
        who.className = 'name';
        who.textContent = name || 'anonymous';
        const body = document.createElement('span');
        body.className = 'text';
        body.textContent = text;
        item.append(who, body);
        list.append(item);
        while (list.childElementCount > MAX_MESSAGES) list.firstElementChild.remove();
        ui.empty.hidden = true;
        if (atBottom) list.scrollTop = list.scrollHeight;
    }

    // --- posting -------------------------------------------------------------------------

    async function post(text) {
        const name = ui.nameInput.value.trim();
        const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
        if (token) headers.Authorization = `Bearer ${token}`;
        const target = room;
        let response;
        try {
            response = await fetch(eventsUrl([]), {
                method: 'POST',
                headers,
                body: JSON.stringify({ topic: target, data: { text, room: target, name } }),
            });
        } catch {
            showNotice('Could not send: the hub cannot be reached.');
            return false;
        }
        if (!response.ok) {
            const sentence = await errorSentence(response);
            showNotice(`Could not send (${response.status}): ${sentence}.${tokenHint(response.status)}`);
            return false;
        }
        const answer = await response.json().catch(() => ({}));
        if (typeof answer.id === 'string') {
            mine.add(answer.id);
            // The event may have come down the stream before this answer.
            for (const item of ui.messages.children) {
                if (item.dataset.id === answer.id) item.classList.add('mine');
            }
        }
        if (ui.notice.textContent.startsWith('Could not send')) clearNotice();
        return true;
    }

    // --- the page around it --------------------------------------------------------------

    function rememberRoom(name) {
        const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
        hash.set('room', name);
        history.replaceState(null, '', `#${hash.toString()}`);
    }

    function highlightChip(name) {
        for (const chip of document.querySelectorAll('.chip')) {
            chip.classList.toggle('active', chip.dataset.room === name);
        }
    }

    function storedName() {
        try {
            return localStorage.getItem(NAME_KEY) || '';
        } catch {
            return ''; // storage off (private mode, file://)
        }
    }

    function storeName(name) {
        try {
            localStorage.setItem(NAME_KEY, name);
        } catch {
            // not kept; fine
        }
    }

    ui.joinForm.addEventListener('submit', (e) => {
        e.preventDefault();
        join(ui.roomInput.value);
    });
    for (const chip of document.querySelectorAll('.chip')) {
        chip.addEventListener('click', () => join(chip.dataset.room));
    }
    ui.postForm.addEventListener('submit', async (e) => {
        e.preventDefault();
        const text = ui.textInput.value;
        if (!room || !text.trim()) return;
        storeName(ui.nameInput.value.trim());
        ui.sendButton.disabled = true;
        const sent = await post(text);
        ui.sendButton.disabled = false;
        if (sent && ui.textInput.value === text) ui.textInput.value = '';
        ui.textInput.focus();
    });
    window.addEventListener('hashchange', () => {
        const wanted = new URLSearchParams(location.hash.replace(/^#/, '')).get('room');
        if (wanted && wanted !== room) join(wanted);
    });

    ui.nameInput.value = storedName() || `guest-${Math.floor(1000 + Math.random() * 9000)}`;
    const first = settings.get('room');
    if (first) {
        join(first);
    } else {
        ui.roomInput.focus();
    }
})();
