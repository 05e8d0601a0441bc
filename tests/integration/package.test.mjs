// The Debian package as an operator gets it: `dpkg -i` of the .deb that `make package`
// built, its files, owners and conffile, /usr/bin/herald run with the packaged config as the
// herald user (one subscribe, one publish), the unit through `systemd-analyze`, a
// reinstall over itself, then `dpkg --purge` leaving nothing behind.
//
// Needs root, or sudo without a password: it installs a package and makes a system user.
// It installs and purges the package on this machine, so never run it where herald is
// deployed (a herald package found installed is purged first, its state with it).
// HERALD_DEB names the package (tests/CMakeLists.txt points it at build/release).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { publishOk, subscribe, waitData } from './lib/util.mjs';

const T = { timeout: 120000 };
const repo = new URL('../..', import.meta.url).pathname;
const DEB = process.env.HERALD_DEB || '';
const VERSION = process.env.HERALD_VERSION || '';
const UNIT = '/lib/systemd/system/herald.service';
const CONFIG = '/etc/herald/herald.toml';
const STATE = '/var/lib/herald';
const WANTS = '/etc/systemd/system/multi-user.target.wants/herald.service';
// What the package installs, each checked after install and after purge.
const FILES = ['/usr/bin/herald', CONFIG, UNIT, '/usr/share/man/man1/herald.1.gz',
    '/usr/share/doc/herald/copyright', '/usr/share/doc/herald/changelog.gz'];

// Commands that need root run directly as root, else through `sudo -n`.
let sudo = [];
function asRoot(cmd, args, opts = {}) {
    const argv = [...sudo, cmd, ...args];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 60000, ...opts });
    return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '', error: r.error };
}

function run(cmd, args) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000 });
    return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
}

// dpkg with its lock: when apt or another dpkg holds it, wait (up to two minutes) and retry.
async function dpkg(args) {
    const deadline = Date.now() + 120000;
    for (;;) {
        const r = asRoot('dpkg', args);
        if (r.code === 0 || !/lock/i.test(r.out) || Date.now() > deadline) return r;
        await new Promise((resolve) => setTimeout(resolve, 1000));
    }
}

function statusOf(pkg) {
    const r = run('dpkg-query', ['-W', '-f=${Status}', pkg]);
    return r.code === 0 ? r.stdout.trim() : 'not known';
}
// Installed, or unpacked, half-configured or with its conffiles left: anything but gone.
const present = (pkg) => !['not known', 'unknown ok not-installed'].includes(statusOf(pkg));

const exists = (p) => { try { fs.lstatSync(p); return true; } catch { return false; } };
const passwd = (name) => run('getent', ['passwd', name]);
const group = (name) => run('getent', ['group', name]);

// Only one run of this test at a time on the machine (two build trees, two shells): an
// flock held by a child process for as long as this test runs, dropped if it dies.
let lockHolder;
async function takeMachineLock() {
    lockHolder = spawn('flock', ['/tmp/herald-package-test.lock', 'sh', '-c', 'echo locked; exec cat'],
        { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('another run of the package test held its lock for 5 minutes')), 300000);
        lockHolder.stdout.once('data', () => { clearTimeout(timer); resolve(); });
        lockHolder.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
}

before(async () => {
    if (process.getuid() !== 0) {
        const probe = spawnSync('sudo', ['-n', 'true']);
        if (probe.status !== 0) {
            throw new Error('integration/package needs root (dpkg -i, a system user): run it as root ' +
                'or with sudo that asks no password');
        }
        sudo = ['sudo', '-n'];
    }
    assert.ok(DEB, 'HERALD_DEB is not set: run this suite through ctest (tests/CMakeLists.txt sets it)');
    assert.ok(fs.existsSync(DEB), `no package at ${DEB}: run \`make package\` first (\`make test\` does)`);
    // A package older than its sources would test yesterday's files.
    const debTime = fs.statSync(DEB).mtimeMs;
    for (const src of ['packaging/herald.service', 'packaging/herald.toml', 'packaging/debian/postinst',
        'packaging/debian/prerm', 'packaging/debian/postrm', 'cmake/package.cmake', 'cmake/manpage.cmake']) {
        assert.ok(fs.statSync(path.join(repo, src)).mtimeMs <= debTime,
            `${DEB} is older than ${src}: run \`make package\` again`);
    }
    await takeMachineLock();
    // A herald left installed (a run that died, an older version) goes first.
    if (present('herald')) {
        const r = await dpkg(['--purge', 'herald']);
        assert.equal(r.code, 0, `purging the herald package found installed failed:\n${r.out}`);
    }
});

