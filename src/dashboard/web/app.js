// The dashboard: live figures from $sys/stats, the topics from /topics, a publish form and
// a subscribe panel. Everything goes through herald's public API with the token given
// above (kept in this tab's sessionStorage only), so the page works the same with auth on.
import { TimeChart, compact } from './chart.js';
import { Subscription, errorText } from './sse.js';

const STATS_TOPIC = '$sys/stats';
const TOPICS_EVERY_MS = 2000;
const MAX_EVENTS_SHOWN = 200;
const MAX_TOPICS_SHOWN = 200;
const TOPICS_PAGE = 1000; // /topics gives a page at a time: the first one is listed

const $ = (id) => document.getElementById(id);

const page = {
    token: sessionStorage.getItem('herald.token') || '',
    feed: null,
    topicsTimer: null,
    topics: [],
    moreTopics: false, // the hub has topics beyond the first page
    found: [],         // topics starting with the filter, asked for when there are more
    findTimer: null,
    sub: null,
    received: 0,
};

// ---- token ----------------------------------------------------------------------------

// `/dashboard/#token=T` hands the page a token without a form; the fragment never reaches
// a server log, and it is removed from the address bar at once.
function takeTokenFromFragment() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return;
    page.token = decodeURIComponent(m[1]);
    sessionStorage.setItem('herald.token', page.token);
    history.replaceState(null, '', location.pathname + location.search);
}

function useToken(token) {
    page.token = token;
    if (token) sessionStorage.setItem('herald.token', token);
    else sessionStorage.removeItem('herald.token');
    $('token').value = token;
    startFeed();
    refreshTopics();
}

function authHeaders(token = page.token) {
    return token ? { Authorization: `Bearer ${token}` } : {};
}

// ---- notices and states ----------------------------------------------------------------

function notice(text) {
    const el = $('notice');
    el.textContent = text || '';
    el.hidden = !text;
}

function setPill(el, state, text) {
    el.dataset.state = state;
    el.textContent = text;
}

// What a refusal means for the person at the page, from herald's status and sentence.
function advice(reason, what, forbidden = '') {
    if (reason.startsWith('401')) return `${what}: this hub needs a token (${reason}). Enter one above.`;
    if (reason.startsWith('403') && forbidden) return `${what}: ${forbidden} (${reason}).`;
    return `${what}: ${reason}`;
}

// ---- live figures ------------------------------------------------------------------------

const charts = {
    connections: new TimeChart($('chart-connections'), [{ key: 'connections', color: '--c-conn' }]),
    events: new TimeChart($('chart-events'), [
        { key: 'in', color: '--c-in' },
        { key: 'out', color: '--c-out' },
    ]),
};

function showFigures(s) {
    $('fig-connections').textContent = s.connections.toLocaleString();
    $('fig-subscribers').textContent = s.subscribers.toLocaleString();
    $('fig-in').textContent = compact(s.inPerSecond);
    $('fig-out').textContent = compact(s.outPerSecond);
    charts.connections.add(s.time, { connections: s.connections });
    charts.events.add(s.time, { in: s.inPerSecond, out: s.outPerSecond });
}

function startFeed() {
    if (page.feed) page.feed.stop();
    const pill = $('feed-state');
    page.feed = new Subscription({
        url: `/events?topic=${encodeURIComponent(STATS_TOPIC)}`,
        token: page.token,
        onEvent: (ev) => {
            try {
                showFigures(JSON.parse(ev.data));
            } catch {
                // not figures: ignore
            }
        },
        onState: (state, detail) => {
            if (state === 'live') {
                setPill(pill, 'live', 'live');
                notice('');
            } else if (state === 'connecting') {
                setPill(pill, 'connecting', 'connecting');
            } else if (state === 'reconnecting') {
                setPill(pill, 'reconnecting', `reconnecting (${detail.attempt})`);
            } else if (state === 'failed') {
                setPill(pill, 'failed', 'no figures');
                notice(advice(detail, 'Live figures', 'they need an admin token, or one granted $sys/stats'));
            }
        },
    });
}

// ---- topics ------------------------------------------------------------------------------

