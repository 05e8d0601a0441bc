#!/usr/bin/env node
// bench/report.mjs: turns the results of `make bench` (build/bench/results.jsonl and
// build/bench/meta.json) into docs/benchmarks.md, the chart docs/benchmarks.svg and the
// results table in README.md between <!-- bench:begin --> and <!-- bench:end -->.
//
//   node bench/report.mjs [--results FILE] [--meta FILE] [--out FILE] [--svg FILE]
//                         [--readme FILE]
//
// Defaults are relative to the repository root (the parent of this file's folder);
// paths given on the command line are relative to the current directory.
// Exit status: 0 on success (a README without the markers only gets a warning),
// 1 when an input is missing or unreadable, 2 on a usage error.
//
// Everything below except main() is a pure function of its arguments, exported for
// bench/report.test.mjs. The output depends only on the inputs (no clock, no locale), so
// running it twice gives the same files.

import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const DEFAULTS = {
    results: 'build/bench/results.jsonl',
    meta: 'build/bench/meta.json',
    out: 'docs/benchmarks.md',
    svg: 'docs/benchmarks.svg',
    readme: 'README.md',
};

export const README_BEGIN = '<!-- bench:begin -->';
export const README_END = '<!-- bench:end -->';

// Assumption, not a measurement: what the kernel keeps for one idle, established loopback
// TCP connection on the server side with empty buffers (socket, TCP control block, file
// and inode structures). Queued data would add to it.
export const KERNEL_BYTES_PER_CONN = 3 * 1024;

// The one-million extrapolation: subscribers, and events/s each of them receives.
export const MILLION = 1_000_000;
// One event a second to every subscriber: what `make bench-1m` publishes (RATE=1).
export const MILLION_EVENTS_PER_S = 1;

export const SERVERS = ['herald', 'nchan', 'pushpin'];
export const PEERS = ['nchan', 'pushpin'];
const SERVER_LABELS = { herald: 'herald', nchan: 'nginx+Nchan', pushpin: 'Pushpin' };
const SERVER_SHORT = { herald: 'herald', nchan: 'Nchan', pushpin: 'Pushpin' };
// herald a strong colour, the peers muted.
export const SERVER_COLOURS = { herald: '#1f6feb', nchan: '#9aa3ad', pushpin: '#c8b48f' };

export function serverLabel(server) {
    return SERVER_LABELS[server] ?? server;
}

export const STORES = ['memory', 'sqlite-normal', 'sqlite-full'];
export const STORE_PUBLISHERS = [1, 64];
export const STORE_SCENARIOS = STORES.flatMap((s) =>
    STORE_PUBLISHERS.map((p) => `publish-${s}-p${p}`),
);

// The cluster scenarios (herald only: two nodes on one Redis) and the goals of their ratios
// to the single-node scenarios.
export const CLUSTER_SCENARIOS = ['cluster-fanout', 'cluster-publish'];
// The single-node scenario cluster-fanout is set against: the same load on one node.
export const CLUSTER_FANOUT_BASE = 'fanout-p8';
export const CLUSTER_FANOUT_GOAL = 0.7;
export const CLUSTER_PUBLISH_GOAL = 0.5;

// ---------------------------------------------------------------------------------------
// Formatting

// Digits of an integer string grouped by thousands: "1234567" -> "1,234,567".
function groupDigits(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
}

// A number with `decimals` decimals and thousands separators; "—" when not a number.
export function fmtFixed(v, decimals = 0) {
    if (!isNum(v)) return '—';
    const s = Math.abs(v).toFixed(decimals);
    const [int, frac] = s.split('.');
    const neg = v < 0 && Number(s) !== 0 ? '-' : '';
    return neg + groupDigits(int) + (frac !== undefined ? '.' + frac : '');
}

export function fmtInt(v) {
    return fmtFixed(v, 0);
}

// Rates (per second): whole numbers from 100 up, a decimal or two below.
export function fmtRate(v) {
    if (!isNum(v)) return '—';
    if (Math.abs(v) >= 100 || Number.isInteger(v)) return fmtInt(v);
    if (Math.abs(v) >= 10) return fmtFixed(v, 1);
    return fmtFixed(v, 2);
}

export function fmtRatio(v) {
    return isNum(v) ? v.toFixed(2) : '—';
}

// Three significant digits, trailing zeros dropped: 9.40 -> "9.4", 412 -> "412".
function sig3(v) {
    if (v === 0) return '0';
    const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
    let t = Math.abs(v).toFixed(digits);
    if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
    const [int, frac] = t.split('.');
    return (v < 0 ? '-' : '') + groupDigits(int) + (frac ? '.' + frac : '');
}

const TIME_UNITS = [
    [1, 'ns'],
    [1e3, 'µs'],
    [1e6, 'ms'],
    [1e9, 's'],
];

// A duration given in nanoseconds, in ns, µs, ms or s as fits: "85.3 µs", "9.4 ms".
export function fmtLatency(ns) {
    if (!isNum(ns)) return '—';
    const a = Math.abs(ns);
    let i = a < 1e3 ? 0 : a < 1e6 ? 1 : a < 1e9 ? 2 : 3;
    let t = sig3(ns / TIME_UNITS[i][0]);
    // 999,700 ns rounds to "1,000 µs": say "1 ms".
    if (i < 3 && Math.abs(Number(t.replace(/,/g, ''))) >= 1000) t = sig3(ns / TIME_UNITS[++i][0]);
    return `${t} ${TIME_UNITS[i][1]}`;
}

export function fmtGiB(bytes, decimals = 2) {
    return isNum(bytes) ? `${fmtFixed(bytes / 2 ** 30, decimals)} GiB` : '—';
}

export function fmtMiBFromKiB(kib) {
    return isNum(kib) ? `${fmtFixed(kib / 1024, 1)} MiB` : '—';
}

// herald's figure divided by a peer's; undefined when either is missing or the peer's is
// not positive.
export function ratio(a, b) {
    if (!isNum(a) || !isNum(b) || b <= 0) return undefined;
    return a / b;
}

// Losses as the goals count them: missing + duplicates.
export function losses(rec) {
    if (!rec) return undefined;
    const m = isNum(rec.missing) ? rec.missing : 0;
    const d = isNum(rec.duplicates) ? rec.duplicates : 0;
    return m + d;
}

function escapeXml(s) {
    return String(s)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;');
}

function escapeCell(s) {
    return String(s).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function code(s) {
    const t = String(s);
    const fence = t.includes('`') ? '``' : '`';
    const pad = t.startsWith('`') || t.endsWith('`') ? ' ' : '';
    return `${fence}${pad}${t}${pad}${fence}`;
}

function slug(s) {
    return String(s)
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '');
}

// ---------------------------------------------------------------------------------------
// Input

// The lines of results.jsonl as objects. Blank lines are skipped; a line that is not a JSON
// object with a string `scenario` and `server` throws, naming the line.
export function parseResults(text, name = 'results') {
    const out = [];
    const lines = text.split(/\r?\n/);
    lines.forEach((line, i) => {
        if (line.trim() === '') return;
        let obj;
        try {
            obj = JSON.parse(line);
        } catch (e) {
            throw new Error(`${name}, line ${i + 1}: not JSON (${e.message})`);
        }
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
            throw new Error(`${name}, line ${i + 1}: not a JSON object`);
        }
        if (typeof obj.scenario !== 'string' || typeof obj.server !== 'string') {
            throw new Error(`${name}, line ${i + 1}: no "scenario" or "server" string`);
        }
        out.push(obj);
    });
    return out;
}

