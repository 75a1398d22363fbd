#!/usr/bin/env bash
# `make containers`: the container smoke run. Builds every target of the Dockerfile, starts MLflow,
# the evaluator, explainer, dashboard and predictor as containers (host network, embedded store,
# read-only root filesystem, named volumes for data, artifacts, store and the MLflow state), runs
# the trainer container on a small generated demo data set, evaluates and explains through the
# HTTP APIs with the token, chooses the run (dashboard container) and predicts one image, checks
# that every health check turns healthy and every process runs as uid 10001, and removes every
# container and volume it created, on success and on failure. One line per step, then the wall
# time. Needs only docker, bash, curl and python3 (no virtualenv).
#
# Settings (environment or `make containers VAR=...`):
#   MLFLOW_PORT=5000 EVALUATOR_PORT=5006 EXPLAINER_PORT=5005 DASHBOARD_PORT=8501 PREDICTOR_PORT=5007
#   IMAGE_TAG=latest          tag of the images mlpipeline/<target> (kept afterwards)
#   TORCH_INDEX_URL=          build arg, see the Dockerfile
#   EPOCHS=2                  training epochs
#   HEALTH_TIMEOUT=300        seconds a container may take to turn healthy
#   KEEP_LOGS=logs/containers where the build and container logs go
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$(date +%s)
MLFLOW_PORT=${MLFLOW_PORT:-5000}
EVALUATOR_PORT=${EVALUATOR_PORT:-5006}
EXPLAINER_PORT=${EXPLAINER_PORT:-5005}
DASHBOARD_PORT=${DASHBOARD_PORT:-8501}
PREDICTOR_PORT=${PREDICTOR_PORT:-5007}
IMAGE_TAG=${IMAGE_TAG:-latest}
EPOCHS=${EPOCHS:-2}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-300}
LOG_DIR=${KEEP_LOGS:-logs/containers}
TARGETS=(mlflow trainer evaluator explainer dashboard predictor)
RUN_NAME=mlpsmoke-$$
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
WORK=$(mktemp -d)
STARTED=()   # containers to remove
VOLUMES=()   # volumes to remove
SKIPPED=()
STATUS=failed
mkdir -p "$LOG_DIR"

say() { printf '[%5ss] %-10s %s\n' "$(($(date +%s) - T0))" "$1" "$2"; }
FAILED_IN=""
fail() {
    say "$1" "FAILED: $2"
    FAILED_IN=$RUN_NAME-$1
    exit 1
}

