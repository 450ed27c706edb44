#!/usr/bin/env bash
# make bench-micro BASE=<commit>: BenchmarkForward (and the connection
# table's lookups) at <commit> and at the working tree, in the same run,
# interleaved so that both see the same machine, then benchstat.
set -euo pipefail
base=${1:?usage: compare.sh COMMIT [COUNT]}
count=${2:-6}
bench=${BENCH:-BenchmarkForward/^(dr|nat|tun|fullnat)$/^established$/^workers=[12]$}
root=$(git rev-parse --show-toplevel)
sha=$(git -C "$root" rev-parse --short "$base")
tmp=$(mktemp -d /tmp/xvs-micro.XXXXXX)
wt="$tmp/base-$sha"
cleanup() { git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$wt" "$base" >/dev/null
(cd "$wt" && go test -c -o "$tmp/old.test" ./dataplane/)
(cd "$root" && go test -c -o "$tmp/new.test" ./dataplane/)
for i in $(seq "$count"); do
	for side in old new; do
		(cd "$root/dataplane" && "$tmp/$side.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime 300000x -test.count 1) \
			| grep '^Benchmark' >> "$tmp/$side.txt"
	done
done
echo "old: $sha, new: working tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)); $count interleaved rounds"
# The time table only: every row is 0 B/op and 0 allocs/op, which the
# benchmarks assert on their own.
go run golang.org/x/perf/cmd/benchstat@latest "old=$tmp/old.txt" "new=$tmp/new.txt" | awk '/B\/op/ {exit} {print}'
