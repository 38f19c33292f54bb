#!/usr/bin/env bash
# The main job: the whole loop on this machine, no Meta account and no database install needed.
#
#   bash scripts/run.sh            # run (again: incremental, new leads only, no event resent)
#   bash scripts/run.sh --fresh    # forget everything first (warehouse, Meltano state, output/)
#   bash scripts/run.sh --force    # after a run was killed: Meltano otherwise refuses to start
#                                  # a job it still believes running (for 5 minutes)
#   bash scripts/run.sh --verbose  # every line of every command (or FB_LEADS_VERBOSE=1)
#
# The console shows each step and the plugins' progress, warnings and errors; the Singer
# plumbing (METRIC lines, SQL, Meltano's relayed INFO lines) goes only to the full log,
# output/logs/main-job-<time>.log (output/logs/main-job.log is the latest): scripts/console.py.
#
# 1. creates .venv if missing and installs the project, 2. installs the Meltano plugins the
# loop uses into .meltano/, 3. starts the Graph API sandbox, fb-leads-receiver (the sandbox
# delivers signed leadgen and Messenger Lead Ads webhooks to it for the new leads) and the
# embedded PostgreSQL, 4. meltano run webhook-leads-to-warehouse (the leads the webhooks
# announced, read by id, and the Messenger leads), then leads-to-warehouse (the poll, the safety
# net), 5. lands sample CRM stage changes and Messenger follow-ups (crm/), 6. meltano run
# stages-to-meta (CRM events, follow-ups, Messenger leads' stage events), 7. prints Meta's
# read-back (the dataset's stats and data quality next to the ledger), 8. prints a summary,
# 9. writes the lead-quality report (output/report.html, scripts/report.py), and stops what it
# started.
# Settings: SANDBOX_LEADS_PER_FORM (default 300), NEW_LEADS_PER_FORM (3), NEW_MESSENGER_FLOWS
# (Messenger Lead Ads flows per Page and run, 2), SANDBOX_PORT (free),
# FB_LEADS_OUTPUT (output/), WAREHOUSE_DIR (.pgdata/), MELTANO_DATABASE_URI (.meltano/meltano.db),
# FB_LEADS_RECEIVER_SPOOL (output/webhook-spool.db), RECEIVER_PORT (free),
# PYTHON (python3: the interpreter that creates .venv, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-python3}"
OUT="${FB_LEADS_OUTPUT:-$ROOT/output}"
export FB_LEADS_OUTPUT="$OUT"
export TARGET_FB_CONVERSIONS_LEDGER="${TARGET_FB_CONVERSIONS_LEDGER:-$OUT/ledger.sqlite}"
export TARGET_FB_CONVERSIONS_REJECTS_PATH="${TARGET_FB_CONVERSIONS_REJECTS_PATH:-$OUT/rejects.jsonl}"
export FB_LEADS_RECEIVER_SPOOL="${FB_LEADS_RECEIVER_SPOOL:-$OUT/webhook-spool.db}"
LOOP_STARTED_AT="$(date +%s)"
export LOOP_STARTED_AT
FRESH=""
FORCE=()
for arg in "$@"; do
  case "$arg" in
    --fresh) FRESH=1 ;;
    --force) FORCE=(--force) ;;
    --verbose) export FB_LEADS_VERBOSE=1 ;;
    *) echo "usage: bash scripts/run.sh [--fresh] [--force] [--verbose]" >&2; exit 2 ;;
  esac
done
SEED=1
PAGES=1
FORMS_PER_PAGE=3
LEADS_PER_FORM="${SANDBOX_LEADS_PER_FORM:-300}"
DAYS=30

CURRENT_STEP="start"
step() { CURRENT_STEP="$*"; printf '\n==> %s\n' "$*"; }

if [ -n "$FRESH" ]; then
  step "Forgetting earlier runs (warehouse data, Meltano state, $OUT)"
  WH_DIR="${WAREHOUSE_DIR:-$ROOT/.pgdata}"
  if [ -x .venv/bin/python ] && [ -d "$WH_DIR" ]; then
    .venv/bin/python scripts/warehouse.py stop || true
  fi
  rm -rf "$WH_DIR" "$OUT"
  if [ -z "${MELTANO_DATABASE_URI:-}" ]; then rm -f .meltano/meltano.db; fi
fi