cleanup() {
    local code=$?
    for c in "${STARTED[@]}"; do
        docker logs "$c" >"$LOG_DIR/${c#"$RUN_NAME"-}.log" 2>&1 || true
        if [ "$c" = "$FAILED_IN" ]; then
            echo "---- last lines of $c (all in $LOG_DIR/${c#"$RUN_NAME"-}.log)"
            docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /'
        fi
    done
    [ ${#STARTED[@]} -eq 0 ] || docker rm -f "${STARTED[@]}" >/dev/null 2>&1 || true
    [ ${#VOLUMES[@]} -eq 0 ] || docker volume rm -f "${VOLUMES[@]}" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    say cleanup "removed ${#STARTED[@]} containers and ${#VOLUMES[@]} volumes"
    local skipped=""
    [ ${#SKIPPED[@]} -eq 0 ] || skipped=" (skipped: ${SKIPPED[*]})"
    if [ "$code" = 0 ] && [ "$STATUS" = passed ]; then
        say done "make containers passed in $(($(date +%s) - T0)) s$skipped"
    else
        say done "make containers FAILED after $(($(date +%s) - T0)) s$skipped (logs: $LOG_DIR/)"
        [ "$code" != 0 ] || code=1
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
    fail docker "no Docker daemon answers (DOCKER_HOST=${DOCKER_HOST:-unset}); start one, or on a \
machine without Docker Hub: eval \"\$(../shared/tools/docker-here)\""
fi
command -v curl >/dev/null || fail curl "curl is needed"
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$MLFLOW_PORT" "$EVALUATOR_PORT" "$EXPLAINER_PORT" "$DASHBOARD_PORT" "$PREDICTOR_PORT"; do
    ! port_in_use "$port" || fail ports "port $port is in use; pick others, e.g. make containers MLFLOW_PORT=15000"
done
say ports "free: mlflow $MLFLOW_PORT, evaluator $EVALUATOR_PORT, explainer $EXPLAINER_PORT, dashboard $DASHBOARD_PORT, predictor $PREDICTOR_PORT"
HAVE_PREDICTOR=1
[ -f predictor/app.py ] || HAVE_PREDICTOR=0
HAVE_CHOOSE=1
[ -f dashboard/choose.py ] || HAVE_CHOOSE=0

# --- build ----------------------------------------------------------------------------------
for target in "${TARGETS[@]}"; do
    t=$(date +%s)
    docker build --network host --target "$target" --tag "mlpipeline/$target:$IMAGE_TAG" \
        --build-arg TORCH_INDEX_URL="${TORCH_INDEX_URL:-}" . >"$LOG_DIR/build-$target.log" 2>&1 \
        || { tail -20 "$LOG_DIR/build-$target.log"; fail build "target $target (log: $LOG_DIR/build-$target.log)"; }
    size=$(docker image inspect -f '{{.Size}}' "mlpipeline/$target:$IMAGE_TAG")
    say build "$target: mlpipeline/$target:$IMAGE_TAG, $((size / 1000000)) MB, $(($(date +%s) - t)) s"
done

# --- containers -----------------------------------------------------------------------------
for v in data artifacts store mlflow; do
    docker volume create "$RUN_NAME-$v" >/dev/null
    VOLUMES+=("$RUN_NAME-$v")
done

# The service's command for PORT (the image's own CMD and HEALTHCHECK when it is the default port).
declare -A DEFAULT_PORT=([mlflow]=5000 [evaluator]=5006 [explainer]=5005 [dashboard]=8501 [predictor]=5007)
declare -A HEALTH_PATH=([mlflow]=/health [evaluator]=/health [explainer]=/health [dashboard]=/_stcore/health [predictor]=/health)
port_args() {
    local name=$1 port=$2
    [ "$port" != "${DEFAULT_PORT[$name]}" ] || return 0
    local url="http://127.0.0.1:$port${HEALTH_PATH[$name]}"
    printf '%s\0' --health-cmd "python -c \"import urllib.request; urllib.request.urlopen('$url', timeout=4)\""
}
port_cmd() {
    local name=$1 port=$2
    [ "$port" != "${DEFAULT_PORT[$name]}" ] || return 0
    python3 -c 'import sys
from launcher.services import SERVICES
service = next(s for s in SERVICES if s.name == sys.argv[1])
values = {"host": "0.0.0.0", "state": "/mlflow", "data": "/data", "experiment": "demo"}
print("\0".join(service.render(port=int(sys.argv[2]), **values)), end="\0")' "$name" "$port"
}

COMMON=(--network host --read-only --tmpfs /tmp --tmpfs /home/app:uid=10001,gid=10001
    --health-interval 3s --label "mlpipeline.smoke=$RUN_NAME")
APP=("${COMMON[@]}"
    -v "$RUN_NAME-data:/data" -v "$RUN_NAME-artifacts:/artifacts" -v "$RUN_NAME-store:/store"
    -e "MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT"
    -e "EVALUATOR_URL=http://127.0.0.1:$EVALUATOR_PORT"
    -e "EXPLAINER_URL=http://127.0.0.1:$EXPLAINER_PORT"
    -e "PREDICTOR_URL=http://127.0.0.1:$PREDICTOR_PORT"
    -e "PIPELINE_API_TOKEN=$TOKEN" -e RUN_ID_FILE=/artifacts/run_id.txt)

declare -A STARTED_AT=()
start() {  # start NAME PORT [docker run options...]
    local name=$1 port=$2
    shift 2
    local extra=() cmd=()
    mapfile -d '' extra < <(port_args "$name" "$port")
    mapfile -d '' cmd < <(port_cmd "$name" "$port")
    docker run -d --name "$RUN_NAME-$name" "$@" "${extra[@]}" "mlpipeline/$name:$IMAGE_TAG" "${cmd[@]}" >/dev/null
    STARTED+=("$RUN_NAME-$name")
    STARTED_AT[$name]=$(date +%s)
}

wait_healthy() {  # wait_healthy NAME
    local c=$RUN_NAME-$1 t=${STARTED_AT[$1]} health
    while :; do
        health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}/{{.State.Status}}' "$c")
        case $health in
            healthy/running) break ;;
            */exited | */dead) fail "$1" "exited before turning healthy ($health)" ;;
            /*) fail "$1" "the image has no HEALTHCHECK" ;;
        esac
        [ $(($(date +%s) - t)) -lt "$HEALTH_TIMEOUT" ] || fail "$1" "not healthy within $HEALTH_TIMEOUT s ($health)"
        sleep 2
    done
    local check="its image's health check"
    [ "${PORT[$1]:-}" = "" ] || [ "${PORT[$1]}" = "${DEFAULT_PORT[$1]}" ] || check="health check on port ${PORT[$1]}"
    say "$1" "healthy ($check) within $(($(date +%s) - t)) s of its start"
}

process_ids() {  # the distinct "uid gid" pairs of a container's processes, on one line
    docker top "$1" -eo pid,uid,gid 2>/dev/null | tail -n +2 | awk '{print $2, $3}' | sort -u | xargs
}

check_uid() {  # check_uid NAME: every process of the container runs as uid and gid 10001
    local c=$RUN_NAME-$1 ids
    ids=$(process_ids "$c")
    [ "$ids" = "10001 10001" ] || fail "$1" "processes run as uid/gid: $ids"
    say "$1" "every process ($(docker top "$c" | tail -n +2 | wc -l)) runs as uid 10001, gid 10001"
}

declare -A PORT=([mlflow]=$MLFLOW_PORT [evaluator]=$EVALUATOR_PORT [explainer]=$EXPLAINER_PORT [dashboard]=$DASHBOARD_PORT [predictor]=$PREDICTOR_PORT)
start mlflow "$MLFLOW_PORT" "${COMMON[@]}" -v "$RUN_NAME-mlflow:/mlflow"
say mlflow "started (read-only root, volume $RUN_NAME-mlflow at /mlflow)"
wait_healthy mlflow

SERVICES=(evaluator explainer dashboard)
if [ "$HAVE_PREDICTOR" = 1 ]; then SERVICES+=(predictor); fi
for name in "${SERVICES[@]}"; do
    start "$name" "${PORT[$name]}" "${APP[@]}"
done
say services "started ${SERVICES[*]} (read-only root, embedded store in volume $RUN_NAME-store)"
[ "$HAVE_PREDICTOR" = 1 ] || say predictor "SKIPPED: predictor/app.py is not in this checkout (image built, not started)"

# --- data and training (the trainer image) ----------------------------------------------------
docker run --rm "${APP[@]}" "mlpipeline/trainer:$IMAGE_TAG" \
    python -m dataloader synth --out /data --train-per-class 60 --test-per-class 15 --size 32 \
    >"$LOG_DIR/data.log" 2>&1 || { cat "$LOG_DIR/data.log"; fail data "python -m dataloader synth"; }
say data "demo data in volume $RUN_NAME-data: $(tail -1 "$LOG_DIR/data.log" | cut -c1-100)"

docker run -d --name "$RUN_NAME-trainer" "${APP[@]}" "mlpipeline/trainer:$IMAGE_TAG" \
    python -m trainer --data-dir /data --experiment smoke --epochs "$EPOCHS" >/dev/null
STARTED+=("$RUN_NAME-trainer")
say trainer "training $EPOCHS epochs"
trainer_healthy=no trainer_uid=""
while [ "$(docker inspect -f '{{.State.Status}}' "$RUN_NAME-trainer")" = running ]; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$RUN_NAME-trainer")" != healthy ] || trainer_healthy=yes
    ids=$(process_ids "$RUN_NAME-trainer" || true)
    [ -z "$ids" ] || trainer_uid="$ids"
    sleep 2
done
code=$(docker inspect -f '{{.State.ExitCode}}' "$RUN_NAME-trainer")
docker logs "$RUN_NAME-trainer" >"$LOG_DIR/trainer.log" 2>&1
[ "$code" = 0 ] || { tail -20 "$LOG_DIR/trainer.log"; fail trainer "exit code $code"; }
RUN_ID=$(docker logs "$RUN_NAME-trainer" 2>/dev/null | tail -1 | tr -d '[:space:]')
[[ $RUN_ID =~ ^[0-9a-f]{32}$ ]] || fail trainer "the last line is not a run id: $RUN_ID"
[ "$trainer_healthy" = yes ] || fail trainer "its health check (MLflow answers) never turned healthy"
[ "$trainer_uid" = "10001 10001" ] || fail trainer "processes ran as uid/gid: $trainer_uid"
say trainer "run $RUN_ID, exit 0; health check turned healthy; every process ran as uid 10001, gid 10001"

for name in "${SERVICES[@]}"; do
    wait_healthy "$name"
done
for name in mlflow "${SERVICES[@]}"; do
    check_uid "$name"
done

# --- the APIs ---------------------------------------------------------------------------------
api() {  # api METHOD URL [curl args...]: the body; fails on HTTP >= 400
    local method=$1 url=$2
    shift 2
    curl -sS --fail-with-body -X "$method" -H "Authorization: Bearer $TOKEN" "$@" "$url"
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"run_id\": \"$RUN_ID\"}" "http://127.0.0.1:$EVALUATOR_PORT/evaluate")
[ "$status" = 401 ] || fail token "POST /evaluate without the token answered $status, not 401"
say token "POST /evaluate without the token: 401"

body=$(api POST "http://127.0.0.1:$EVALUATOR_PORT/evaluate?wait=600" -H 'Content-Type: application/json' \
    -d "{\"run_id\": \"$RUN_ID\"}") || fail evaluate "$body"
[ "$(echo "$body" | json 'd["status"]')" = succeeded ] || fail evaluate "$body"
say evaluate "$(echo "$body" | json '", ".join(f"{k} {v:.3f}" for k, v in d["result"]["metrics"].items() if k in ("eval_accuracy", "eval_roc_auc_macro"))')"

body=$(api POST "http://127.0.0.1:$EXPLAINER_PORT/explain?wait=600" -H 'Content-Type: application/json' \
    -d "{\"run_id\": \"$RUN_ID\", \"n_samples\": 4}") || fail explain "$body"
[ "$(echo "$body" | json 'd["status"]')" = succeeded ] || fail explain "$body"
say explain "$(echo "$body" | json '", ".join(d["result"].get("methods", []))')"

if [ "$HAVE_CHOOSE" = 1 ]; then
    out=$(docker exec "$RUN_NAME-dashboard" python -m dashboard.choose "$RUN_ID" --reason smoke 2>&1) \
        || fail choose "$out"
    say choose "$(echo "$out" | tail -1 | cut -c1-120)"
else
    SKIPPED+=(choose)
    say choose "SKIPPED: dashboard/choose.py is not in this checkout"
fi

if [ "$HAVE_PREDICTOR" = 1 ]; then
    t=$(date +%s)
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$PREDICTOR_PORT/ready")" = 200 ]; do
        [ $(($(date +%s) - t)) -lt 120 ] || fail predict "/ready did not answer 200 within 120 s"
        sleep 2
    done
    image=$(docker exec "$RUN_NAME-evaluator" sh -c 'ls /data/test/*/*.png | head -1')
    docker cp "$RUN_NAME-evaluator:$image" "$WORK/sample.png" >/dev/null
    body=$(api POST "http://127.0.0.1:$PREDICTOR_PORT/predict" -F "files=@$WORK/sample.png") \
        || fail predict "$body"
    say predict "$(basename "$image"): $(echo "$body" | cut -c1-150)"
else
    SKIPPED+=(predict)
    say predict "SKIPPED: predictor/app.py is not in this checkout"
fi

# Still healthy after the work.
for name in mlflow "${SERVICES[@]}"; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$RUN_NAME-$name")" = healthy ] \
        || fail "$name" "no longer healthy after the run"
done
say health "mlflow ${SERVICES[*]} still healthy"
STATUS=passed
