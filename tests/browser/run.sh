#!/usr/bin/env bash
# Browser tests of the web console: headless Chromium (Debian's package) driven by playwright-core
# walks the seed's flow against `syncline fixture` and `syncline serve`, each on a free loopback port
# with a fresh state directory and a random key. Screenshots go to a temporary folder, or to
# $SYNCLINE_SCREENSHOTS (`SYNCLINE_SCREENSHOTS=docs/screenshots tests/browser/run.sh` refreshes the README's).
# Where Chromium cannot be had, it says the browser tests were skipped, and why (in CI it fails).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

# In CI (`CI` set) a browser that cannot be had fails the run; elsewhere the tests are skipped, saying
# why, and `tests/run` lists them with the other skipped tests.
skip() {
    case "${CI:-}" in
        ""|0|false) ;;
        *) echo "browser tests cannot run in CI: $1"; exit 1 ;;
    esac
    echo "browser tests SKIPPED: $1"
    list="${CARGO_TARGET_DIR:-$root/target}/tmp/syncline-skipped.txt"
    mkdir -p "$(dirname "$list")" && echo "browser tests (tests/browser/run.sh): $1" >>"$list"
    exit 0
}

if [ ! -x "$chromium" ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests"
    apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1) \
        || true
fi
[ -x "$chromium" ] || skip "no Chromium at $chromium, and apt-get could not install the chromium package"
command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm are needed to run playwright-core"

if [ ! -d "$here/node_modules" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || skip "npm ci could not install playwright-core (is the npm registry reachable?)"
fi

cd "$root"
cargo build --locked --quiet
bin="${CARGO_TARGET_DIR:-$root/target}/debug/syncline"

free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

work="$(mktemp -d)"
fixture_port="$(free_port)"
serve_port="$(free_port)"
key="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# 15,000 pets: 10,000 available, so the contracts and objects are paged as on a real install.
"$bin" fixture --listen "127.0.0.1:$fixture_port" --pets 15000 >"$work/fixture.log" 2>&1 &
pids+=($!)
SYNCLINE_API_KEY="$key" "$bin" --state "$work/state" serve --listen "127.0.0.1:$serve_port" --tick 0.2 >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    if up "$fixture_port" && up "$serve_port"; then break; fi
    sleep 0.1
done
up "$serve_port" || { cat "$work/serve.log"; echo "syncline serve did not start"; exit 1; }

shots="${SYNCLINE_SCREENSHOTS:-$work/screenshots}"
mkdir -p "$shots"
status=0
CHROMIUM="$chromium" CONSOLE_URL="http://127.0.0.1:$serve_port" CONSOLE_KEY="$key" \
    FIXTURE_URL="http://127.0.0.1:$fixture_port/api/v3" SCREENSHOTS="$(cd "$shots" && pwd)" \
    node "$here/console.test.mjs" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- syncline serve log ---"
    tail -n 40 "$work/serve.log"
fi
exit "$status"
