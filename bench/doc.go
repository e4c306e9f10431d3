// Package bench owns halo's side-by-side benchmark suite against HAProxy:
// reading what a run measured (wrk's summary, a process's CPU time and
// memory from /proc), reducing repeated runs to medians and per-pair
// ratios, checking the targets, and writing the dated markdown table and
// SVG chart under bench/results.
//
// The suite itself is driven by bench/cmd/runbench (see the README's
// "Benchmarks" section); bench/cmd/benchd is the backend and load client
// both proxies are measured against. Nothing here is needed by the halo
// binary.
package bench