// The results by scenario and server. A later line for the same pair replaces an earlier
// one. entry() gives { scenario, server, rec } for a run, { scenario, server, error } for
// one that did not run.
export class Results {
    constructor(records) {
        this.map = new Map();
        for (const r of records) {
            if (!this.map.has(r.scenario)) this.map.set(r.scenario, new Map());
            const entry = { scenario: r.scenario, server: r.server };
            if (r.error !== undefined && r.error !== null) entry.error = String(r.error);
            else entry.rec = r;
            entry.raw = r;
            this.map.get(r.scenario).set(r.server, entry);
        }
    }
    entry(scenario, server) {
        return this.map.get(scenario)?.get(server);
    }
    // The record of a run that happened, else undefined.
    ok(scenario, server) {
        return this.entry(scenario, server)?.rec;
    }
    has(scenario) {
        return this.map.has(scenario);
    }
    scenarios() {
        return [...this.map.keys()];
    }
    // herald, nchan, pushpin (those present), then any other server in order of appearance.
    serversOf(scenario) {
        const m = this.map.get(scenario);
        if (!m) return [];
        const known = SERVERS.filter((s) => m.has(s));
        return known.concat([...m.keys()].filter((s) => !SERVERS.includes(s)));
    }
    allServers() {
        const seen = new Set();
        for (const m of this.map.values()) for (const s of m.keys()) seen.add(s);
        return SERVERS.filter((s) => seen.has(s)).concat(
            [...seen].filter((s) => !SERVERS.includes(s)),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Footnotes for runs that did not happen

export class Notes {
    constructor() {
        this.defs = new Map();
    }
    ref(entry) {
        const label = `bench-${slug(entry.server)}-${slug(entry.scenario)}`;
        if (!this.defs.has(label)) {
            const why = String(entry.error).replace(/\s+/g, ' ').trim() || 'no reason given';
            this.defs.set(
                label,
                `${serverLabel(entry.server)} did not run the \`${entry.scenario}\` scenario: ${why}`,
            );
        }
        return `[^${label}]`;
    }
    render() {
        return [...this.defs].map(([label, text]) => `[^${label}]: ${text}`);
    }
}

// A table cell for one server's figure: the formatted value, "—" with a footnote when the
// run failed, "—" when there is no such run or figure.
function cellFor(notes, entry, get, fmt, dagger = false) {
    if (!entry) return '—';
    if (entry.error !== undefined) return '—' + notes.ref(entry);
    const v = get(entry.rec);
    if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) {
        return '—';
    }
    return fmt(v) + (dagger && entry.rec.clean === false ? ' †' : '');
}

function table(header, rows, align) {
    const a = align ?? header.map((_, i) => (i === 0 ? '---' : '---:'));
    return [
        `| ${header.join(' | ')} |`,
        `| ${a.join(' | ')} |`,
        ...rows.map((r) => `| ${r.join(' | ')} |`),
    ];
}

// ---------------------------------------------------------------------------------------
// Summary

const idleRow = (scenario, size) => ({
    id: scenario,
    scenario,
    label: (n) => `Idle memory per subscriber, ${size(n)} (bytes; lower is better)`,
    short: (n) => `Idle memory / subscriber, ${size(n, true)} (B; lower is better)`,
    get: (r) => r.bytes_per_subscriber,
    fmt: fmtInt,
    lower: true,
});

export const SUMMARY_ROWS = [
    idleRow('idle-1k', (_, short) => (short ? '1k' : '1,000 subscribers')),
    idleRow('idle-10k', (_, short) => (short ? '10k' : '10,000 subscribers')),
    idleRow('idle-max', (n, short) =>
        short
            ? `max${isNum(n) ? ` = ${fmtInt(n)}` : ''}`
            : `the most the machine allows${isNum(n) ? `, ${fmtInt(n)} subscribers` : ''}`,
    ),
    {
        id: 'fanout-dps',
        scenario: 'fanout',
        label: () => 'Fan-out deliveries/s',
        short: () => 'Fan-out deliveries/s',
        get: (r) => r.deliveries_per_s,
        fmt: fmtRate,
    },
    {
        id: 'fanout-p99',
        scenario: 'fanout',
        label: () => 'Fan-out latency p99 (lower is better)',
        short: () => 'Fan-out p99 (lower is better)',
        get: (r) => r.latency_ns?.p99,
        fmt: fmtLatency,
        lower: true,
    },
    {
        id: 'paced-p99',
        scenario: 'paced',
        label: () => 'Paced latency p99 (lower is better)',
        short: () => 'Paced p99 (lower is better)',
        get: (r) => r.latency_ns?.p99,
        fmt: fmtLatency,
        lower: true,
    },
    {
        id: 'paced-p999',
        scenario: 'paced',
        label: () => 'Paced latency p99.9 (lower is better)',
        short: () => 'Paced p99.9 (lower is better)',
        get: (r) => r.latency_ns?.p999,
        fmt: fmtLatency,
        lower: true,
    },
    {
        id: 'topics-dps',
        scenario: 'topics',
        label: () => 'Many topics deliveries/s',
        short: () => 'Many topics deliveries/s',
        get: (r) => r.deliveries_per_s,
        fmt: fmtRate,
    },
    {
        id: 'topics-p99',
        scenario: 'topics',
        label: () => 'Many topics latency p99 (lower is better)',
        short: () => 'Many topics p99 (lower is better)',
        get: (r) => r.latency_ns?.p99,
        fmt: fmtLatency,
        lower: true,
    },
    {
        id: 'publish-pps',
        scenario: 'publish',
        label: () => 'Publish only, publishes/s',
        short: () => 'Publish only, publishes/s',
        get: (r) => r.publishes_per_s,
        fmt: fmtRate,
    },
    {
        id: 'churn-cps',
        scenario: 'churn',
        label: () => 'Churn connects/s',
        short: () => 'Churn connects/s',
        get: (r) => r.churn?.connects_per_s,
        fmt: fmtRate,
    },
];

// One object per summary row whose scenario has any result: the raw values per server and
// the ratios herald / peer.
export function computeSummary(results) {
    const rows = [];
    for (const def of SUMMARY_ROWS) {
        if (!results.has(def.scenario)) continue;
        const values = {};
        for (const s of SERVERS) {
            const rec = results.ok(def.scenario, s);
            const v = rec ? def.get(rec) : undefined;
            values[s] = isNum(v) ? v : undefined;
        }
        const ratios = {};
        for (const p of PEERS) ratios[p] = ratio(values.herald, values[p]);
        const n = results.ok(def.scenario, 'herald')?.subscribers;
        rows.push({ def, values, ratios, label: def.label(n), short: def.short(n) });
    }
    return rows;
}

function renderSummaryTable(results, notes, compact) {
    const rows = computeSummary(results);
    if (rows.length === 0) return { lines: ['No scenario with a summary figure ran.'], dagger: false };
    let dagger = false;
    const body = rows.map((row) => {
        const cells = SERVERS.map((s) => {
            const entry = results.entry(row.def.scenario, s);
            const c = cellFor(notes, entry, row.def.get, row.def.fmt, true);
            if (c.endsWith(' †')) dagger = true;
            return c;
        });
        return [
            compact ? row.short : row.label,
            ...cells,
            ...PEERS.map((p) => fmtRatio(row.ratios[p])),
        ];
    });
    const header = [
        compact ? '' : 'figure',
        ...SERVERS.map(serverLabel),
        ...PEERS.map((p) => `herald ÷ ${SERVER_SHORT[p]}`),
    ];
    return { lines: table(header, body), dagger };
}

const DAGGER_NOTE =
    '† from a run that was not clean (it lost, duplicated or refused something, or a ' +
    'subscriber disconnected); see the scenario’s section.';

// ---------------------------------------------------------------------------------------
// Goals

const MET = 'met';
const NOT_MET = 'not met';
const NOT_MEASURED = 'not measured';

function unmeasured(results, scenario, servers) {
    const why = [];
    for (const s of servers) {
        const e = results.entry(scenario, s);
        if (!e) why.push(`no ${serverLabel(s)} result for \`${scenario}\``);
        else if (e.error !== undefined) why.push(`${serverLabel(s)} did not run \`${scenario}\``);
    }
    return why;
}

function lossText(rec) {
    return `${fmtInt(rec.missing ?? 0)} missing, ${fmtInt(rec.duplicates ?? 0)} duplicates`;
}

// The goals with their measured values and verdicts (met / not met / not measured).
export function computeGoals(results) {
    const goals = [];
    const add = (id, goal, fn) => {
        const g = fn();
        goals.push({ id, goal, ...g });
    };
    const missingOf = (scenario, servers, check) => {
        const why = unmeasured(results, scenario, servers);
        if (why.length === 0 && check) {
            for (const s of servers) {
                if (!isNum(check(results.ok(scenario, s)))) {
                    why.push(`no figure in the ${serverLabel(s)} result for \`${scenario}\``);
                }
            }
        }
        return why.length ? { measured: why.join('; '), verdict: NOT_MEASURED } : undefined;
    };

    const bps = (r) => r?.bytes_per_subscriber;
    add('idle-1024', 'Idle memory per subscriber at 10,000 subscribers ≤ 1,024 B', () => {
        const m = missingOf('idle-10k', ['herald'], bps);
        if (m) return m;
        const v = bps(results.ok('idle-10k', 'herald'));
        return { value: v, measured: `${fmtInt(v)} B`, verdict: v <= 1024 ? MET : NOT_MET };
    });
    add('idle-half-nchan', 'Idle memory per subscriber at 10,000 ≤ half of Nchan’s', () => {
        const m = missingOf('idle-10k', ['herald', 'nchan'], bps);
        if (m) return m;
        const h = bps(results.ok('idle-10k', 'herald'));
        const n = bps(results.ok('idle-10k', 'nchan'));
        return {
            value: ratio(h, n),
            measured: `herald ${fmtInt(h)} B, Nchan ${fmtInt(n)} B: herald ÷ Nchan = ${fmtRatio(ratio(h, n))}`,
            verdict: h <= n / 2 ? MET : NOT_MET,
        };
    });
    const dps = (r) => r?.deliveries_per_s;
    add('fanout-2x', 'Fan-out deliveries/s ≥ 2 × Nchan’s, with no loss', () => {
        const m = missingOf('fanout', ['herald', 'nchan'], dps);
        if (m) return m;
        const h = results.ok('fanout', 'herald');
        const n = results.ok('fanout', 'nchan');
        const r = ratio(h.deliveries_per_s, n.deliveries_per_s);
        return {
            value: r,
            measured:
                `herald ${fmtRate(h.deliveries_per_s)}/s, Nchan ${fmtRate(n.deliveries_per_s)}/s: ` +
                `${fmtRatio(r)} ×; herald ${lossText(h)}`,
            verdict: isNum(r) && r >= 2 && losses(h) === 0 ? MET : NOT_MET,
        };
    });
    const p99 = (r) => r?.latency_ns?.p99;
    add('paced-p99', 'Paced latency p99 lower than Nchan’s, with no loss', () => {
        const m = missingOf('paced', ['herald', 'nchan'], p99);
        if (m) return m;
        const h = results.ok('paced', 'herald');
        const n = results.ok('paced', 'nchan');
        return {
            value: ratio(p99(h), p99(n)),
            measured:
                `herald ${fmtLatency(p99(h))}, Nchan ${fmtLatency(p99(n))}; herald ${lossText(h)}`,
            verdict: p99(h) < p99(n) && losses(h) === 0 ? MET : NOT_MET,
        };
    });
    const pps = (r) => r?.publishes_per_s;
    add('publish-nchan', 'Publish-only publishes/s ≥ Nchan’s', () => {
        const m = missingOf('publish', ['herald', 'nchan'], pps);
        if (m) return m;
        const h = pps(results.ok('publish', 'herald'));
        const n = pps(results.ok('publish', 'nchan'));
        return {
            value: ratio(h, n),
            measured: `herald ${fmtRate(h)}/s, Nchan ${fmtRate(n)}/s: ${fmtRatio(ratio(h, n))} ×`,
            verdict: h >= n ? MET : NOT_MET,
        };
    });
    add(
        'cluster-fanout',
        `Cluster fan-out: \`cluster-fanout\` deliveries/s ≥ ${CLUSTER_FANOUT_GOAL} × \`${CLUSTER_FANOUT_BASE}\`’s (herald), with no loss`,
        () => {
            const m =
                missingOf('cluster-fanout', ['herald'], dps) ?? missingOf(CLUSTER_FANOUT_BASE, ['herald'], dps);
            if (m) return m;
            const c = results.ok('cluster-fanout', 'herald');
            const f = results.ok(CLUSTER_FANOUT_BASE, 'herald');
            const r = ratio(c.deliveries_per_s, f.deliveries_per_s);
            return {
                value: r,
                measured:
                    `two nodes ${fmtRate(c.deliveries_per_s)}/s, one node ${fmtRate(f.deliveries_per_s)}/s: ` +
                    `${fmtRatio(r)} ×; two nodes ${lossText(c)}`,
                verdict: isNum(r) && r >= CLUSTER_FANOUT_GOAL && losses(c) === 0 ? MET : NOT_MET,
            };
        },
    );
    add(
        'cluster-publish',
        `Cluster publish: \`cluster-publish\` publishes/s ≥ ${CLUSTER_PUBLISH_GOAL} × \`publish\`’s (herald), with no error`,
        () => {
            const m = missingOf('cluster-publish', ['herald'], pps) ?? missingOf('publish', ['herald'], pps);
            if (m) return m;
            const c = results.ok('cluster-publish', 'herald');
            const p = results.ok('publish', 'herald');
            const r = ratio(c.publishes_per_s, p.publishes_per_s);
            return {
                value: r,
                measured:
                    `two nodes ${fmtRate(c.publishes_per_s)}/s, one node ${fmtRate(p.publishes_per_s)}/s: ` +
                    `${fmtRatio(r)} ×; two nodes ${fmtInt(c.publish_errors ?? 0)} publish errors`,
                verdict: isNum(r) && r >= CLUSTER_PUBLISH_GOAL && (c.publish_errors ?? 0) === 0 ? MET : NOT_MET,
            };
        },
    );
    add(
        'idle-flat',
        'Memory per subscriber flat from 1,000 to the maximum (the max figure within 15% of the 10,000 figure)',
        () => {
            const m = missingOf('idle-max', ['herald'], bps) ?? missingOf('idle-10k', ['herald'], bps);
            if (m) return m;
            const k10 = bps(results.ok('idle-10k', 'herald'));
            const maxRec = results.ok('idle-max', 'herald');
            const max = bps(maxRec);
            const k1 = bps(results.ok('idle-1k', 'herald'));
            const change = k10 > 0 ? (max - k10) / k10 : Infinity;
            const parts = [];
            if (isNum(k1)) parts.push(`1,000: ${fmtInt(k1)} B`);
            parts.push(`10,000: ${fmtInt(k10)} B`);
            parts.push(`max (${fmtInt(maxRec.connected ?? maxRec.subscribers)}): ${fmtInt(max)} B`);
            const dir = change < 0 ? 'below' : 'above';
            return {
                value: change,
                measured: `${parts.join(', ')}; the max figure is ${fmtFixed(Math.abs(change) * 100, 1)}% ${dir} the 10,000 figure`,
                verdict: Math.abs(change) <= 0.15 ? MET : NOT_MET,
            };
        },
    );
    return goals;
}

// ---------------------------------------------------------------------------------------
// Scenario tables

const pct = (cpu, secs) =>
    isNum(cpu) && isNum(secs) && secs > 0 ? ` (${fmtFixed((cpu / secs) * 100, 0)}% of a core)` : '';
const cpuRow = (label, field, get = (r) => r[field]) => ({
    label,
    get,
    fmt: (v, r) => `${fmtFixed(v, 1)} s${pct(v, r.publish_s)}`,
});
const num = (label, get, fmt = fmtInt) => ({ label, get, fmt });
const lat = (label, obj, key) => num(label, (r) => r[obj]?.[key], fmtLatency);
const group = (label) => ({ group: label });

const ROWS_SUBSCRIBERS = [
    {
        label: 'Subscribers connected / asked',
        get: (r) => r.connected,
        fmt: (v, r) => `${fmtInt(v)} / ${fmtInt(r.subscribers)}`,
    },
    num('Connect failures', (r) => r.failed),
    num('Connect time (s)', (r) => r.connect_s, (v) => fmtFixed(v, 2)),
    num('Connects/s', (r) => r.connects_per_s, fmtRate),
];
const ROWS_MEMORY = [
    num('Server RSS before', (r) => r.rss_before_kb, fmtMiBFromKiB),
    num('Server RSS after', (r) => r.rss_after_kb, fmtMiBFromKiB),
    num('RSS growth per subscriber (B)', (r) => r.bytes_per_subscriber),
];
const ROWS_PUBLISH = [
    num('Publishers', (r) => r.publishers),
    {
        label: 'Rate asked (publishes/s)',
        get: (r) => r.rate,
        fmt: (v) => (v === 0 ? 'as fast as possible' : fmtRate(v)),
    },
    num('Payload (bytes)', (r) => r.payload),
    num('Publishing time (s)', (r) => r.publish_s, (v) => fmtFixed(v, 1)),
    num('Publishes acknowledged', (r) => r.publishes),
    num('Publish errors', (r) => r.publish_errors),
    num('Publishes/s', (r) => r.publishes_per_s, fmtRate),
    lat('Publish round trip p50', 'publish_rtt_ns', 'p50'),
    lat('Publish round trip p99', 'publish_rtt_ns', 'p99'),
    lat('Publish round trip max', 'publish_rtt_ns', 'max'),
];
const ROWS_DELIVERY = [
    num('Topics', (r) => r.topics),
    {
        label: 'Deliveries / expected',
        get: (r) => r.deliveries,
        fmt: (v, r) => `${fmtInt(v)} / ${fmtInt(r.expected)}`,
    },
    num('Deliveries/s', (r) => r.deliveries_per_s, fmtRate),
    {
        label: 'Received (MiB/s)',
        get: (r) => (isNum(r.bytes_received) && r.publish_s > 0 ? r.bytes_received / r.publish_s / 2 ** 20 : undefined),
        fmt: (v) => fmtFixed(v, 1),
    },
    lat('Latency p50', 'latency_ns', 'p50'),
    lat('Latency p90', 'latency_ns', 'p90'),
    lat('Latency p99', 'latency_ns', 'p99'),
    lat('Latency p99.9', 'latency_ns', 'p999'),
    lat('Latency max', 'latency_ns', 'max'),
];
const ROWS_LOSSES = [
    group('Losses'),
    num('Missing', (r) => r.missing),
    num('Subscribers missing an event', (r) => r.subscribers_missing),
    num('Duplicates', (r) => r.duplicates),
    num('Malformed', (r) => r.malformed),
    num('Received but not acknowledged', (r) => r.unacknowledged),
    num('Disconnected', (r) => r.disconnected),
];
const ROWS_CHURN = [
    group('Churn'),
    num('Churn rate asked (connections/s)', (r) => r.churn?.rate, fmtRate),
    num('Churn connects', (r) => r.churn?.connects),
    num('Churn failures', (r) => r.churn?.failures),
    num('Churn connects/s', (r) => r.churn?.connects_per_s, fmtRate),
    ...['p50', 'p99', 'max'].map((k) =>
        num(`Churn response head ${k}`, (r) => r.churn?.head_ns?.[k], fmtLatency),
    ),
];
const ROWS_RESOURCES = [
    group('CPU and memory'),
    cpuRow('Server CPU', 'server_cpu_s'),
    cpuRow('Harness CPU', 'harness_cpu_s'),
    ...ROWS_MEMORY,
    { label: 'Clean', get: (r) => r.clean, fmt: (v) => (v ? 'yes' : 'no') },
];

const ROWS_BY_KIND = {
    idle: [
        ...ROWS_SUBSCRIBERS,
        group('Losses'),
        num('Disconnected', (r) => r.disconnected),
        group('CPU and memory'),
        {
            label: 'Server CPU (s)',
            get: (r) => r.server_cpu_s,
            fmt: (v) => fmtFixed(v, 1),
        },
        { label: 'Harness CPU (s)', get: (r) => r.harness_cpu_s, fmt: (v) => fmtFixed(v, 1) },
        ...ROWS_MEMORY,
        { label: 'Clean', get: (r) => r.clean, fmt: (v) => (v ? 'yes' : 'no') },
    ],
    events: [...ROWS_SUBSCRIBERS, ...ROWS_PUBLISH, ...ROWS_DELIVERY, ...ROWS_LOSSES, ...ROWS_RESOURCES],
    publish: [...ROWS_PUBLISH, ...ROWS_RESOURCES],
    churn: [
        ...ROWS_SUBSCRIBERS,
        ...ROWS_PUBLISH,
        ...ROWS_DELIVERY,
        ...ROWS_LOSSES,
        ...ROWS_CHURN,
        ...ROWS_RESOURCES,
    ],
};

// Known scenarios, in the order of the page. about(r) describes the scenario from one of
// its records (the first server's that ran).
const SCENARIOS = [
    {
        id: 'idle-1k',
        title: 'Idle, 1,000 subscribers',
        kind: 'idle',
        about: () =>
            'Subscribers connect and receive nothing. The figure is the server’s RSS growth divided by the subscribers connected.',
    },
    {
        id: 'idle-10k',
        title: 'Idle, 10,000 subscribers',
        kind: 'idle',
        about: () => 'As above, with 10,000 subscribers.',
    },
    {
        id: 'idle-max',
        title: 'Idle, as many subscribers as the machine allows',
        kind: 'idle',
        about: (r, meta) =>
            `As above, with ${isNum(r?.subscribers) ? fmtInt(r.subscribers) : 'the most'} subscribers` +
            (isNum(meta.nofile_hard)
                ? `: about the most one process may hold under this machine’s cap of ${fmtInt(meta.nofile_hard)} open files.`
                : '.'),
    },
    {
        id: 'fanout',
        title: 'Fan-out',
        kind: 'events',
        about: (r) =>
            `${subs(r)} on one topic; ${pubs(r)} publish as fast as they can, each waiting for the answer to a publish before the next. ` +
            'On a small machine the load generator, sharing the cores, cannot read as fast as the faster servers write: events then wait in socket buffers and the servers’ queues, and the latency here is mostly that wait. Deliveries/s are counted up to the last event received, so that waiting is not credited as throughput.',
    },
    {
        id: 'fanout-paced',
        title: 'Fan-out, paced',
        kind: 'events',
        about: (r) =>
            `${subs(r)} on one topic; ${pubs(r)} publish ${isNum(r?.rate) ? fmtRate(r.rate) : 'a fixed number of'} events/s in all, a rate this machine sustains: the latency is the server's, not the load generator's. The baseline of the next scenario.`,
    },
    {
        id: 'fanout-stalled',
        title: 'Fan-out with stalled subscribers',
        kind: 'events',
        about: (r) =>
            `As fan-out, paced, with ${subs(r)} that read and ${isNum(r?.stalled) ? fmtInt(r.stalled) : 'some'} more that ask for the stream and never read a byte` +
            (isNum(r?.stalled_closed) ? ` (the server closed ${fmtInt(r.stalled_closed)} of them by the end of the run)` : '') +
            '. Set against the paced fan-out, it shows what a few clients that stop reading cost everyone else: the latency and the publish rate should not move.',
    },
    {
        id: 'fanout-p4',
        title: 'Fan-out, 4 publishers',
        kind: 'events',
        about: (r) =>
            `As fan-out, with ${pubs(r)}: only that many publishes are ever in flight, so this measures round trips under load more than how fast a server fans out.`,
    },
    {
        id: 'fanout-p8',
        title: 'Fan-out, 8 publishers',
        kind: 'events',
        about: (r) =>
            `As fan-out, with ${pubs(r)}: herald holds a publish while most of its topic’s subscribers are behind, and with this many publishes in flight that hold still paces the publishers to what the load generator reads, so nothing is lost (with 64, on a small machine, the slowest subscribers fall a megabyte behind and are cut). The baseline of the cluster’s fan-out (herald only).`,
    },
    {
        id: 'paced',
        title: 'Paced',
        kind: 'events',
        about: (r) =>
            `${subs(r)} on one topic; ${pubs(r)} publish ${isNum(r?.rate) ? fmtRate(r.rate) : 'a fixed number of'} events/s in all` +
            (isNum(r?.rate) && isNum(r?.subscribers)
                ? `, which asks for ${fmtInt(r.rate * r.subscribers)} deliveries/s. A server that delivers less falls behind the rate (its publishes/s is below it, as each publisher waits for its answer), and its latency is that of a saturated server.`
                : '.'),
    },
    {
        id: 'topics',
        title: 'Many topics',
        kind: 'events',
        about: (r) =>
            `${subs(r)}, each on its own topic; ${pubs(r)} publish ${isNum(r?.rate) ? fmtRate(r.rate) : 'a fixed number of'} events/s spread over the topics.`,
    },
    {
        id: 'publish',
        title: 'Publish only',
        kind: 'publish',
        about: (r) =>
            `No subscribers; ${pubs(r)} publish as fast as they can, each waiting for the answer before the next.`,
    },
    {
        id: 'churn',
        title: 'Churn',
        kind: 'churn',
        about: () =>
            'Steady subscribers receive events while other connections open and close; the churn figures are those connections’ rate and the time to their response head, the losses are the steady subscribers’.',
    },
    {
        id: 'idle-1m',
        title: 'Idle, 1,000,000 subscribers',
        kind: 'idle',
        about: () => 'From `make bench-1m`, on a machine without the open-file cap.',
    },
    {
        id: 'paced-1m',
        title: 'Paced, 1,000,000 subscribers',
        kind: 'events',
        about: () => 'From `make bench-1m`, on a machine without the open-file cap.',
    },
];

function subs(r) {
    return isNum(r?.subscribers) ? `${fmtInt(r.subscribers)} subscribers` : 'Subscribers';
}
function pubs(r) {
    return isNum(r?.publishers) ? `${fmtInt(r.publishers)} publisher${r.publishers === 1 ? '' : 's'}` : 'publishers';
}

function kindOf(results, scenario) {
    const known = SCENARIOS.find((s) => s.id === scenario);
    if (known) return known.kind;
    if (STORE_SCENARIOS.includes(scenario)) return 'publish';
    if (scenario === 'cluster-publish') return 'publish';
    if (scenario === 'cluster-fanout') return 'events';
    const recs = results.serversOf(scenario).map((s) => results.ok(scenario, s)).filter(Boolean);
    if (recs.some((r) => r.churn && isNum(r.churn.connects) && r.churn.connects > 0)) return 'churn';
    if (recs.some((r) => r.idle === true)) return 'idle';
    if (recs.length && recs.every((r) => r.subscribers === 0)) return 'publish';
    return 'events';
}

// A table of full figures: one column per (label, entry) pair.
function figuresTable(columns, rows) {
    const header = ['', ...columns.map((c) => c.head)];
    const body = [];
    let pendingGroup;
    for (const row of rows) {
        if (row.group) {
            pendingGroup = row.group;
            continue;
        }
        const anyValue = columns.some((c) => {
            const v = c.entry?.rec ? row.get(c.entry.rec) : undefined;
            return v !== undefined && v !== null;
        });
        if (!anyValue) continue;
        if (pendingGroup) {
            body.push([`**${pendingGroup}**`, ...columns.map(() => '')]);
            pendingGroup = undefined;
        }
        body.push([
            row.label,
            ...columns.map((c) => {
                if (!c.entry || c.entry.error !== undefined) return '—';
                const v = row.get(c.entry.rec);
                if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) return '—';
                return escapeCell(row.fmt(v, c.entry.rec));
            }),
        ]);
    }
    if (body.length === 0) body.push(['(no figures)', ...columns.map((c) => (c.entry?.error !== undefined ? '—' : ''))]);
    return table(header, body);
}

function serverColumns(results, scenario, notes) {
    return results.serversOf(scenario).map((s) => {
        const entry = results.entry(scenario, s);
        return { head: serverLabel(s) + (entry.error !== undefined ? notes.ref(entry) : ''), entry };
    });
}

function scenarioSection(results, meta, scenario, notes, level = '##') {
    const def = SCENARIOS.find((s) => s.id === scenario);
    const first = results.serversOf(scenario).map((s) => results.ok(scenario, s)).find(Boolean);
    const lines = [`${level} ${def ? def.title : `\`${scenario}\``}`, ''];
    if (def) lines.push(`Scenario \`${scenario}\`. ${def.about(first, meta)}`, '');
    const cols = serverColumns(results, scenario, notes);
    lines.push(...figuresTable(cols, ROWS_BY_KIND[kindOf(results, scenario)]), '');
    const lossy = cols.filter((c) => c.entry.rec && (losses(c.entry.rec) > 0 || c.entry.rec.clean === false));
    if (lossy.length) {
        lines.push(
            `Not clean: ${lossy.map((c) => `${serverLabel(c.entry.server)} (${lossText(c.entry.rec)}, ${fmtInt(c.entry.rec.disconnected ?? 0)} disconnected, ${fmtInt(c.entry.rec.failed ?? 0)} connect failures, ${fmtInt(c.entry.rec.publish_errors ?? 0)} publish errors)`).join('; ')}.`,
            '',
        );
    } else if (cols.some((c) => c.entry.rec)) {
        const kind = kindOf(results, scenario);
        lines.push(
            kind === 'idle'
                ? 'Every subscriber connected and stayed connected.'
                : kind === 'publish'
                  ? 'Every publish was acknowledged.'
                  : 'No server lost or duplicated an event.',
            '',
        );
    }
    return lines;
}