async function refreshTopics() {
    clearTimeout(page.topicsTimer);
    if (document.hidden) return; // visibilitychange starts it again
    const note = $('topics-note');
    try {
        const res = await fetch(`/topics?limit=${TOPICS_PAGE}`, { headers: authHeaders(), cache: 'no-store' });
        if (!res.ok) {
            note.textContent = advice(await errorText(res), 'Topics', 'the list needs an admin token');
            note.hidden = false;
            page.topics = [];
            page.moreTopics = false;
        } else {
            const body = await res.json();
            page.topics = body.topics || [];
            page.moreTopics = typeof body.next === 'string';
            note.hidden = true;
        }
        await findTopics();
    } catch (e) {
        note.textContent = `Topics: the hub did not answer (${e.message}).`;
        note.hidden = false;
    }
    renderTopics();
    // A long list costs the hub more to build: look less often (every 2 s up to 1,000
    // topics, 4 s up to 2,000, ... at most every 30 s), and not at all while the tab is hidden.
    const every = Math.min(30000, TOPICS_EVERY_MS * (1 + Math.floor(page.topics.length / 1000)));
    page.topicsTimer = setTimeout(refreshTopics, every);
}

// Beyond the first page, the filter also asks the hub for the topics that start with it.
async function findTopics() {
    const filter = $('topic-filter').value.trim();
    if (!filter || !page.moreTopics) {
        page.found = [];
        return;
    }
    const query = `limit=${TOPICS_PAGE}&prefix=${encodeURIComponent(filter)}`;
    const res = await fetch(`/topics?${query}`, { headers: authHeaders(), cache: 'no-store' });
    page.found = res.ok ? (await res.json()).topics || [] : [];
}

function filterChanged() {
    renderTopics();
    clearTimeout(page.findTimer);
    page.findTimer = setTimeout(() => findTopics().then(renderTopics, () => {}), 300);
}

function renderTopics() {
    const filter = $('topic-filter').value.trim().toLowerCase();
    const listed = new Set(page.topics.map((t) => t.topic));
    const shown = page.topics.concat(page.found.filter((t) => !listed.has(t.topic)))
        .filter((t) => !filter || t.topic.toLowerCase().includes(filter))
        .sort((a, b) => b.subscribers - a.subscribers || a.topic.localeCompare(b.topic));
    const more = page.moreTopics ? '+' : '';
    $('topics-count').textContent = page.topics.length ? `(${page.topics.length.toLocaleString()}${more})` : '';
    const body = $('topics').tBodies[0];
    const rows = [];
    for (const t of shown.slice(0, MAX_TOPICS_SHOWN)) {
        const tr = document.createElement('tr');
        const name = document.createElement('td');
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'link';
        button.textContent = t.topic;
        button.title = 'Use this topic in the publish and subscribe forms';
        button.addEventListener('click', () => pickTopic(t.topic));
        name.append(button);
        tr.append(name, cell(t.subscribers.toLocaleString(), 'num'), cell(t.retained.toLocaleString(), 'num'),
            cell(t.lastEventId || '', 'mono'));
        rows.push(tr);
    }
    if (shown.length > MAX_TOPICS_SHOWN) {
        const tr = document.createElement('tr');
        const td = cell(`… and ${(shown.length - MAX_TOPICS_SHOWN).toLocaleString()} more: filter to find one`, 'note');
        td.colSpan = 4;
        tr.append(td);
        rows.push(tr);
    } else if (shown.length === 0 && $('topics-note').hidden) {
        const tr = document.createElement('tr');
        const td = cell(filter ? 'No topic matches.' : 'No topics yet: publish one below.', 'note');
        td.colSpan = 4;
        tr.append(td);
        rows.push(tr);
    }
    body.replaceChildren(...rows);
}

function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
}

function pickTopic(topic) {
    $('publish-form').elements.topic.value = topic;
    $('subscribe-form').elements.topic.value = topic;
}

// ---- publish -----------------------------------------------------------------------------

function lines(text) {
    return text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
}

