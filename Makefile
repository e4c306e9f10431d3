# Shorthands for the README's commands.
.PHONY: test bench bench-quick demo

test:
	scripts/test

demo:
	go run ./cmd/halo demo

# The whole benchmark suite against HAProxy (about 45 minutes on 2 cores); results go to
# bench/results/<date>/ and the README's benchmark section.
bench:
	bench/setup
	go run ./bench/cmd/runbench -readme README.md

# A one-run pass over every scenario at small sizes (about 2 minutes), to
# see that the suite works; its results are not for comparison.
bench-quick:
	bench/setup
	go run ./bench/cmd/runbench -runs 1 -duration 2s -bulk-size 268435456 -check-time 3s -microbench=false -out $${TMPDIR:-/tmp}/halo-bench
