#!/usr/bin/env bash
# Installs what herald's build, tests and `make run` need, from Debian's packages and the
# npm registry only. Idempotent: a second run installs nothing and takes a second.
# Chromium drives the dashboard and example pages in the browser tests (through
# playwright-core, never a browser download); nginx is the reverse proxy of examples/nginx.
#   --bench   also the peers `make bench` measures herald against: Nchan (an nginx module),
#             and Pushpin (with condure and zurl), from Debian's packages. No service is
#             started here; tests and bench/peer.sh start nginx and Pushpin by hand.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
    build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
    libboost1.81-dev libboost-json1.81-dev
    nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
    libsqlite3-dev libssl-dev libjwt-dev libhiredis-dev redis-server
    libgtest-dev libgmock-dev libbenchmark-dev
    curl nodejs npm iproute2
    chromium fonts-dejavu-core nginx
)
if [[ ${1:-} == --bench ]]; then
    packages+=(libnginx-mod-nchan pushpin)
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
    echo "install-deps: installing ${missing[*]}"
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
# playwright-core), pinned by tests/package-lock.json. npm records what it installed in
# node_modules/.package-lock.json; when the lock file is newer than that record, something was
# added or changed.
lock="$here/tests/package-lock.json"
installed="$here/tests/node_modules/.package-lock.json"
if [[ ! -f "$installed" || "$lock" -nt "$installed" ]]; then
    echo "install-deps: installing npm test clients"
    (cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