// ---------------------------------------------------------------------------------------
// Store table (herald only)

// The store's scenario, herald's entry. bench/run.sh runs no publish-memory-p64: the
// memory store with 64 publishers is the `publish` scenario (herald's default store).
function storeEntry(results, store, publishers) {
    const e = results.entry(`publish-${store}-p${publishers}`, 'herald');
    return e ?? (store === 'memory' && publishers === 64 ? results.entry('publish', 'herald') : undefined);
}

export function computeStores(results) {
    const present = STORE_SCENARIOS.filter((s) => results.entry(s, 'herald'));
    if (present.length === 0) return undefined;
    const rows = STORES.map((store) => ({
        store,
        cells: STORE_PUBLISHERS.map((p) => storeEntry(results, store, p)),
    }));
    const mem = storeEntry(results, 'memory', 64)?.rec?.publishes_per_s;
    const full = results.ok('publish-sqlite-full-p64', 'herald')?.publishes_per_s;
    return { rows, ratio: ratio(full, mem) };
}

function storeSection(results, notes) {
    const st = computeStores(results);
    if (!st) return [];
    const lines = [
        '## Stores (herald only)',
        '',
        'Publish-only throughput of herald with each store: no subscribers, publishers as fast as they can, each waiting for the answer before the next. `sqlite-normal` and `sqlite-full` are the SQLite store with `HERALD_STORE_SYNC=normal` and `full`, each run on a new database file. The memory store with 64 publishers is the `publish` scenario unless a `publish-memory-p64` ran.',
        '',
    ];
    const body = st.rows.map(({ store, cells }) => [
        store,
        ...cells.map((e) => cellFor(notes, e, (r) => r.publishes_per_s, fmtRate)),
        cells.map((e) => cellFor(notes, e, (r) => r.publish_errors, fmtInt)).join(' / '),
    ]);
    lines.push(
        ...table(['store', ...STORE_PUBLISHERS.map((p) => `${p} publisher${p === 1 ? '' : 's'} (publishes/s)`), 'errors (p1 / p64)'], body),
        '',
    );
    lines.push(
        isNum(st.ratio)
            ? `sqlite-full-p64 ÷ memory-p64: ${fmtRatio(st.ratio)} (the store goal is at least 0.5: ${st.ratio >= 0.5 ? MET : NOT_MET}).`
            : 'sqlite-full-p64 ÷ memory-p64: not measured (it needs both results).',
        '',
    );
    const cols = STORE_SCENARIOS.filter((s) => results.entry(s, 'herald')).map((s) => {
        const entry = results.entry(s, 'herald');
        return { head: `\`${s.replace(/^publish-/, '')}\`` + (entry.error !== undefined ? notes.ref(entry) : ''), entry };
    });
    lines.push('<details>', '<summary>Full figures of the store scenarios</summary>', '');
    lines.push(...figuresTable(cols, ROWS_BY_KIND.publish), '', '</details>', '');
    return lines;
}

