#!/usr/bin/python3
"""Checks every manifest of deploy/kubernetes/ against the binary and the image:

  check_manifests.py SOURCE_DIR MATURITYD_BIN

every maturityd flag and environment variable exists (`maturityd --help`), subcommands exist,
container ports are the ones the flags listen on, probes point at the health port (readiness:
gRPC; liveness: not the database-dependent gRPC check), the grace period outlasts
--shutdown-grace, the pod runs as the image's user with a read-only root filesystem and
resources, the Service, PodDisruptionBudget, NetworkPolicy and ServiceMonitor select the pods
and ports that exist, the migration Job runs `migrate` while the Deployment runs --no-migrate,
and the alerts use metric names the code exports.
"""
import glob
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facts  # noqa: E402

src, maturityd = sys.argv[1], sys.argv[2]
hf = facts.help_facts(maturityd)
metrics = facts.metric_names(src)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


docs = {}
for path in sorted(glob.glob(os.path.join(src, "deploy/kubernetes/*.yaml"))):
    with open(path) as f:
        for d in yaml.safe_load_all(f):
            if d:
                docs.setdefault(d["kind"], []).append((os.path.basename(path), d))
for kind in ["Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Job",
             "ServiceMonitor", "PrometheusRule"]:
    check(kind in docs, f"no {kind} in deploy/kubernetes")
with open(os.path.join(src, "deploy/kubernetes/kustomization.yaml")) as f:
    listed = set(yaml.safe_load(f)["resources"])
for path in glob.glob(os.path.join(src, "deploy/kubernetes/*.yaml")):
    name = os.path.basename(path)
    check(name == "kustomization.yaml" or name in listed, f"kustomization.yaml omits {name}")

with open(os.path.join(src, "docker/Dockerfile")) as f:
    dockerfile = f.read()
image_user = int(re.findall(r"^USER (\d+)", dockerfile, re.M)[-1])
image_ports = {int(p) for line in re.findall(r"^EXPOSE (.*)$", dockerfile, re.M)
               for p in line.split()}


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def flags_of(args):
    """{flag: value} of an args list ("--x=v", "--x v", "--x")."""
    out, i = {}, 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            check(name in hf["flags"], f"unknown flag --{name}")
            if not eq and name != "no-migrate" and i + 1 < len(args) and \
                    not str(args[i + 1]).startswith("--"):
                val = str(args[i + 1])
                i += 1
            out[name] = val
        i += 1
    return out