# The full log: everything this job and its commands print. The console gets it too, except
# what scripts/console.py keeps for the log only (fd 3 is the console itself). The tees ignore
# Ctrl-C, so the lines of the clean-up after it still reach the console and the log.
mkdir -p "$OUT/logs"
LOG="$OUT/logs/main-job-$(date -u +%Y%m%dT%H%M%SZ).log"
(umask 077; : > "$LOG")
ln -sfn "$(basename "$LOG")" "$OUT/logs/main-job.log"
exec 3>&1
exec > >(trap '' INT TERM; exec tee -a "$LOG") 2> >(trap '' INT TERM; exec tee -a "$LOG" >&2)
echo "full log of this run: $LOG"
# A noisy command: its readable lines on the console, all of it in the log.
quietly() { python scripts/console.py --log "$LOG" -- "$@" >&3; }

step "Python environment (.venv) and the project"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    FOUND="not found"
    if command -v "$PYTHON" > /dev/null; then FOUND="$("$PYTHON" --version 2>&1 | head -n 1)"; fi
    echo "error: the loop needs Python 3.10 or newer and '$PYTHON' is $FOUND: run" \
      "PYTHON=python3.11 bash scripts/run.sh (any Python 3.10+ will do)." >&2
    exit 1
  fi
  "$PYTHON" -m venv .venv
fi
# Install (again) only when a pyproject.toml, requirements.in or requirements.lock changed:
# the exact versions of requirements.lock (hash-checked), then the distributions (requirements.in).
STAMP=".venv/.fb-leads-installed"
WANT="$(cat pyproject.toml */pyproject.toml requirements.in requirements.lock | .venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -r requirements.in
  echo "$WANT" > "$STAMP"
else
  echo "already installed (pyproject.toml files, requirements.in and requirements.lock unchanged)"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export MELTANO_ENVIRONMENT=sandbox

