#!/usr/bin/env bash
# Build a wheel from the tracked sources, install it into a fresh venv and
# start the server from it, as an operator would (`pipx install`, `pip
# install chatto-*.whl`). An editable install reads files from the source
# tree and hides a file missing from the wheel; this cannot.
#
# Checks: every tracked non-Python file under chatto/ and actors/ is in the
# wheel; `chatto init` and `chatto run` from the installed console script,
# with the working directory outside the repository, on a free port and a
# temporary data dir; /readyz, a GraphQL query, the SDL and the playground
# (scripts/wheel_probe.py); a clean stop on SIGTERM. Every step is bounded.
# PYTHON picks the interpreter (default python3); KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY="${PYTHON:-python3}"
work=$(mktemp -d "${TMPDIR:-/tmp}/chatto-wheel.XXXXXX")
pid=""

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "check-wheel: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
    echo "check-wheel: FAILED: $*" >&2
    if [ -f "$work/server.log" ]; then
        echo "---- server log (last 40 lines)" >&2
        tail -n 40 "$work/server.log" >&2
    fi
    exit 1
}

t0=$SECONDS
echo "== check-wheel: build (tracked files only, as an sdist would hold)"
mkdir -p "$work/src"
# Cached and untracked-but-not-ignored files: a new file shows up before its
# first commit, while .venv, data and build output stay out.
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
    | tar -xf - -C "$work/src"
timeout 300 "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src" \
    || fail "pip wheel"
wheel=$(ls "$work"/dist/chatto-*.whl)

echo "== check-wheel: wheel holds every run-time file"
git ls-files --cached --others --exclude-standard -- chatto actors \
    | grep -v '\.py$' >"$work/expected" || true
"$PY" - "$wheel" "$work/expected" <<'EOF' || fail "files missing from the wheel"
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
expected = [line for line in open(sys.argv[2]).read().splitlines() if line]
missing = [name for name in expected if name not in names]
for name in missing:
    print(f"  not in the wheel: {name} (add it to [tool.setuptools.package-data])")
sys.exit(1 if missing else 0)
EOF

echo "== check-wheel: install into a fresh venv"
timeout 120 "$PY" -m venv "$work/venv" || fail "venv"
timeout 600 "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" \
    || fail "pip install $wheel"

cd "$work"  # nothing from the repository on sys.path from here on
"$work/venv/bin/python" - <<'EOF' || fail "chatto imported from outside the venv"
import sys
import chatto

assert "site-packages" in chatto.__file__, chatto.__file__
EOF
timeout 30 "$work/venv/bin/chatto" init -c "$work/chatto.toml" || fail "chatto init"

echo "== check-wheel: chatto run"
# Port 0: the server picks a free port and prints it (no race with a port
# chosen here); the data dir defaults to ./data next to the config.
CHATTO_WEBSERVER_PORT=0 "$work/venv/bin/chatto" run -c "$work/chatto.toml" \
    >"$work/server.log" 2>&1 &
pid=$!
timeout 120 "$work/venv/bin/python" "$repo/scripts/wheel_probe.py" \
    --log "$work/server.log" --pid "$pid" --within 90 || fail "probe"

kill -TERM "$pid"
status=0
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 30 s after SIGTERM"
wait "$pid" || status=$?
pid=""
[ "$status" = 0 ] || fail "chatto run exited with status $status after SIGTERM"
if grep -q "Traceback" "$work/server.log"; then fail "traceback in the server log"; fi
echo "== check-wheel: ok ($((SECONDS - t0)) s)"