def check_pod(where, spec, pod_labels):
    sc = spec.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true")
    check(sc.get("runAsUser") == image_user, f"{where}: runAsUser is not the image's {image_user}")
    for c in spec["containers"]:
        csc = c.get("securityContext", {})
        check(csc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable")
        check(csc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation")
        check("ALL" in csc.get("capabilities", {}).get("drop", []), f"{where}: capabilities kept")
        res = c.get("resources", {})
        check(res.get("requests") and res.get("limits"), f"{where}: no resource requests/limits")
        args = [str(a) for a in c.get("args", [])]
        check(args and args[0] in hf["commands"], f"{where}: unknown subcommand {args[:1]}")
        for e in c.get("env", []):
            check(e["name"] in hf["envs"], f"{where}: unknown environment variable {e['name']}")
        yield c, args, flags_of(args[1:])


# --- Deployment --------------------------------------------------------------------------------
for fname, dep in docs.get("Deployment", []):
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{fname}: selector misses the pods")
    for c, args, fl in check_pod(fname, spec, labels):
        check(args[0] == "serve", f"{fname}: the server does not run `serve`")
        check("no-migrate" in fl, f"{fname}: servers migrate at start although a Job does it")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        want = {"grpc": port_of(fl.get("listen", hf["defaults"].get("listen", ":0"))),
                "health": port_of(fl["health-listen"]) if "health-listen" in fl else None,
                "metrics": port_of(fl["metrics-listen"]) if "metrics-listen" in fl else None}
        for name, port in want.items():
            check(port is not None and ports.get(name) == port,
                  f"{fname}: containerPort {name}={ports.get(name)} but the flag says {port}")
            check(port in image_ports, f"{fname}: port {port} is not EXPOSEd by the image")
        for tls in ["tls-cert", "tls-key", "tls-client-ca"]:
            check(tls in fl, f"{fname}: --{tls} missing")
            mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            check(any(fl.get(tls, "").startswith(m + "/") for m in mounts),
                  f"{fname}: --{tls} is not under a mounted volume")

        def probe_port(p):
            for k in ["grpc", "tcpSocket", "httpGet"]:
                if k in p:
                    v = p[k]["port"]
                    return k, ports.get(v, v)
            return None, None

        rk, rp = probe_port(c.get("readinessProbe", {}))
        check(rk == "grpc" and rp == want["health"],
              f"{fname}: readiness is not the gRPC probe on the health port ({rk} {rp})")
        lk, lp = probe_port(c.get("livenessProbe", {}))
        check(lk is not None, f"{fname}: no liveness probe")
        check(lk != "grpc", f"{fname}: liveness follows grpc health, which is NOT_SERVING during a "
                            "database outage: every replica would be restarted")
        check(lp in ports.values(), f"{fname}: liveness probes a port that is not open")
        sk, sp = probe_port(c.get("startupProbe", {}))
        if sk:
            p = c["startupProbe"]
            budget = p.get("periodSeconds", 10) * p.get("failureThreshold", 3)
            check(budget >= int(fl.get("db-wait", hf["defaults"].get("db-wait", 30))),
                  f"{fname}: the startup probe gives up before --db-wait")
        grace = int(fl.get("shutdown-grace", hf["defaults"].get("shutdown-grace", 10)))
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pause = int(pre[-1]) if pre and pre[-1].isdigit() else 0
        check(spec.get("terminationGracePeriodSeconds", 30) > grace + pause,
              f"{fname}: terminationGracePeriodSeconds <= preStop + --shutdown-grace")
    pod_labels = labels

# --- Service, PDB, NetworkPolicy, ServiceMonitor ---------------------------------------------
svc_ports = {}
for fname, svc in docs.get("Service", []):
    sel = svc["spec"]["selector"]
    check(all(pod_labels.get(k) == v for k, v in sel.items()), f"{fname}: selects no pod")
    for p in svc["spec"]["ports"]:
        svc_ports[p["name"]] = p
        check(p["targetPort"] in ports or p["targetPort"] in ports.values(),
              f"{fname}: targetPort {p['targetPort']} is not a container port")
for fname, pdb in docs.get("PodDisruptionBudget", []):
    sel = pdb["spec"]["selector"]["matchLabels"]
    check(all(pod_labels.get(k) == v for k, v in sel.items()), f"{fname}: selects no pod")
for fname, np in docs.get("NetworkPolicy", []):
    sel = np["spec"]["podSelector"]["matchLabels"]
    check(all(pod_labels.get(k) == v for k, v in sel.items()), f"{fname}: selects no pod")
    allowed = {p["port"] for r in np["spec"].get("ingress", []) for p in r.get("ports", [])}
    check(ports["grpc"] in allowed, f"{fname}: the gRPC port is not reachable")
    check(ports["metrics"] in allowed, f"{fname}: the metrics port is not reachable")
    egress = {p["port"] for r in np["spec"].get("egress", []) for p in r.get("ports", [])}
    check(5432 in egress and 53 in egress, f"{fname}: egress lacks PostgreSQL or DNS")
for fname, sm in docs.get("ServiceMonitor", []):
    for ep in sm["spec"]["endpoints"]:
        check(ep["port"] in svc_ports, f"{fname}: port {ep['port']} is not a Service port")
        check(ep.get("path", "/metrics") == "/metrics", f"{fname}: path is not /metrics")

# --- migration Job -----------------------------------------------------------------------------
for fname, job in docs.get("Job", []):
    spec = job["spec"]["template"]["spec"]
    check(spec.get("restartPolicy") in ("Never", "OnFailure"), f"{fname}: restartPolicy")
    for c, args, fl in check_pod(fname, spec, {}):
        check(args[0] == "migrate", f"{fname}: the Job does not run `migrate`")
        check(any(e["name"] == "DATABASE_URL" for e in c.get("env", [])) or
              "database-url" in fl, f"{fname}: no database URL")

# --- alerts --------------------------------------------------------------------------------------
alerts = []
for fname, rule in docs.get("PrometheusRule", []):
    for g in rule["spec"]["groups"]:
        for r in g["rules"]:
            alerts.append(r.get("alert"))
            expr = re.sub(r"\{[^}]*\}", "", r["expr"])  # label matchers are not metric names
            for name in re.findall(r"\b((?:grpc|maturityd|process)_[a-z_]+)\b", expr):
                check(name in metrics, f"{fname}: {r.get('alert')} uses {name}, not exported")
for a in ["MaturitydUnavailable", "MaturitydInternalErrors", "MaturitydSlowCalls",
          "MaturitydPoolSaturated"]:
    check(a in alerts, f"prometheusrule.yaml: the alert {a} of docs/operations.md is missing")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"check_manifests: {sum(len(v) for v in docs.values())} objects: ok")