mkdir -p "$OUT"
SANDBOX_PID=""
RECEIVER_PID=""
WAREHOUSE_STARTED=""
cleanup() {
  status=$?
  trap - EXIT INT TERM
  set +e
  if [ "$status" -ne 0 ]; then
    echo "error: the main job stopped at step \"${CURRENT_STEP%%   (*}\" (exit status $status);" \
      "the lines above say why, and the full log is $LOG" >&2
  fi
  if [ -n "$RECEIVER_PID" ] && kill -0 "$RECEIVER_PID" 2>/dev/null; then
    kill "$RECEIVER_PID" 2>/dev/null || true  # SIGTERM: requests in flight finish first
    wait "$RECEIVER_PID" 2>/dev/null || true
    echo "==> receiver stopped"
  fi
  if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    echo "==> sandbox stopped"
  fi
  if [ -n "$WAREHOUSE_STARTED" ]; then
    python scripts/warehouse.py stop || true
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

step "Meltano plugins (into .meltano/)"
# Wheels of this checkout, installed by `meltano install`, only when meltano.yml or a plugin's
# source changed; .meltano/ is kept private (Meltano writes each run's plugin config, secrets
# included, under .meltano/run/, and a killed run can leave it).
quietly python scripts/loop.py install-plugins


step "Graph API sandbox"
# The sandbox's clock is anchored on the first run, so later runs serve the same leads.
if [ ! -s "$OUT/sandbox-anchor" ]; then date +%s > "$OUT/sandbox-anchor"; fi
ANCHOR="$(cat "$OUT/sandbox-anchor")"
READY_FILE="$OUT/sandbox-ready.json"
(umask 077; : > "$READY_FILE")  # holds the token until it is read below
fb-graph-sandbox --host 127.0.0.1 --port "${SANDBOX_PORT:-0}" --seed "$SEED" --pages "$PAGES" \
  --forms-per-page "$FORMS_PER_PAGE" --leads-per-form "$LEADS_PER_FORM" --days "$DAYS" \
  --now "$ANCHOR" --messenger-forms-per-page 1 > "$READY_FILE" 2> "$OUT/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 1 300); do
  if [ -s "$READY_FILE" ] && head -n 1 "$READY_FILE" | grep -q '"url"'; then break; fi
  if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
    echo "error: the sandbox did not start; see $OUT/sandbox.log" >&2
    cat "$OUT/sandbox.log" >&2
    exit 1
  fi
  sleep 0.1
done
READY="$(head -n 1 "$READY_FILE")"
if [ -z "$READY" ]; then echo "error: the sandbox gave no ready line within 30 s" >&2; exit 1; fi
# Keep the ready line for later steps and tests, but never the token on disk.
python -c 'import json,sys; d=json.loads(sys.argv[1]); d.pop("token",None); print(json.dumps(d))' \
  "$READY" > "$READY_FILE"
json_field() { python -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$READY" "$1"; }
SANDBOX_URL="$(json_field url)"
SANDBOX_TOKEN="$(json_field token)"
SANDBOX_DATASET_ID="$(json_field dataset_id)"
SANDBOX_PAGE_IDS="$(python scripts/loop.py page-ids "$READY" --seed "$SEED" --pages "$PAGES" \
  --forms-per-page "$FORMS_PER_PAGE")"
export SANDBOX_URL SANDBOX_TOKEN SANDBOX_DATASET_ID SANDBOX_PAGE_IDS
echo "sandbox at $SANDBOX_URL, Pages $SANDBOX_PAGE_IDS, $LEADS_PER_FORM leads per form"

step "fb-leads-receiver: the sandbox's leadgen webhooks into $FB_LEADS_RECEIVER_SPOOL"
# A fresh app secret and verify token each run, passed in the environment only.
WEBHOOK_SECRET="$(python -c 'import secrets; print(secrets.token_hex(16))')"
export WEBHOOK_SECRET
RECEIVER_READY_FILE="$OUT/receiver-ready.json"
: > "$RECEIVER_READY_FILE"  # emptied now: the receiver's own redirect happens later
FB_LEADS_RECEIVER_APP_SECRET="$WEBHOOK_SECRET" \
  FB_LEADS_RECEIVER_VERIFY_TOKEN="$(python -c 'import secrets; print(secrets.token_hex(16))')" \
  fb-leads-receiver serve --port "${RECEIVER_PORT:-0}" > "$RECEIVER_READY_FILE" \
  2> "$OUT/receiver.log" &
RECEIVER_PID=$!
for _ in $(seq 1 300); do
  if [ -s "$RECEIVER_READY_FILE" ]; then break; fi
  if ! kill -0 "$RECEIVER_PID" 2>/dev/null; then
    echo "error: the receiver did not start; see $OUT/receiver.log" >&2
    cat "$OUT/receiver.log" >&2
    exit 1
  fi
  sleep 0.1
done
RECEIVER_URL="$(python -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' \
  "$(head -n 1 "$RECEIVER_READY_FILE")")"
python scripts/loop.py webhooks "$SANDBOX_URL" "$RECEIVER_URL"
echo "receiver at $RECEIVER_URL (status page: ${RECEIVER_URL%/webhook}/status)"

python scripts/loop.py add-leads "$SANDBOX_URL" "$SANDBOX_PAGE_IDS" \
  --per-form "${NEW_LEADS_PER_FORM:-3}" --messenger-flows "${NEW_MESSENGER_FLOWS:-2}"
python scripts/loop.py wait-webhooks "$SANDBOX_URL"

step "Embedded PostgreSQL warehouse"
if ! python scripts/warehouse.py status > /dev/null; then WAREHOUSE_STARTED=1; fi
python scripts/warehouse.py start
# Tables an earlier version loaded, brought up to date (fb_leads.leads' jsonb[] columns: jsonb).
python scripts/warehouse.py upgrade
while IFS='=' read -r key value; do export "$key=$value"; done < <(python scripts/warehouse.py env)
python scripts/loop.py snapshot > "$OUT/.before.json"

step "meltano run webhook-leads-to-warehouse   (tap-fb-leads--webhooks -> target-fb-leads-postgres)"
quietly meltano run "${FORCE[@]}" webhook-leads-to-warehouse
LOOP_SNAPSHOT="$OUT/.before.json" python scripts/loop.py webhook-latency

step "meltano run leads-to-warehouse   (tap-fb-leads -> target-fb-leads-postgres: the poll, the safety net)"
quietly meltano run "${FORCE[@]}" leads-to-warehouse

step "CRM: stage changes for the loaded leads (crm.stage_changes, view crm.conversion_events)"
python crm/sample_crm.py

step "meltano run stages-to-meta   (tap-postgres -> target-fb-conversions)"
quietly meltano run "${FORCE[@]}" stages-to-meta

step "Meta's read-back   (meltano invoke target-fb-conversions --read-back; the sandbox holds this run's events only)"
quietly meltano invoke target-fb-conversions --read-back \
  || echo "the read-back failed (the sentence above says why); nothing was sent by it"

python scripts/loop.py summary "$SANDBOX_URL" --before "$OUT/.before.json"

step "Lead-quality report (leads per form and day, stage funnel, time to stage, events, Messenger)"
python scripts/report.py --out "$OUT/report.html"
