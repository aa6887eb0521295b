#!/bin/bash
# bench/run.sh: every benchmark, bounded (about 8 minutes in all), as Markdown for docs/performance.md.
# Run by "make bench"; BENCH_RUNS (default 3) runs each; one benchmark: bench/run.sh NAME...
set -u
names=${*:-startup idle statsd aggregator logpath latency}
echo "## Benchmarks, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
echo
for n in $names; do
    bash "$top_srcdir/bench/$n.sh" || echo "**$n failed**"
done
