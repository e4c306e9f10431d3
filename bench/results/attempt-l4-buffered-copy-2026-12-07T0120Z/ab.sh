#!/usr/bin/env bash
# A/B of two halo binaries, pinned as the suite pins: benchd and wrk on CPU 0,
# halo on CPU 1 with GOMAXPROCS=1. Alternating pairs; prints req/s and CPU
# seconds per 10k requests for each run.
# usage: ab.sh MODE(http|tcp) PAIRS BIN_A BIN_B
set -euo pipefail
mode=$1 pairs=$2 A=$3 B=$4 hdr=${5:-}
be=127.0.0.1:29500
cd /tmp/ab
taskset -c 0 /tmp/benchd serve -http $be > benchd.log 2>&1 & bpid=$!
trap 'kill $bpid $apid $bbpid 2>/dev/null' EXIT
mk() { cat > $1.yaml <<YAML
global: {maxconn: 12000}
defaults:
  mode: $mode
  timeout: {connect: 5s, client: 30s, server: 30s, http-request: 10s, http-keep-alive: 30s}
frontends:
  bench: {bind: ["127.0.0.1:$2"], default_backend: app}
backends:
  app: {servers: [{name: s1, address: "$be"}]}
YAML
}
mk a 29501; mk b 29502
GOMAXPROCS=1 taskset -c 1 $A run -c a.yaml > a.log 2>&1 & apid=$!
GOMAXPROCS=1 taskset -c 1 $B run -c b.yaml > b.log 2>&1 & bbpid=$!
sleep 1
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # pid port -> "req/s cpu-per-10k"
  taskset -c 0 wrk -t1 -c64 -d1s ${hdr:+-H "$hdr"} http://127.0.0.1:$2/ > /dev/null
  local c0=$(cpu $1)
  local out=$(taskset -c 0 wrk -t1 -c64 -d5s ${hdr:+-H "$hdr"} http://127.0.0.1:$2/)
  local c1=$(cpu $1)
  local rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$rps $(awk -v c=$((c1-c0)) -v n=$n 'BEGIN{printf "%.3f", c/100.0/n*10000}')"
}
for i in $(seq 1 $pairs); do
  if (( i % 2 )); then ra=$(run $apid 29501); rb=$(run $bbpid 29502); else rb=$(run $bbpid 29502); ra=$(run $apid 29501); fi
  echo "pair $i A $ra B $rb"
done