// ---------------------------------------------------------------------------------------
// Cluster (herald only): two nodes on one Redis against one node on the memory store

// The fraction of one core a CPU time over the publishing window is; undefined when unknown.
function coreFraction(cpuS, rec) {
    return isNum(cpuS) && cpuS >= 0 && isNum(rec?.publish_s) && rec.publish_s > 0 ? cpuS / rec.publish_s : undefined;
}
const heraldCores = (rec) => coreFraction(rec?.server_cpu_s, rec);
const redisCores = (rec) => coreFraction(rec?.aux?.redis?.cpu_s, rec);

// The cluster scenarios beside their single-node baselines, the two ratios, and the
// arithmetic for N nodes: Redis's ceiling R = publishes/s ÷ Redis's fraction of a core, and
// herald's publishes (or deliveries) per core = publishes/s ÷ herald's cores.
export function computeCluster(results) {
    if (!CLUSTER_SCENARIOS.some((s) => results.entry(s, 'herald'))) return undefined;
    const rows = [
        [CLUSTER_FANOUT_BASE, 'one node, memory store'],
        ['cluster-fanout', 'two nodes, Redis store'],
        ['publish', 'one node, memory store'],
        ['publish-memory-p1', 'one node, memory store, 1 publisher'],
        ['cluster-publish', 'two nodes, Redis store'],
    ]
        .map(([scenario, setup]) => ({ scenario, setup, entry: results.entry(scenario, 'herald') }))
        .filter((r) => r.entry);
    const cf = results.ok('cluster-fanout', 'herald');
    const cp = results.ok('cluster-publish', 'herald');
    const out = {
        rows,
        fanoutRatio: ratio(cf?.deliveries_per_s, results.ok(CLUSTER_FANOUT_BASE, 'herald')?.deliveries_per_s),
        publishRatio: ratio(cp?.publishes_per_s, results.ok('publish', 'herald')?.publishes_per_s),
    };
    const rf = redisCores(cp);
    if (isNum(cp?.publishes_per_s) && cp.publishes_per_s > 0 && isNum(rf) && rf > 0) {
        out.redis = { publishes: cp.publishes_per_s, cores: rf, ceiling: cp.publishes_per_s / rf };
    }
    const hf = heraldCores(cp);
    if (isNum(cp?.publishes_per_s) && cp.publishes_per_s > 0 && isNum(hf) && hf > 0) {
        out.heraldPublish = { publishes: cp.publishes_per_s, cores: hf, perCore: cp.publishes_per_s / hf };
    }
    const hff = heraldCores(cf);
    if (isNum(cf?.deliveries_per_s) && cf.deliveries_per_s > 0 && isNum(hff) && hff > 0) {
        out.heraldFanout = { deliveries: cf.deliveries_per_s, cores: hff, perCore: cf.deliveries_per_s / hff };
    }
    return out;
}

const pctOfCore = (f) => (isNum(f) ? `${fmtFixed(f * 100, 0)}% of a core` : '—');
// A fraction of a core with the digits that matter: 0.32, 1.21, 0.045.
const fmtCores = (f) => fmtFixed(f, f < 0.1 ? 3 : 2);

