#!/usr/bin/python3
"""bench_sqlcheck.py: checks that each pgbench script in tools/bench/pgbench runs the statements
maturityd runs for one call of the RPC it stands for, in the same order (scripts/bench, before
it measures P).

scripts/bench turns on log_statement = 'all', makes one RPC call and then one pgbench
transaction per scenario, and notes the byte offsets of the PostgreSQL log around each:

  bench_sqlcheck.py [--one-backend] POSTGRES_LOG NAME:RPC_FROM:RPC_TO:PGB_FROM:PGB_TO ...

(--one-backend: each side of every pair ran on one connection; only the statements of the
backend that logged the most in each window are compared.)

Statements are compared after normalising what legitimately differs: parameter numbers, the
SQL expressions the pgbench scripts use to compute what maturityd sends as a text parameter
('bench-' || $n, 'organizations/' || ..., bench_asm_id($n), bench_uuid7(), bench_ev_id($n, i),
bench_practice($n + i), literal ''), and
trailing semicolons. maturityd's once-a-second health ping (set_config + SELECT 1 on one
connection), its schema check (set_config + the schema_migrations reads) and the events janitor's transaction (the one holding its advisory lock) are dropped. Prints one JSON object: {"ok": bool, "scripts": [...], "mismatched":
[...], "diff": {name: [...]}}; exit status 0 either way (the report says what failed).
"""
import difflib
import json
import re
import sys

LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] LOG:  (?:execute [^:]+|statement): (.*)$")


def statements(path, start, end):
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out.append((m.group(1), m.group(2)))
    # Drop the health monitor's ping: "SELECT 1" and the set_config right before it on the
    # same backend.
    keep = [True] * len(out)
    for i, (pid, sql) in enumerate(out):
        if sql.strip() in ("SELECT 1", "SELECT to_regclass('schema_migrations') IS NOT NULL",
                           "SELECT version FROM schema_migrations ORDER BY version"):
            keep[i] = False
            for j in range(i - 1, -1, -1):
                if out[j][0] == pid:
                    if out[j][1].startswith("SELECT set_config('statement_timeout'"):
                        keep[j] = False
                    break
    # Drop the events janitor's transaction (store_event_prune: BEGIN, set_config, the advisory
    # lock, [the DELETE], COMMIT on one backend), which may run on its own schedule during a
    # check: its own statements only, the two before the lock and the two after it at most.
    for i, (pid, sql) in enumerate(out):
        if "pg_try_advisory_xact_lock(120265331664246)" not in sql:
            continue
        keep[i] = False
        mine = [j for j in range(i - 1, -1, -1) if out[j][0] == pid][:2]
        for j in mine:
            if out[j][1].startswith(("BEGIN", "SELECT set_config('statement_timeout'")):
                keep[j] = False
        for j in [j for j in range(i + 1, len(out)) if out[j][0] == pid][:2]:
            t = out[j][1].strip().rstrip(";")
            if t.startswith("DELETE FROM events") or t in ("COMMIT", "ROLLBACK"):
                keep[j] = False
                if t in ("COMMIT", "ROLLBACK"):
                    break
    kept = [(pid, sql) for (pid, sql), k in zip(out, keep) if k]
    if ONE_BACKEND and kept:
        # Each call runs on one connection, each pgbench -c 1 transaction on one backend: what
        # other backends logged in the window (a janitor's transaction cut in two by the
        # window's edge) is not part of it.
        counts = {}
        for pid, _ in kept:
            counts[pid] = counts.get(pid, 0) + 1
        top = max(counts, key=counts.get)
        kept = [(pid, sql) for pid, sql in kept if pid == top]
    return [norm(sql) for pid, sql in kept]


def norm(s):
    s = s.strip().rstrip(";").strip()
    s = re.sub(r"\$\d+", "$", s)
    s = s.replace("'organizations/bench-' || $ || '/assessments/' || bench_asm_id($)", "$")
    # an EVIDENCE_REPORTED event's resource
    s = re.sub(r"'organizations/bench-' \|\| \$ \|\| '/evidence/' \|\| bench_ev_id\(\$, \d+\)",
               "$", s)
    s = s.replace("('bench-' || $)::text", "$::text")
    s = s.replace("'organizations/bench-' || $", "$")  # an ORGANIZATION_UPDATED event's resource
    s = s.replace("'bench-' || $", "$")
    s = s.replace("'organizations/' || $", "$")  # a BatchReportEvidence audit row
    s = s.replace("bench_asm_id($)::uuid", "$::uuid")
    s = re.sub(r"bench_practice\(\$ \+ \d+\)", "$", s)
    s = re.sub(r"bench_ev_id\(\$, \d+\)::uuid", "$::uuid", s)
    s = s.replace("bench_uuid7()::uuid", "$::uuid")
    s = s.replace("''::text", "$::text")
    s = s.replace("o.id > ''", "o.id > $")
    s = s.replace("$, '', $)", "$, $, $)")  # evidence_uri of the UpdateAnswers upsert
    s = s.replace("$::int, '', '')", "$::int, $, $)")  # request_id, delegator "" (evidence)
    s = s.replace("$::int, $, '')", "$::int, $, $)")  # delegator "" (audit rows)
    s = s.replace("$, '', decode($, 'hex'))", "$, $, decode($, 'hex'))")  # an event's delegator ""
    return s


ONE_BACKEND = False


def main(argv):
    global ONE_BACKEND
    if len(argv) > 1 and argv[1] == "--one-backend":
        ONE_BACKEND = True
        argv = argv[:1] + argv[2:]
    log = argv[1]
    result = {"ok": True, "scripts": [], "mismatched": [], "diff": {}}
    for spec in argv[2:]:
        name, a, b, c, d = spec.split(":")
        rpc = statements(log, int(a), int(b))
        pgb = statements(log, int(c), int(d))
        result["scripts"].append(name)
        if not rpc or rpc != pgb:
            result["ok"] = False
            result["mismatched"].append(name)
            result["diff"][name] = list(difflib.unified_diff(rpc, pgb, "maturityd", "pgbench",
                                                             lineterm="", n=1))[:40]
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
