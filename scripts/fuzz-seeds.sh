#!/usr/bin/env bash
# Short coverage-guided runs of every fuzz target in the repository
# (FUZZTIME each, default 5s). A target fails the run when fuzzing finds a
# failing input (Go writes it under testdata/fuzz/<target>/: commit it as a
# seed once fixed). When the fuzzing engine itself fails without a failing
# input (a worker reported hung on a loaded machine, for example), the output
# is printed and the target is run once more; a second failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # dir target
	"$GO" test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1" >"$out" 2>&1
}

for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -rn1 dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "fuzz $dir $f ($FUZZTIME)"
		run "$dir" "$f" && continue
		cat "$out"
		if grep -q 'Failing input written to' "$out"; then
			echo "fuzz-seeds: $f found a failing input (above)" >&2
			exit 1
		fi
		echo "fuzz-seeds: $f failed without a failing input (the engine, not the code); running it once more" >&2
		if ! run "$dir" "$f"; then
			cat "$out"
			echo "fuzz-seeds: $f failed twice" >&2
			exit 1
		fi
	done
done