function clusterSection(results, meta, notes) {
    const c = computeCluster(results);
    if (!c) return [];
    const lines = [
        '## Cluster (herald only)',
        '',
        `The loads of \`${CLUSTER_FANOUT_BASE}\`` +
            ' and `publish` (1,000 subscribers and 8 publishers, 64 publishers alone; 256-byte payloads) on two herald nodes sharing one Redis (`--store redis://…`, `--node-name a` and `b`, `--threads 1` each; a redis-server started for the scenario with `--save "" --appendonly no`) instead of one node with the memory store (`--threads` one per core). The load generator deals its subscribers and publishers round-robin over the two nodes, so every event published on one node must reach the subscribers of both; losses are still exact counts. herald’s CPU is both nodes’ summed; Redis’s is measured apart (`--aux-pid redis=PID`).',
        '',
    ];
    const cell = (e, get, fmt) => cellFor(notes, e, get, fmt, true);
    lines.push(
        ...table(
            ['scenario', 'setup', 'publishes/s', 'deliveries/s', 'missing + duplicates', 'publish errors', 'herald CPU', 'Redis CPU'],
            c.rows.map(({ scenario, setup, entry }) => [
                `\`${scenario}\``,
                setup,
                cell(entry, (r) => r.publishes_per_s, fmtRate),
                cell(entry, (r) => (r.subscribers > 0 ? r.deliveries_per_s : undefined), fmtRate),
                cell(entry, (r) => (r.subscribers > 0 ? losses(r) : undefined), fmtInt),
                cell(entry, (r) => r.publish_errors, fmtInt),
                cell(entry, heraldCores, pctOfCore),
                cell(entry, redisCores, pctOfCore),
            ]),
            ['---', '---', '---:', '---:', '---:', '---:', '---:', '---:'],
        ),
        '',
    );
    const cf = results.ok('cluster-fanout', 'herald');
    const cp = results.ok('cluster-publish', 'herald');
    const verdict = (r, goal, clean) => (r >= goal && clean ? MET : NOT_MET);
    lines.push(
        isNum(c.fanoutRatio)
            ? `- \`cluster-fanout\` ÷ \`${CLUSTER_FANOUT_BASE}\`, deliveries/s: ${fmtRatio(c.fanoutRatio)} (goal ≥ ${CLUSTER_FANOUT_GOAL} with nothing lost: ${verdict(c.fanoutRatio, CLUSTER_FANOUT_GOAL, losses(cf) === 0)}; ${lossText(cf)}).`
            : `- \`cluster-fanout\` ÷ \`${CLUSTER_FANOUT_BASE}\`, deliveries/s: not measured (it needs both herald results).`,
        isNum(c.publishRatio)
            ? `- \`cluster-publish\` ÷ \`publish\`, publishes/s: ${fmtRatio(c.publishRatio)} (goal ≥ ${CLUSTER_PUBLISH_GOAL} with no publish error: ${verdict(c.publishRatio, CLUSTER_PUBLISH_GOAL, (cp.publish_errors ?? 0) === 0)}; ${fmtInt(cp.publish_errors ?? 0)} errors).`
            : '- `cluster-publish` ÷ `publish`, publishes/s: not measured (it needs both herald results).',
        '',
    );
    lines.push(...clusterArithmetic(c, meta));
    lines.push('<details>', '<summary>Full figures of the cluster scenarios</summary>', '');
    for (const s of CLUSTER_SCENARIOS.filter((sc) => results.entry(sc, 'herald'))) {
        const entry = results.entry(s, 'herald');
        const cols = [{ head: `\`${s}\`` + (entry.error !== undefined ? notes.ref(entry) : ''), entry }];
        lines.push(...figuresTable(cols, [...ROWS_BY_KIND[kindOf(results, s)], ...auxRows(cols)]), '');
    }
    lines.push('</details>', '');
    return lines;
}

// The paragraph on what the cluster figures mean, generated from them.
function clusterArithmetic(c, meta) {
    const cores = isNum(meta.nproc) ? meta.nproc : undefined;
    const lines = [
        `**Overhead, not scaling.** On this ${cores ? `${fmtInt(cores)}-core ` : ''}machine both nodes, Redis and the load generator share the same cores: a second node brings no CPU of its own, so these runs measure what the Redis store costs per publish and per delivery, not what a cluster gains. What a cluster of N nodes, each on its own machine, could do follows from the costs measured here:`,
        '',
    ];
    if (c.redis) {
        lines.push(
            `- **Redis bounds the publish rate.** Every publish, whichever node takes it, runs the append script once in Redis, which executes commands on one thread; Redis also sends each event once to every node’s subscription. So the cluster publishes at most R = publishes/s ÷ Redis’s fraction of a core, with the same 256-byte payloads: in \`cluster-publish\`, R = ${fmtRate(c.redis.publishes)} ÷ ${fmtCores(c.redis.cores)} = **${fmtRate(c.redis.ceiling)} publishes/s**, whatever N. It was measured with two nodes following; each more node adds one Pub/Sub message per event to Redis’s work, so for N > 2 the ceiling is somewhat lower.`,
        );
    } else {
        lines.push('- **Redis bounds the publish rate**: R = publishes/s ÷ Redis’s fraction of a core in `cluster-publish`; not measured in this run (it needs `cluster-publish` with Redis’s CPU).');
    }
    if (c.heraldPublish) {
        const h = c.heraldPublish;
        let line =
            `- **herald’s side grows with the nodes.** In \`cluster-publish\` the two nodes spent ${fmtCores(h.cores)} cores on ${fmtRate(h.publishes)} publishes/s: H = ${fmtRate(h.publishes)} ÷ ${fmtCores(h.cores)} = ${fmtRate(h.perCore)} publishes/s per core of herald (measured beside the load generator, so on the low side). ` +
            'N nodes of C cores each publish at most min(N × C × H, R)';
        if (c.redis && cores) {
            const n = c.redis.ceiling / (cores * h.perCore);
            line += `; with C = ${fmtInt(cores)} (this machine), Redis becomes the bound from N = R ÷ (C × H) = ${fmtRate(c.redis.ceiling)} ÷ (${fmtInt(cores)} × ${fmtRate(h.perCore)}) ≈ ${fmtFixed(n, 1)} node${n === 1 ? '' : 's'}`;
        }
        lines.push(line + '.');
    }
    if (c.heraldFanout) {
        const f = c.heraldFanout;
        lines.push(
            `- **Fan-out grows with the nodes too.** Each node writes an event only to its own subscribers, and Redis’s work per event does not depend on how many subscribers there are. In \`cluster-fanout\` the nodes spent ${fmtCores(f.cores)} cores on ${fmtRate(f.deliveries)} deliveries/s (their publishes’ work included): ${fmtRate(f.perCore)} deliveries/s per core of herald, so N nodes of C cores deliver up to N × C × ${fmtRate(f.perCore)} deliveries/s, as long as the events themselves stay under R publishes/s.`,
        );
    }
    lines.push('');
    return lines;
}

// Rows for the processes measured beside the server (--aux-pid) that any column has.
function auxRows(columns) {
    const names = [];
    for (const col of columns) {
        for (const name of Object.keys(col.entry?.rec?.aux ?? {})) if (!names.includes(name)) names.push(name);
    }
    if (names.length === 0) return [];
    return [
        group('Beside the server'),
        ...names.flatMap((name) => [
            cpuRow(`${name} CPU`, undefined, (r) => (r.aux?.[name]?.cpu_s >= 0 ? r.aux[name].cpu_s : undefined)),
            num(`${name} RSS after connecting`, (r) => r.aux?.[name]?.rss_after_kb, fmtMiBFromKiB),
        ]),
    ];
}

// ---------------------------------------------------------------------------------------
// One million subscribers

export function computeMillion(results) {
    const out = {};
    for (const s of results.allServers()) {
        const src = ['idle-max', 'idle-10k'].find((sc) => isNum(results.ok(sc, s)?.bytes_per_subscriber));
        const row = { server: s };
        if (src) {
            const rec = results.ok(src, s);
            row.memSource = src;
            row.memSubscribers = rec.connected ?? rec.subscribers;
            row.bytesPerSub = rec.bytes_per_subscriber;
            row.userBytes = rec.bytes_per_subscriber * MILLION;
            row.kernelBytes = KERNEL_BYTES_PER_CONN * MILLION;
            row.totalBytes = row.userBytes + row.kernelBytes;
        }
        const paced = results.ok('paced', s);
        if (paced && isNum(paced.server_cpu_s) && isNum(paced.deliveries) && paced.deliveries > 0) {
            row.cpuS = paced.server_cpu_s;
            row.deliveries = paced.deliveries;
            row.secPerDelivery = paced.server_cpu_s / paced.deliveries;
            row.cores = MILLION * MILLION_EVENTS_PER_S * row.secPerDelivery;
        }
        const cps = ['idle-max', 'idle-10k'].find((sc) => isNum(results.ok(sc, s)?.connects_per_s) && results.ok(sc, s).connects_per_s > 0);
        if (cps) {
            row.connectSource = cps;
            row.connectsPerS = results.ok(cps, s).connects_per_s;
            row.connectTimeS = MILLION / row.connectsPerS;
        }
        if (row.memSource || row.cores !== undefined || row.connectSource) out[s] = row;
    }
    return out;
}

function fmtDuration(s) {
    if (!isNum(s)) return '—';
    if (s < 120) return `${fmtFixed(s, 0)} s`;
    if (s < 7200) return `${fmtFixed(s / 60, 1)} min`;
    return `${fmtFixed(s / 3600, 1)} h`;
}