after(async () => {
    // Whatever failed, leave no herald installed.
    if (lockHolder && present('herald')) {
        await dpkg(['--purge', 'herald']);
    }
    lockHolder?.stdin.end();
});

test('dpkg -i installs the package: files, owners, conffile, user, enabled for boot', T, async () => {
    const r = await dpkg(['-i', DEB]);
    assert.equal(r.code, 0, `dpkg -i ${DEB} failed:\n${r.out}`);
    assert.equal(statusOf('herald'), 'install ok installed');

    for (const f of FILES) assert.ok(exists(f), `${f} is not installed`);
    assert.match(run('file', ['-L', '/usr/bin/herald']).out, /ELF .*, stripped/, '/usr/bin/herald is not stripped');
    const version = run('/usr/bin/herald', ['--version']);
    assert.equal(version.code, 0, version.out);
    if (VERSION) assert.equal(version.stdout.trim(), VERSION);

    // The installed config and unit are the ones in packaging/, byte for byte.
    assert.equal(fs.readFileSync(CONFIG, 'utf8'), fs.readFileSync(path.join(repo, 'packaging/herald.toml'), 'utf8'));
    assert.equal(fs.readFileSync(UNIT, 'utf8'), fs.readFileSync(path.join(repo, 'packaging/herald.service'), 'utf8'));
    const conffiles = run('dpkg-query', ['-W', '-f=${Conffiles}', 'herald']).stdout;
    assert.match(conffiles, /^ \/etc\/herald\/herald\.toml [0-9a-f]{32}$/m, `conffiles: ${conffiles}`);

    // The herald system user and group: no login, home the state directory.
    const user = passwd('herald');
    assert.equal(user.code, 0, 'no herald user after install');
    const [, , uid, gid, , home, shell] = user.stdout.trim().split(':');
    assert.ok(Number(uid) < 1000, `herald's uid ${uid} is not a system uid`);
    assert.equal(home, STATE);
    assert.equal(shell, '/usr/sbin/nologin');
    assert.equal(group('herald').stdout.split(':')[2], gid, 'herald\'s primary group is not the group herald');

    // The config may hold secrets: root:herald 0640. The state directory is herald's.
    const conf = fs.statSync(CONFIG);
    assert.deepEqual([conf.uid, conf.gid, conf.mode & 0o777], [0, Number(gid), 0o640], `${CONFIG} owner/mode`);
    const state = fs.statSync(STATE);
    assert.deepEqual([state.uid, state.gid, state.mode & 0o777], [Number(uid), Number(gid), 0o750], `${STATE} owner/mode`);

    // Enabled for the next boot, not started (nothing listens on the packaged port here).
    assert.equal(fs.readlinkSync(WANTS), UNIT);

    // The man page covers every subcommand `herald --help` lists.
    const man = zlib.gunzipSync(fs.readFileSync('/usr/share/man/man1/herald.1.gz')).toString();
    assert.match(man, /^\.TH HERALD 1 /);
    for (const sub of ['serve', 'pub', 'sub', 'bench', 'demo']) {
        assert.ok(man.includes(`.SS "herald ${sub}"`), `herald(1) has no section for ${sub}`);
    }
});

