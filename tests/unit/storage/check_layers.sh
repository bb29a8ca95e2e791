#!/usr/bin/env bash
# check_layers.sh LIBRARY.a: storage/'s files call only into their own layer or the layers below
# (docs/architecture.md, "Storage"): every symbol a member of libmaturity_storage.a leaves
# undefined and another member defines must belong to a member of the same or a lower layer, and
# the members' call graph must have no cycle. Reads the real references (nm), not the sources, so
# a call through a macro counts too. A member missing from the table fails: place new files.
set -euo pipefail
lib=${1:?usage: check_layers.sh libmaturity_storage.a}
command -v nm >/dev/null || { echo "check_layers: nm not found (binutils)"; exit 77; }

# layer number: members (without .c.o). Same-layer calls are allowed (acyclic, checked below).
declare -A layer=(
	[store_error]=0 [store_uuid]=0 [store_token]=0 [store_row]=0 [store_pq]=0
	[store_migrations_data]=0
	[store_pool]=1
	[store_stmt]=2 [store_authz]=3 [store_exec]=4 [store_loop]=5 [store_health]=5
	[store_listen]=5
	[store_mutation]=6
	[store_org]=7 [store_assessment]=7 [store_transition]=7 [store_access]=7 [store_report]=7
	[store_evidence]=7 [store_event]=7 [store_migrate]=7
)

# "lib.a[member.c.o]: symbol TYPE [value size]" (POSIX format: one layout for every symbol).
out=$(nm -A -P "$lib" 2>/dev/null) || { echo "check_layers: nm failed on $lib"; exit 1; }
[ -n "$out" ] || { echo "check_layers: no symbols in $lib (LTO objects?)"; exit 77; }
fail=0
declare -A def edges
syms=$(printf '%s\n' "$out" | sed -n 's/^.*\[\(.*\)\.c\.o\]: \([^ ]*\) \([A-Za-z]\).*$/\1 \2 \3/p')
while read -r member sym type; do
	if [ -z "${layer[$member]+x}" ]; then
		echo "check_layers: $member has no layer: add it to tests/unit/storage/check_layers.sh"
		fail=1
		layer[$member]=99
	fi
	case $type in T | D | B | R) def[$sym]=$member ;; esac
done <<<"$syms"
while read -r member sym type; do
	[ "$type" = U ] || continue
	to=${def[$sym]:-}
	[ -n "$to" ] && [ "$to" != "$member" ] || continue
	edges["$member $to"]=1
	if [ "${layer[$to]}" -gt "${layer[$member]}" ]; then
		echo "check_layers: $member (layer ${layer[$member]}) calls $sym of $to (layer ${layer[$to]})"
		fail=1
	fi
done <<<"$syms"
# Same-layer calls must not form a loop either.
tmp=$(mktemp)
if ! printf '%s\n' "${!edges[@]}" | tsort >/dev/null 2>"$tmp"; then
	echo "check_layers: the call graph between files has a cycle:"
	cat "$tmp"
	fail=1
fi
rm -f "$tmp"
[ "$fail" = 0 ] && echo "check_layers: ${#edges[@]} dependencies between storage files, all downward"
exit "$fail"