function millionSection(results) {
    const m = computeMillion(results);
    const lines = ['## One million subscribers', ''];
    const measured = ['idle-1m', 'paced-1m'].filter((s) => results.has(s));
    if (measured.length) {
        lines.push(
            `Measured: ${measured.map((s) => `\`${s}\``).join(' and ')} ran (see ${measured.map((s) => `“${SCENARIOS.find((d) => d.id === s).title}”`).join(' and ')} above). The rest of this section is an extrapolation from the smaller scenarios, for comparison.`,
            '',
        );
        for (const s of measured) {
            for (const srv of results.serversOf(s)) {
                const r = results.ok(s, srv);
                if (!r) continue;
                const bits = [`${fmtInt(r.connected)} connected`];
                if (isNum(r.bytes_per_subscriber)) bits.push(`${fmtInt(r.bytes_per_subscriber)} B per subscriber (${fmtGiB(r.bytes_per_subscriber * (r.connected ?? 0))} in all)`);
                if (isNum(r.latency_ns?.p99)) bits.push(`latency p99 ${fmtLatency(r.latency_ns.p99)}`);
                if (isNum(r.deliveries_per_s) && r.deliveries_per_s > 0) bits.push(`${fmtRate(r.deliveries_per_s)} deliveries/s`);
                if (isNum(r.server_cpu_s)) bits.push(`server CPU ${fmtFixed(r.server_cpu_s, 1)} s`);
                lines.push(`- \`${s}\`, ${serverLabel(srv)}: ${bits.join(', ')}.`);
            }
        }
        lines.push('');
    } else {
        lines.push(
            'No run with a million subscribers is in these results: the figures below are extrapolations from the measured scenarios, not measurements. The `make bench-1m` target exists for machines without the open-file cap ([one-million.md](one-million.md) lists the kernel and limit settings it needs); when its results (scenarios `idle-1m`, `paced-1m`) are in the results file, they are shown here as measured.',
            '',
        );
    }
    const h = m.herald;
    lines.push(
        '**Assumption.** `KERNEL_BYTES_PER_CONN` = ' +
            `${fmtInt(KERNEL_BYTES_PER_CONN)} B: what the kernel keeps for one idle, established loopback TCP connection on the server side with empty buffers (socket, TCP control block, file and inode structures). It is an estimate, not a measurement, and a connection with queued data uses more. The server RSS figures do not include it.`,
        '',
    );
    if (h?.memSource) {
        lines.push(
            `**Memory** (herald, from \`${h.memSource}\`, ${fmtInt(h.memSubscribers)} subscribers): ` +
                `${fmtInt(h.bytesPerSub)} B × ${fmtInt(MILLION)} = ${fmtInt(h.userBytes)} B = ${fmtGiB(h.userBytes)} of user-space RSS; ` +
                `plus ${fmtInt(KERNEL_BYTES_PER_CONN)} B × ${fmtInt(MILLION)} = ${fmtGiB(h.kernelBytes)} in the kernel; ` +
                `${fmtGiB(h.totalBytes)} in all.`,
            '',
        );
    }
    if (h?.cores !== undefined) {
        lines.push(
            `**CPU** (herald, from \`paced\`): ${fmtFixed(h.cpuS, 2)} s of server CPU for ${fmtInt(h.deliveries)} deliveries = ` +
                `${fmtFixed(h.secPerDelivery * 1e6, 3)} µs per delivery. ${fmtInt(MILLION_EVENTS_PER_S)} event${MILLION_EVENTS_PER_S === 1 ? '' : 's'}/s to each of ${fmtInt(MILLION)} subscribers is ` +
                `${fmtInt(MILLION * MILLION_EVENTS_PER_S)} deliveries/s × ${fmtFixed(h.secPerDelivery * 1e6, 3)} µs = ${fmtFixed(h.cores, 1)} cores. ` +
                'The server CPU counts everything the server did while the scenario ran (the publishes too), measured with the harness on the same cores.',
            '',
        );
    }
    if (h?.connectSource) {
        lines.push(
            `**Connecting** (herald, from \`${h.connectSource}\`): ${fmtRate(h.connectsPerS)} connects/s, so ${fmtInt(MILLION)} subscribers would take ` +
                `${fmtInt(MILLION)} ÷ ${fmtRate(h.connectsPerS)} = ${fmtDuration(h.connectTimeS)} to connect at that rate.`,
            '',
        );
    }
    const servers = Object.keys(m);
    if (servers.length) {
        lines.push(
            ...table(
                ['server', 'bytes / subscriber (from)', 'user-space RSS', '+ kernel', '= memory', 'µs CPU / delivery', `cores for ${fmtInt(MILLION * MILLION_EVENTS_PER_S)} deliveries/s`, 'time to connect'],
                servers.map((s) => {
                    const r = m[s];
                    return [
                        serverLabel(s),
                        r.memSource ? `${fmtInt(r.bytesPerSub)} (\`${r.memSource}\`)` : '—',
                        r.memSource ? fmtGiB(r.userBytes) : '—',
                        r.memSource ? fmtGiB(r.kernelBytes) : '—',
                        r.memSource ? fmtGiB(r.totalBytes) : '—',
                        r.cores !== undefined ? fmtFixed(r.secPerDelivery * 1e6, 3) : '—',
                        r.cores !== undefined ? fmtFixed(r.cores, 1) : '—',
                        r.connectSource ? fmtDuration(r.connectTimeS) : '—',
                    ];
                }),
            ),
            '',
            'These figures assume the cost per subscriber and per delivery stays what it was at the measured size. They leave out the load generator, which would need a million sockets of its own (and more than one source address on loopback).',
            '',
        );
    } else {
        lines.push('No idle or paced result to extrapolate from.', '');
    }
    return lines;
}

// ---------------------------------------------------------------------------------------
// Commands

function commandsSection(results, meta) {
    const lines = ['## Commands', ''];
    lines.push(
        `Each scenario started the server with its server command, then ran the bench command against it${meta.make_command ? `; the whole run was \`${meta.make_command}\`` : ''}${isNum(meta.elapsed_s) ? `, ${fmtDuration(meta.elapsed_s)} in all` : ''}.`,
        '',
    );
    const configs = meta.configs ?? {};
    const versions = meta.versions ?? {};
    const servers = results.allServers();
    if (Object.keys(configs).length || Object.keys(versions).length) {
        for (const s of servers.concat(Object.keys(configs).filter((k) => !servers.includes(k)))) {
            const bits = [];
            if (versions[s]) bits.push(String(versions[s]));
            if (configs[s]) bits.push(`configuration ${code(configs[s])}`);
            if (bits.length) lines.push(`- ${serverLabel(s)}: ${bits.join('; ')}`);
        }
        lines.push('');
    }
    const order = orderedScenarios(results);
    for (const s of servers) {
        const scen = order.filter((sc) => results.entry(sc, s));
        lines.push('<details>', `<summary>${escapeXml(serverLabel(s))}: ${scen.length} scenario${scen.length === 1 ? '' : 's'}</summary>`, '');
        for (const sc of scen) {
            const e = results.entry(sc, s);
            lines.push(`**${sc}**`, '');
            const cmds = [];
            if (e.raw.server_command) cmds.push(`$ ${e.raw.server_command}`);
            if (e.raw.command) cmds.push(`$ ${e.raw.command}`);
            if (e.error !== undefined) cmds.push(`# did not run: ${e.error.replace(/\s+/g, ' ').trim()}`);
            if (cmds.length === 0) cmds.push('# no command recorded');
            lines.push('```sh', ...cmds, '```', '');
        }
        lines.push('</details>', '');
    }
    return lines;
}

function orderedScenarios(results) {
    const known = SCENARIOS.map((s) => s.id).filter((id) => results.has(id));
    const stores = STORE_SCENARIOS.filter((id) => results.has(id));
    const cluster = CLUSTER_SCENARIOS.filter((id) => results.has(id));
    const others = results
        .scenarios()
        .filter((id) => !known.includes(id) && !stores.includes(id) && !cluster.includes(id));
    return [...known, ...stores, ...cluster, ...others];
}

// ---------------------------------------------------------------------------------------
// Markdown page

function machineLines(meta) {
    const lines = [];
    const kv = (k, v) => lines.push(`- ${k}: ${v}`);
    kv('CPU', meta.cpu ? String(meta.cpu) : 'unknown');
    kv('Cores (nproc)', isNum(meta.nproc) ? fmtInt(meta.nproc) : 'unknown');
    kv('Memory', isNum(meta.mem_total_kib) ? fmtGiB(meta.mem_total_kib * 1024, 1) : 'unknown');
    kv('Kernel', meta.kernel ? String(meta.kernel) : 'unknown');
    kv('Open-file cap (hard limit per process)', isNum(meta.nofile_hard) ? fmtInt(meta.nofile_hard) : 'unknown');
    kv('Date', meta.date ? String(meta.date) : 'unknown');
    kv('Commit', meta.commit ? code(meta.commit) : 'unknown');
    const v = meta.versions ?? {};
    const vs = Object.keys(v).map((s) => `${serverLabel(s)} ${code(v[s])}`);
    if (vs.length) kv('Versions', vs.join(', '));
    return lines;
}

function machineShort(meta) {
    const bits = [];
    if (isNum(meta.nproc)) bits.push(`${fmtInt(meta.nproc)} core${meta.nproc === 1 ? '' : 's'}`);
    if (isNum(meta.mem_total_kib)) bits.push(fmtGiB(meta.mem_total_kib * 1024, 1));
    if (meta.cpu) bits.push(String(meta.cpu));
    if (meta.kernel) bits.push(`Linux ${meta.kernel}`);
    return bits.join(', ') || 'an unrecorded machine';
}

// Markdown link target from the folder of `fromFile` to `toFile`, with forward slashes.
export function linkPath(fromFile, toFile) {
    const r = relative(dirname(fromFile), toFile);
    return (r || '.').split(sep).join('/');
}

// How the numbers are made: fixed prose, true of every run.
const METHOD = [
    '## How `herald bench` measures',
    '',
    '`herald bench` is a subcommand of herald written on plain POSIX sockets and epoll (no HTTP library), so that as little as possible of the measured time is the client’s. It drives any SSE server: the subscribe URL, the publish URL and the publish body are templates (`--sub-url`, `--pub-url`, `--pub-body`), which is how the same code drives Nchan and Pushpin.',
    '',
    '- **Subscribers**: `--subscribers N` non-blocking connections on epoll threads, spread over `--processes` processes (each process may open only so many files) and, with `--source-ips K`, bound round-robin to `127.0.0.1..127.0.0.K` (one source address has about 28,000 ports towards one server port). At most `--connect-window` connections are being opened at once. Connect time runs from the first `connect()` to the last response head.',
    '- **Publishers**: `--publishers P` keep-alive connections, each sending a POST and reading its answer before the next (a closed loop); `--rate` paces them, 0 is as fast as they go. Each event’s data is `<publisher>-<seq> <publish_time_ns> <padding>`; an answer 2xx counts the event as acknowledged.',
    '- **Several nodes**: with several `--url`s (repeated or comma-separated), subscriber i connects to URL i % N and publisher p publishes to URL p % N; a subscriber still expects every acknowledged event of its topic, whichever node took it.',
    '- **Losses and duplicates**: every subscriber keeps one bit per (publisher, seq) it received. At the end, *missing* is the acknowledged events of its topic it never got, *duplicates* the events it got more than once: exact counts, summed over subscribers. Events that arrive unacknowledged or unparsable are counted apart. After publishing, the generator waits for events still in flight, until `--drain` seconds pass without a new one; deliveries per second are counted over the time up to the last event received, so a server that buffers is not credited for it.',
    '- **Latency**: receive time minus the time stamped in the data just before the POST was sent, both `CLOCK_MONOTONIC` (one clock for every process of the machine). It includes the POST, the server’s work and the delivery. Recorded in a log-linear histogram (32 buckets per power of two, about 3% resolution); percentiles are bucket upper bounds, `max` is exact.',
    '- **Throughput**: publishes/s is acknowledged publishes over the publishing time; deliveries/s is events received by all subscribers over the same time.',
    '- **Memory**: `--pid` names the server’s processes (nginx’s master and workers; Pushpin’s runner, condure, zurl, pushpin-proxy and pushpin-handler; herald’s one process). Their summed `VmRSS` is read before connecting and `--settle` seconds after the last response head; the difference over the subscribers is the memory per subscriber. It is user-space memory: the kernel’s socket structures, the same for every server, are not in it.',
    '- **CPU**: the server’s user + system time over the publishing window (from `/proc/PID/stat`), and the generator’s own, as seconds. `--aux-pid NAME=PID` measures another process the same way (Redis, in the cluster scenarios) and reports it apart.',
    '- **Churn**: `--churn R` opens R extra subscriber connections a second while events flow, holds each `--churn-hold` ms after its response head and closes it; it reports the connects per second achieved and the time from `connect()` to the response head.',
    '',
    'Every server is started fresh for every scenario, and the three run one after another for each scenario, so that a slower or busier minute of the machine falls on all of them alike.',
    '',
];