test('the packaged config names every key herald has', T, () => {
    const source = fs.readFileSync(path.join(repo, 'src/config/config.cpp'), 'utf8');
    const keys = [...source.matchAll(/Setting\{\s*"([a-z_.]+)"/g)].map((m) => m[1]);
    assert.ok(keys.length > 30, `found only ${keys.length} keys in config.cpp`);
    keys.push('auth.tokens');
    // Each [section] of the file, with the names set or shown commented in it.
    const sections = new Map();
    let current = '';
    for (const line of fs.readFileSync(CONFIG, 'utf8').split('\n')) {
        const table = /^#?\s*\[\[?([a-z.]+)\]\]?/.exec(line);
        if (table) {
            current = table[1] === 'auth.tokens' ? 'auth' : table[1];
            if (table[1] === 'auth.tokens') sections.get('auth').add('tokens');
            if (!sections.has(current)) sections.set(current, new Set());
            continue;
        }
        const key = /^#?\s*([a-z_]+)\s*=/.exec(line);
        if (key && current) sections.get(current).add(key[1]);
    }
    const missing = keys.filter((k) => {
        const [section, name] = k.split('.');
        return !sections.get(section)?.has(name);
    });
    assert.deepEqual(missing, [], `keys missing from ${CONFIG}`);
});

test('/usr/bin/herald serves with the packaged config, as the herald user', T, async () => {
    // The packaged host and store; only the port is chosen here (0: a free one).
    const argv = [...sudo, 'setpriv', '--reuid=herald', '--regid=herald', '--init-groups', '--',
        '/usr/bin/herald', 'serve', '--config', CONFIG, '--port', '0', '--threads', '2'];
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let out = '';
    const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig)));
    try {
        const port = await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`herald did not start:\n${out}`)), 15000);
            const check = () => {
                const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
                if (m) { clearTimeout(timer); resolve(Number(m[1])); }
            };
            proc.stdout.on('data', (d) => { out += d; check(); });
            proc.stderr.on('data', (d) => { out += d; check(); });
            exited.then((code) => { clearTimeout(timer); reject(new Error(`herald exited (${code}):\n${out}`)); });
        });
        assert.match(out, /store sqlite:\/var\/lib\/herald\/herald\.db/, out);
        const base = `http://127.0.0.1:${port}`;
        const s = await subscribe(base, ['package-test']);
        try {
            await publishOk(base, { topic: 'package-test', data: 'installed' });
            await waitData(s, 'installed');
        } finally {
            s.close();
        }
    } finally {
        proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `herald did not exit 0 on SIGTERM:\n${out}`);
    // It ran as herald: the SQLite file it made is herald's.
    const db = fs.statSync(`${STATE}/herald.db`);
    assert.equal(db.uid, Number(passwd('herald').stdout.split(':')[2]), 'herald.db is not owned by herald');
});

test('systemd-analyze verify accepts the unit; its exposure stays low', T, (t) => {
    if (run('systemd-analyze', ['--version']).code !== 0) {
        t.skip('no systemd-analyze on this machine (install systemd for this check)');
        return;
    }
    const verify = run('systemd-analyze', ['verify', UNIT]);
    assert.equal(verify.code, 0, `systemd-analyze verify ${UNIT}:\n${verify.out}`);
    assert.equal(verify.out.trim(), '', `systemd-analyze verify ${UNIT} warns:\n${verify.out}`);
    // --offline (systemd 252) scores the file without a running systemd; 2.0 and below reads
    // "OK", the unit scores 1.4.
    const security = run('systemd-analyze', ['security', '--offline=true', '--threshold=20', '--no-pager', UNIT]);
    assert.equal(security.code, 0, `systemd-analyze security scores ${UNIT} above 2.0:\n${security.out}`);
});

test('dpkg -i again over the installed package keeps the config and the user', T, async () => {
    const uid = passwd('herald').stdout.split(':')[2];
    const r = await dpkg(['-i', DEB]);
    assert.equal(r.code, 0, `reinstalling failed:\n${r.out}`);
    assert.equal(passwd('herald').stdout.split(':')[2], uid);
    const conf = fs.statSync(CONFIG);
    assert.deepEqual([conf.gid, conf.mode & 0o777], [Number(group('herald').stdout.split(':')[2]), 0o640]);
    assert.ok(exists(`${STATE}/herald.db`), 'the state was lost on reinstall');
});

test('dpkg --purge leaves nothing behind', T, async () => {
    const r = await dpkg(['--purge', 'herald']);
    assert.equal(r.code, 0, `dpkg --purge herald failed:\n${r.out}`);
    assert.ok(!present('herald'), `dpkg still knows herald: ${statusOf('herald')}`);
    const left = [...FILES, '/etc/herald', STATE, '/usr/share/doc/herald', WANTS].filter(exists);
    assert.deepEqual(left, [], 'left after purge');
    assert.notEqual(passwd('herald').code, 0, 'the herald user is left after purge');
    assert.notEqual(group('herald').code, 0, 'the herald group is left after purge');
    const overrides = asRoot('dpkg-statoverride', ['--list', CONFIG]);
    assert.notEqual(overrides.code, 0, `a stat override is left: ${overrides.out}`);
});
