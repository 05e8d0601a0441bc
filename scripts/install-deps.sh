#!/usr/bin/env bash
# Installs what herald needs, by profile, from Debian's packages and the npm registry only.
# Idempotent: a second run installs nothing and takes a second. Needs root or sudo when
# something is missing; no service is started (a policy-rc.d holds them back).
#
#   scripts/install-deps.sh [run|package|test|bench] [--list]
#
#   run      building and running the binary: compiler, CMake, Ninja, ccache, pkg-config and
#            the -dev libraries herald links (`make run`, `make build`). No redis-server:
#            the default stores (memory, sqlite:PATH) need none, and a cluster names the
#            Redis it uses, usually on another machine.
#   package  run, and what `make package` needs: dpkg-shlibdeps (dpkg-dev) and `file`, with
#            which CPack works out the package's Depends.
#   test     (the default, as before the profiles) package, and
#            GoogleTest, Google Benchmark, Node.js with the npm test clients, Chromium for the
#            browser tests (through playwright-core, never a browser download), nginx for
#            examples/nginx, redis-server for the cluster and Redis store suites, and, for
#            the package test, adduser and systemd-analyze (never run as PID 1 here), and
#            clang with libFuzzer (libclang-rt-14-dev) for the fuzz preset.
#   bench    test, and the peers `make bench` measures herald against: Nchan (an nginx
#            module) and Pushpin, from Debian's packages.
#   --bench  the same as `bench` (older spelling).
#   --list   prints the profile's Debian packages, one a line, and installs nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

profile=test
list=0
for arg in "$@"; do
    case $arg in
    run | package | test | bench) profile=$arg ;;
    --bench) profile=bench ;;
    --list) list=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-deps: unknown argument '$arg' (profiles: run, package, test, bench; --list)" >&2
        exit 2
        ;;
    esac
done

run_packages=(
    build-essential cmake ninja-build ccache pkg-config
    libboost1.81-dev libboost-json1.81-dev
    nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
    libsqlite3-dev libssl-dev libjwt-dev libhiredis-dev
)
package_packages=(
    dpkg-dev file
)
test_packages=(
    libgtest-dev libgmock-dev libbenchmark-dev
    curl nodejs npm iproute2
    chromium fonts-dejavu-core nginx redis-server
    adduser systemd
    clang libclang-rt-14-dev
)
bench_packages=(
    libnginx-mod-nchan pushpin
)

packages=("${run_packages[@]}")
case $profile in
package) packages+=("${package_packages[@]}") ;;
test) packages+=("${package_packages[@]}" "${test_packages[@]}") ;;
bench) packages+=("${package_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
esac

if ((list)); then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        # nodejs from another repository satisfies the need for Node and npm alike.
        if [[ "$p" == nodejs || "$p" == npm ]] && command -v node >/dev/null && command -v npm >/dev/null; then
            continue
        fi
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "install-deps: installing ($profile profile) ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # policy-rc.d 101: packages must not start their services (nginx, pushpin) on install.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        trap '$sudo rm -f "$policy"' EXIT
    fi
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Real-client test dependencies (the SSE client libraries of the clients_* suites, autocannon,
# playwright-core), pinned by tests/package-lock.json: the test and bench profiles only. npm
# records what it installed in node_modules/.package-lock.json; when the lock file is newer
# than that record, something was added or changed.
if [[ $profile == test || $profile == bench ]]; then
    lock="$here/tests/package-lock.json"
    installed="$here/tests/node_modules/.package-lock.json"
    if [[ ! -f "$installed" || "$lock" -nt "$installed" ]]; then
        echo "install-deps: installing npm test clients"
        (cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