// ctx: { command, peersReadme (link), svgLink }
export function renderMarkdown(results, meta, ctx) {
    const notes = new Notes();
    const L = [];
    L.push(
        `<!-- Generated by bench/report.mjs from the results of \`make bench\`; do not edit by hand. Regenerate with: ${ctx.command} -->`,
        '',
        '# Benchmarks',
        '',
    );
    if (meta.quick) {
        L.push(
            '> **Quick run (`QUICK=1`).** The figures on this page come from the shorter version of `make bench`: shorter publishing windows, so they vary more from run to run than a full run’s. Do not compare them with a full run’s.',
            '',
        );
    }
    L.push(
        '`make bench` installs nginx with `libnginx-mod-nchan` and `pushpin` from Debian’s packages, ' +
            `starts each on loopback with a configuration fair to it (see [bench/peers/README.md](${ctx.peersReadme})), ` +
            'and runs the same scenarios against herald and each peer, one server after the other, in the same run, with the load generator `herald bench`. ' +
            'It writes the results to `build/bench/results.jsonl` and `build/bench/meta.json`, from which this page is generated.',
        '',
        'These are measurements, not tests: no figure here fails a build. The goals below are checked against this run’s data. `QUICK=1 make bench` runs a shorter version' +
            (meta.quick ? '; this page comes from one.' : '; this page comes from a full run.'),
        '',
        '“—” means no figure: the scenario did not run for that server (a footnote gives the reason when the run failed) or the figure does not apply.',
        '',
        '## Machine',
        '',
        ...machineLines(meta),
        '',
        isNum(meta.nproc) && meta.nproc <= 2
            ? `The load generator runs on the same machine and the same cores as the server: on this ${fmtInt(meta.nproc)}-core machine it competes with the server for CPU. Every server suffers it equally.`
            : 'The load generator runs on the same machine and the same cores as the server, and takes CPU from it. Every server suffers it equally.',
        '',
        '## Summary',
        '',
        'Ratios are herald’s figure divided by the peer’s. Where lower is better (memory, latency), a ratio below 1 favours herald; elsewhere a ratio above 1 does.',
        '',
    );
    const sum = renderSummaryTable(results, notes, false);
    L.push(...sum.lines, '');
    if (sum.dagger) L.push(DAGGER_NOTE, '');
    if (results.has('topics')) {
        L.push(
            'In `topics` the publish rate is fixed, so a server that keeps up delivers at that rate: there the deliveries/s ratio shows whether a server kept up, not how far it could go.',
            '',
        );
    }

    L.push(
        `![Latency percentiles in the paced scenario, and memory per idle subscriber at 1,000, 10,000 and the maximum, per server](${ctx.svgLink})`,
        '',
    );

    L.push('## Goals', '');
    const goals = computeGoals(results);
    L.push(
        ...table(
            ['goal', 'measured', 'verdict'],
            goals.map((g) => [escapeCell(g.goal), escapeCell(g.measured), g.verdict === MET ? '**met**' : g.verdict === NOT_MET ? '**not met**' : g.verdict]),
            ['---', '---', '---'],
        ),
        '',
        '“No loss” means herald’s missing + duplicates is 0. For the flat-memory goal, the 1,000-subscriber figure is shown but not judged: it includes fixed per-process costs spread over fewer subscribers, so it is expected to be higher.',
        '',
    );

    const order = orderedScenarios(results);
    const knownIds = SCENARIOS.map((s) => s.id);
    for (const sc of order.filter((s) => knownIds.includes(s))) {
        L.push(...scenarioSection(results, meta, sc, notes));
    }
    L.push(...storeSection(results, notes));
    L.push(...clusterSection(results, meta, notes));
    const others = order.filter(
        (s) => !knownIds.includes(s) && !STORE_SCENARIOS.includes(s) && !CLUSTER_SCENARIOS.includes(s),
    );
    if (others.length) {
        L.push('## Other scenarios', '', 'Scenarios this page has no description for, with their figures as recorded.', '');
        for (const sc of others) L.push(...scenarioSection(results, meta, sc, notes, '###'));
    }
    L.push(...millionSection(results));
    L.push(...METHOD);
    L.push(...commandsSection(results, meta));
    const defs = notes.render();
    if (defs.length) L.push(...defs, '');
    return L.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n*$/, '\n');
}

// ---------------------------------------------------------------------------------------
// README block

export function renderReadmeBlock(results, meta, ctx) {
    const notes = new Notes();
    const sum = renderSummaryTable(results, notes, true);
    const L = [...sum.lines, ''];
    if (sum.dagger) L.push(DAGGER_NOTE, '');
    const date = meta.date ? String(meta.date).slice(0, 10) : 'an unrecorded date';
    L.push(
        `Measured by \`make bench\` on ${machineShort(meta)}, ${date}` +
            (meta.commit ? `, commit \`${meta.commit}\`` : '') +
            (meta.quick ? ' — **a quick run (`QUICK=1`)**' : ', full run') +
            `. Ratios are herald ÷ peer. Goals, every figure and the commands: [${ctx.docLink}](${ctx.docLink}).`,
    );
    const defs = notes.render();
    if (defs.length) L.push('', ...defs);
    return L.join('\n');
}

// The README text with everything between the markers replaced by block; found is false
// (and text unchanged) when the markers are not both there, in that order.
export function replaceReadmeBlock(text, block) {
    const b = text.indexOf(README_BEGIN);
    if (b < 0) return { text, found: false };
    const e = text.indexOf(README_END, b + README_BEGIN.length);
    if (e < 0) return { text, found: false };
    const head = text.slice(0, b + README_BEGIN.length);
    const tail = text.slice(e);
    return { text: `${head}\n${block}\n${tail}`, found: true };
}

// ---------------------------------------------------------------------------------------
// SVG

const SVG_W = 900;
const SVG_H = 420;
const PLOT_TOP = 64;
const PLOT_BOTTOM = 330;

export const LATENCY_PERCENTILES = [
    ['p50', 'p50'],
    ['p90', 'p90'],
    ['p99', 'p99'],
    ['p999', 'p99.9'],
];
export const IDLE_GROUPS = [
    ['idle-1k', '1k'],
    ['idle-10k', '10k'],
    ['idle-max', 'max'],
];

function textWidth(s, size) {
    return String(s).length * size * 0.56;
}

function niceStep(raw) {
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
}

function fmtTick(v) {
    return Number.isInteger(v) ? fmtInt(v) : fmtFixed(v, 1);
}

// groups: [{ label, values: { server: number|undefined } }]; scale: { y(v), ticks: [{v, label, major}] }
function barPanel(o) {
    const { x0, x1, title, subtitle, groups, servers, scale, idPrefix, fmtValue, unitLabel } = o;
    const out = [];
    out.push(`<text x="${x0}" y="26" font-size="15" font-weight="600" fill="#1f2328">${escapeXml(title)}</text>`);
    out.push(`<text x="${x0}" y="44" font-size="11" fill="#57606a">${escapeXml(subtitle)}</text>`);
    if (unitLabel) {
        out.push(`<text x="${x0 - 8}" y="${PLOT_TOP - 8}" font-size="10" fill="#57606a" text-anchor="end">${escapeXml(unitLabel)}</text>`);
    }
    if (!scale) {
        out.push(`<text x="${(x0 + x1) / 2}" y="${(PLOT_TOP + PLOT_BOTTOM) / 2}" font-size="12" fill="#57606a" text-anchor="middle">no data</text>`);
    } else {
        for (const t of scale.ticks) {
            const y = scale.y(t.v).toFixed(1);
            out.push(
                `<line x1="${x0}" x2="${x1}" y1="${y}" y2="${y}" stroke="${t.major ? '#d0d7de' : '#eaeef2'}" stroke-width="1"${t.major ? '' : ' stroke-dasharray="2 3"'}/>`,
            );
            if (t.label) {
                out.push(`<text x="${x0 - 6}" y="${(Number(y) + 3.5).toFixed(1)}" font-size="10" fill="#57606a" text-anchor="end">${escapeXml(t.label)}</text>`);
            }
        }
    }
    out.push(`<line x1="${x0}" x2="${x1}" y1="${PLOT_BOTTOM}" y2="${PLOT_BOTTOM}" stroke="#8c959f" stroke-width="1"/>`);
    const gw = (x1 - x0) / groups.length;
    const gap = 3;
    const bw = Math.min(30, (gw * 0.8 - gap * (servers.length - 1)) / servers.length);
    const inner = bw * servers.length + gap * (servers.length - 1);
    groups.forEach((g, gi) => {
        const gx = x0 + gi * gw;
        out.push(`<text x="${(gx + gw / 2).toFixed(1)}" y="${PLOT_BOTTOM + 16}" font-size="11" fill="#1f2328" text-anchor="middle">${escapeXml(g.label)}</text>`);
        servers.forEach((s, si) => {
            const bx = gx + (gw - inner) / 2 + si * (bw + gap);
            const cx = (bx + bw / 2).toFixed(1);
            const v = g.values[s];
            if (!scale || !isNum(v) || (scale.log && v <= 0)) {
                out.push(`<text x="${cx}" y="${PLOT_BOTTOM - 4}" font-size="8" fill="#8c959f" text-anchor="middle">n/a</text>`);
                return;
            }
            const y = Math.min(PLOT_BOTTOM - 1, scale.y(v));
            const h = PLOT_BOTTOM - y;
            out.push(
                `<rect x="${bx.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${SERVER_COLOURS[s] ?? '#afb8c1'}" data-bar="${escapeXml(`${idPrefix}-${g.key}-${s}`)}" data-value="${v}"><title>${escapeXml(`${serverLabel(s)}, ${g.label}: ${fmtValue(v)}`)}</title></rect>`,
            );
            out.push(...barLabel(fmtValue(v), Number(cx), y, bw, gap, s));
        });
    });
    return out;
}

// A value label for a bar whose top is at y: horizontal above it when it fits the bar's
// width, else vertical inside the bar when the bar is tall enough, else vertical above it
// when there is room below the plot's top; else none.
function barLabel(text, cx, y, bw, gap, server) {
    const t = escapeXml(text);
    const size = 9;
    const w = textWidth(text, size);
    if (w <= bw + gap) {
        return [`<text x="${cx.toFixed(1)}" y="${(y - 3).toFixed(1)}" font-size="${size}" fill="#1f2328" text-anchor="middle">${t}</text>`];
    }
    const h = PLOT_BOTTOM - y;
    const fill = server === 'herald' ? '#ffffff' : '#1f2328';
    if (h >= w + 8) {
        return [
            `<text transform="translate(${cx.toFixed(1)} ${(y + 4).toFixed(1)}) rotate(-90)" dy="0.35em" font-size="${size}" fill="${fill}" text-anchor="end">${t}</text>`,
        ];
    }
    if (y - PLOT_TOP + 14 >= w + 4) {
        return [
            `<text transform="translate(${cx.toFixed(1)} ${(y - 3).toFixed(1)}) rotate(-90)" dy="0.35em" font-size="${size}" fill="#1f2328" text-anchor="start">${t}</text>`,
        ];
    }
    return [];
}

