# bench/lib.sh: what bench/run.sh and bench/run-1m.sh share. Sourced, not run.

# herald_port LOG PID: waits (10 s at most) for the herald of PID to log its port, and
# prints it; returns 1 when it exits or logs none.
herald_port() {
    local log=$1 pid=$2 port
    for _ in $(seq 100); do
        port=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 | sed 's/.*://')
        if [[ -n $port ]]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick).
free_port() {
    node -e 'const s = require("net").createServer();
        s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# redis_ping PORT: true when a Redis on 127.0.0.1:PORT answers PING.
redis_ping() {
    local fd reply=""
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&"$fd"
    IFS= read -r -t 1 reply <&"$fd"
    exec {fd}>&-
    [[ $reply == +PONG* ]]
}

# append_result FILE SCENARIO SERVER COMMAND SERVER_COMMAND JSON ERROR: appends
# {"scenario", "server", "command", "server_command", ...the bench JSON} to FILE, or, when
# JSON is empty or not JSON, {"scenario", "server", "error": ERROR}.
append_result() {
    FILE=$1 SCENARIO=$2 SERVER=$3 COMMAND=$4 SERVER_COMMAND=$5 JSON=$6 ERROR=$7 node -e '
        const e = process.env;
        let line;
        try {
            if (!e.JSON) throw new Error(e.ERROR || "no result");
            line = { scenario: e.SCENARIO, server: e.SERVER, command: e.COMMAND,
                     server_command: e.SERVER_COMMAND, ...JSON.parse(e.JSON) };
        } catch (err) {
            line = { scenario: e.SCENARIO, server: e.SERVER, error: e.ERROR || String(err.message) };
        }
        require("fs").appendFileSync(e.FILE, JSON.stringify(line) + "\n");'
}
