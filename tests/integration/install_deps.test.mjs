// scripts/install-deps.sh's profiles, through --list (which installs nothing): `run` holds
// none of the test tools, each profile holds the one before it, and the release preset
// (`make build`, `make run`, `make package`) configures without GoogleTest or Benchmark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const T = { timeout: 120000 };
const repo = new URL('../..', import.meta.url).pathname;
const script = path.join(repo, 'scripts/install-deps.sh');

function deps(...args) {
    const r = spawnSync('bash', [script, ...args], { encoding: 'utf8' });
    return { code: r.status, list: r.stdout.split('\n').filter(Boolean), err: r.stderr };
}

function listOf(...args) {
    const r = deps(...args, '--list');
    assert.equal(r.code, 0, `install-deps.sh ${args.join(' ')} --list: ${r.err}`);
    assert.ok(r.list.length > 0, `install-deps.sh ${args.join(' ')} --list printed nothing`);
    return r.list;
}

// What only tests, benchmarks or packaging use: none of it belongs in `run`.
const testTools = ['libgtest-dev', 'libgmock-dev', 'libbenchmark-dev', 'googletest', 'nodejs', 'npm',
    'chromium', 'fonts-dejavu-core', 'nginx', 'redis-server', 'libnginx-mod-nchan', 'pushpin', 'curl',
    'dpkg-dev', 'systemd', 'clang'];

test('the run profile holds what builds the binary and none of the test tools', T, () => {
    const run = listOf('run');
    assert.deepEqual(run.filter((p) => testTools.includes(p)), []);
    for (const need of ['cmake', 'ninja-build', 'libsqlite3-dev', 'libhiredis-dev', 'libjwt-dev']) {
        assert.ok(run.includes(need), `run lacks ${need}`);
    }
});

test('each profile holds the one before it: run, package, test, bench', T, () => {
    const order = ['run', 'package', 'test', 'bench'].map((p) => [p, listOf(p)]);
    for (let i = 1; i < order.length; i++) {
        const [name, list] = order[i];
        const [prev, prevList] = order[i - 1];
        assert.deepEqual(prevList.filter((p) => !list.includes(p)), [], `${name} lacks part of ${prev}`);
        assert.ok(list.length > prevList.length, `${name} adds nothing to ${prev}`);
    }
    const test = listOf('test');
    for (const need of ['libgtest-dev', 'nodejs', 'chromium', 'nginx', 'redis-server', 'dpkg-dev']) {
        assert.ok(test.includes(need), `test lacks ${need}`);
    }
    assert.ok(listOf('package').includes('dpkg-dev'), 'package lacks dpkg-dev (dpkg-shlibdeps)');
});

test('no profile means test; --bench means bench; a wrong one is refused', T, () => {
    assert.deepEqual(deps('--list').list, listOf('test'));
    assert.deepEqual(listOf('--bench'), listOf('bench'));
    const wrong = deps('tests', '--list');
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /unknown argument 'tests'/);
});

// CMAKE_DISABLE_FIND_PACKAGE_<name> makes find_package(<name>) find nothing, as on a machine
// with the run profile alone; the second configure shows that the switch bites.
test('the release preset configures without GoogleTest or Google Benchmark', T, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-release-'));
    const configure = (...extra) => spawnSync('cmake', ['--preset', 'release', '-B', dir,
        '-DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON', '-DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON', ...extra],
    { cwd: repo, encoding: 'utf8' });
    try {
        const release = configure();
        assert.equal(release.status, 0, `cmake --preset release without GoogleTest:\n${release.stdout}${release.stderr}`);
        const withTests = configure('-DHERALD_TESTS=ON');
        assert.notEqual(withTests.status, 0, 'with HERALD_TESTS=ON and GoogleTest hidden, configure still passed');
        assert.match(withTests.stderr, /GTest/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