async function publish(event) {
    event.preventDefault();
    const form = event.target;
    const result = $('publish-result');
    const body = new URLSearchParams();
    for (const t of lines(form.elements.topic.value)) body.append('topic', t);
    body.set('data', form.elements.data.value);
    if (form.elements.event.value.trim()) body.set('event', form.elements.event.value.trim());
    if (form.elements.id.value.trim()) body.set('id', form.elements.id.value.trim());
    if (form.elements.private.checked) body.set('private', 'on');
    result.dataset.state = 'pending';
    result.textContent = 'Publishing…';
    try {
        const res = await fetch('/events', {
            method: 'POST',
            headers: { ...authHeaders(), Accept: 'application/json' },
            body,
        });
        if (res.ok) {
            const { id } = await res.json();
            result.dataset.state = 'ok';
            result.textContent = `Published: id ${id}`;
            form.elements.id.value = '';
        } else {
            result.dataset.state = 'failed';
            result.textContent = advice(await errorText(res), 'Not published');
        }
    } catch (e) {
        result.dataset.state = 'failed';
        result.textContent = `Not published: the hub did not answer (${e.message}).`;
    }
}

// ---- subscribe ---------------------------------------------------------------------------

function subscribe(event) {
    event.preventDefault();
    const form = event.target;
    stopSubscription();
    const params = new URLSearchParams();
    const topics = lines(form.elements.topic.value);
    for (const t of topics) params.append('topic', t);
    const token = form.elements.token.value || page.token;
    const pill = $('sub-state');
    $('events').replaceChildren();
    page.received = 0;
    const what = topics.length ? topics.join(', ') : 'every topic the token may read';
    const summary = () => {
        $('sub-summary').textContent = `${page.received.toLocaleString()} event${page.received === 1 ? '' : 's'} on ${what}`;
    };
    summary();
    page.sub = new Subscription({
        url: `/events${params.size ? `?${params}` : ''}`,
        token,
        lastEventId: form.elements.last.value.trim(),
        onEvent: (ev) => {
            page.received += 1;
            showEvent(ev);
            summary();
        },
        onState: (state, detail) => {
            if (state === 'connecting') setPill(pill, 'connecting', 'connecting');
            else if (state === 'live') {
                setPill(pill, 'live', detail.reconnects ? `live (reconnected ${detail.reconnects}×)` : 'live');
            } else if (state === 'reconnecting') {
                const wait = detail.delayMs >= 1000 ? `${detail.delayMs / 1000}s` : `${detail.delayMs}ms`;
                setPill(pill, 'reconnecting', `reconnecting (${detail.attempt}, every ${wait})`);
                if (detail.reason) pill.title = detail.reason;
            } else if (state === 'failed') {
                setPill(pill, 'failed', 'refused');
                $('sub-summary').textContent = advice(detail, 'Not subscribed');
                $('sub-stop').disabled = true;
            } else if (state === 'stopped') {
                setPill(pill, 'idle', 'stopped');
            }
        },
    });
    $('sub-stop').disabled = false;
}

function stopSubscription() {
    if (page.sub) {
        page.sub.stop();
        page.sub = null;
    }
    $('sub-stop').disabled = true;
}

function showEvent(ev) {
    const li = document.createElement('li');
    const head = document.createElement('div');
    head.className = 'event-head';
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString();
    const id = document.createElement('span');
    id.className = 'mono';
    id.textContent = ev.id ? `id ${ev.id}` : 'no id';
    head.append(time, id);
    if (ev.event !== 'message') {
        const type = document.createElement('span');
        type.className = 'tag';
        type.textContent = ev.event;
        head.append(type);
    }
    const data = document.createElement('pre');
    data.textContent = ev.data;
    li.append(head, data);
    const list = $('events');
    list.prepend(li);
    while (list.children.length > MAX_EVENTS_SHOWN) list.lastElementChild.remove();
}

// ---- start -------------------------------------------------------------------------------

takeTokenFromFragment();
$('token').value = page.token;
$('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    useToken($('token').value.trim());
});
$('token-forget').addEventListener('click', () => useToken(''));
$('topic-filter').addEventListener('input', filterChanged);
$('publish-form').addEventListener('submit', publish);
$('subscribe-form').addEventListener('submit', subscribe);
$('sub-stop').addEventListener('click', stopSubscription);
// Enter publishes from a one-line field; in the data box it is a new line.
for (const area of document.querySelectorAll('textarea[name=topic]')) {
    area.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && area.value.indexOf('\n') < 0 && area.rows === 1) {
            e.preventDefault();
            area.form.requestSubmit();
        }
    });
}
document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refreshTopics();
});
startFeed();
refreshTopics();