function logScale(values) {
    const vs = values.filter((v) => isNum(v) && v > 0);
    if (!vs.length) return undefined;
    const lo = 10 ** Math.floor(Math.log10(Math.min(...vs)));
    let hi = 10 ** Math.ceil(Math.log10(Math.max(...vs)));
    if (hi <= lo) hi = lo * 10;
    const span = Math.log10(hi) - Math.log10(lo);
    const y = (v) => PLOT_BOTTOM - ((Math.log10(v) - Math.log10(lo)) / span) * (PLOT_BOTTOM - PLOT_TOP);
    const ticks = [];
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
        ticks.push({ v: d, label: fmtLatency(d), major: true });
        if (d < hi) {
            for (const m of [2, 5]) ticks.push({ v: d * m, label: span <= 2 ? fmtLatency(d * m) : '', major: false });
        }
    }
    return { y, ticks, log: true };
}

function linearScale(values) {
    const vs = values.filter(isNum);
    if (!vs.length) return undefined;
    const max = Math.max(...vs, 0);
    const step = max > 0 ? niceStep(max / 5) : 1;
    const top = max > 0 ? Math.ceil(max / step) * step : 1;
    const y = (v) => PLOT_BOTTOM - (Math.max(0, v) / top) * (PLOT_BOTTOM - PLOT_TOP);
    const ticks = [];
    for (let v = 0; v <= top + step / 1000; v += step) ticks.push({ v, label: fmtTick(v), major: true });
    return { y, ticks, log: false };
}

// The data behind the chart: which bars there are and their values.
export function chartData(results) {
    const servers = SERVERS;
    const latency = LATENCY_PERCENTILES.map(([key, label]) => ({
        key,
        label,
        values: Object.fromEntries(servers.map((s) => [s, results.ok('paced', s)?.latency_ns?.[key]])),
    }));
    const memory = IDLE_GROUPS.map(([sc, label]) => {
        const n = results.ok(sc, 'herald')?.connected;
        return {
            key: sc,
            label: sc === 'idle-max' && isNum(n) ? `max (${fmtInt(n)})` : label,
            values: Object.fromEntries(servers.map((s) => [s, results.ok(sc, s)?.bytes_per_subscriber])),
        };
    });
    const count = (gs) => gs.reduce((n, g) => n + servers.filter((s) => isNum(g.values[s]) && g.values[s] > 0).length, 0);
    return { servers, latency, memory, bars: count(latency) + memory.reduce((n, g) => n + servers.filter((s) => isNum(g.values[s])).length, 0) };
}

export function renderSvg(results, meta) {
    const d = chartData(results);
    const pacedRec = results.ok('paced', 'herald') ?? SERVERS.map((s) => results.ok('paced', s)).find(Boolean);
    const out = [];
    out.push(
        `<svg xmlns="http://www.w3.org/2000/svg" width="${SVG_W}" height="${SVG_H}" viewBox="0 0 ${SVG_W} ${SVG_H}" font-family="system-ui, sans-serif" role="img" aria-labelledby="bench-title bench-desc">`,
        '<title id="bench-title">herald benchmarks: latency in the paced scenario, memory per idle subscriber</title>',
        `<desc id="bench-desc">Generated by bench/report.mjs from make bench results${meta.date ? ` of ${escapeXml(meta.date)}` : ''}. Left: end-to-end latency percentiles, log scale. Right: server RSS growth per idle subscriber in bytes.</desc>`,
        `<rect x="0" y="0" width="${SVG_W}" height="${SVG_H}" fill="#ffffff"/>`,
    );
    const pacedSub =
        'paced' +
        (pacedRec && isNum(pacedRec.subscribers) ? `, ${fmtInt(pacedRec.subscribers)} subscribers` : '') +
        (pacedRec && isNum(pacedRec.rate) && pacedRec.rate > 0 ? `, ${fmtRate(pacedRec.rate)} events/s` : '') +
        '; log scale, lower is better';
    out.push(
        ...barPanel({
            x0: 70,
            x1: 430,
            title: 'End-to-end latency',
            subtitle: pacedSub,
            groups: d.latency,
            servers: d.servers,
            scale: logScale(d.latency.flatMap((g) => Object.values(g.values))),
            idPrefix: 'latency',
            fmtValue: fmtLatency,
        }),
    );
    out.push(
        ...barPanel({
            x0: 530,
            x1: 880,
            title: 'Memory per idle subscriber',
            subtitle: 'server RSS growth ÷ subscribers, bytes; lower is better',
            groups: d.memory,
            servers: d.servers,
            scale: linearScale(d.memory.flatMap((g) => Object.values(g.values))),
            idPrefix: 'memory',
            fmtValue: fmtInt,
            unitLabel: 'B',
        }),
    );
    // Legend, centred.
    const items = d.servers.map((s) => ({ s, label: serverLabel(s), w: 16 + textWidth(serverLabel(s), 12) + 24 }));
    let lx = (SVG_W - items.reduce((n, i) => n + i.w, 0)) / 2;
    for (const it of items) {
        out.push(`<rect x="${lx.toFixed(1)}" y="370" width="12" height="12" rx="2" fill="${SERVER_COLOURS[it.s] ?? '#afb8c1'}"/>`);
        out.push(`<text x="${(lx + 17).toFixed(1)}" y="380" font-size="12" fill="#1f2328">${escapeXml(it.label)}</text>`);
        lx += it.w;
    }
    const foot = [meta.date ? String(meta.date).slice(0, 10) : undefined, meta.commit ? `commit ${meta.commit}` : undefined, isNum(meta.nproc) ? `${meta.nproc} cores` : undefined, meta.quick ? 'QUICK=1 (quick run)' : undefined]
        .filter(Boolean)
        .join(' · ');
    out.push(`<text x="${SVG_W - 10}" y="${SVG_H - 10}" font-size="10" fill="#8c959f" text-anchor="end">${escapeXml(`make bench${foot ? ', ' + foot : ''}`)}</text>`);
    out.push('</svg>');
    return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// CLI

export function parseArgs(argv) {
    const opts = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '-h' || a === '--help') return { help: true };
        const m = /^--(results|meta|out|svg|readme)(?:=(.*))?$/.exec(a);
        if (!m) throw new UsageError(`unknown argument '${a}'`);
        let v = m[2];
        if (v === undefined) {
            if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
            v = argv[++i];
        }
        opts[m[1]] = v;
    }
    return opts;
}

class UsageError extends Error {}

const USAGE = `usage: node bench/report.mjs [--results FILE] [--meta FILE] [--out FILE] [--svg FILE] [--readme FILE]
defaults (relative to the repository root): ${Object.entries(DEFAULTS)
    .map(([k, v]) => `--${k} ${v}`)
    .join(' ')}`;

// The regeneration command as written into the page: only the options that differ from
// the defaults, with paths relative to the repository root when they are inside it.
function regenCommand(paths) {
    const args = [];
    for (const k of Object.keys(DEFAULTS)) {
        const def = resolve(REPO_ROOT, DEFAULTS[k]);
        if (paths[k] === def) continue;
        const r = relative(REPO_ROOT, paths[k]);
        const shown = r && !r.startsWith('..') && !isAbsolute(r) ? r.split(sep).join('/') : paths[k];
        args.push(`--${k} ${shown}`);
    }
    return ['node bench/report.mjs', ...args].join(' ');
}

function readInput(path, what) {
    if (!existsSync(path)) throw new InputError(`${what} file not found: ${path} (run \`make bench\` first)`);
    try {
        return readFileSync(path, 'utf8');
    } catch (e) {
        throw new InputError(`cannot read ${what} file ${path}: ${e.message}`);
    }
}

class InputError extends Error {}

function writeIfChanged(path, text) {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path) && readFileSync(path, 'utf8') === text) return false;
    writeFileSync(path, text);
    return true;
}

export function main(argv, io = { out: process.stdout, err: process.stderr }) {
    const say = (s) => io.out.write(s + '\n');
    const warn = (s) => io.err.write(`bench/report.mjs: ${s}\n`);
    let opts;
    try {
        opts = parseArgs(argv);
    } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        warn(e.message);
        io.err.write(USAGE + '\n');
        return 2;
    }
    if (opts.help) {
        say(USAGE);
        return 0;
    }
    const paths = {};
    for (const k of Object.keys(DEFAULTS)) {
        paths[k] = opts[k] !== undefined ? resolve(process.cwd(), opts[k]) : resolve(REPO_ROOT, DEFAULTS[k]);
    }
    let results, meta;
    try {
        const records = parseResults(readInput(paths.results, 'results'), paths.results);
        if (records.length === 0) throw new InputError(`no results in ${paths.results}`);
        results = new Results(records);
        const metaText = readInput(paths.meta, 'meta');
        try {
            meta = JSON.parse(metaText);
        } catch (e) {
            throw new InputError(`${paths.meta}: not JSON (${e.message})`);
        }
        if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
            throw new InputError(`${paths.meta}: not a JSON object`);
        }
    } catch (e) {
        warn(e.message);
        return 1;
    }

    const md = renderMarkdown(results, meta, {
        command: regenCommand(paths),
        peersReadme: linkPath(paths.out, resolve(REPO_ROOT, 'bench/peers/README.md')),
        svgLink: linkPath(paths.out, paths.svg),
    });
    const svg = renderSvg(results, meta);
    const wrote = [];
    if (writeIfChanged(paths.out, md)) wrote.push(paths.out);
    if (writeIfChanged(paths.svg, svg)) wrote.push(paths.svg);

    if (!existsSync(paths.readme)) {
        warn(`${paths.readme} not found; README table not updated`);
    } else {
        const readme = readFileSync(paths.readme, 'utf8');
        const block = renderReadmeBlock(results, meta, { docLink: linkPath(paths.readme, paths.out) });
        const { text, found } = replaceReadmeBlock(readme, block);
        if (!found) {
            warn(`${paths.readme} has no '${README_BEGIN}' ... '${README_END}' markers; README left alone`);
        } else if (writeIfChanged(paths.readme, text)) {
            wrote.push(paths.readme);
        }
    }
    say(wrote.length ? `wrote ${wrote.map((p) => relative(process.cwd(), p) || p).join(', ')}` : 'everything already up to date');
    return 0;
}

function runDirectly() {
    if (!process.argv[1]) return false;
    try {
        return pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
    } catch {
        return false;
    }
}

if (runDirectly()) {
    process.exitCode = main(process.argv.slice(2));
}
