#!/bin/sh
# k8s_manifests.sh: the Kubernetes manifests parse, every pod meets the "restricted" Pod Security Standard except the agent's documented host access, the configurations they mount pass pipit check, the agent sees the node's /proc and /var/log, and the aggregator serves its endpoints to its probes and Service.
. "$top_srcdir/tests/lib.sh"
tmpdir
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "1..0 # SKIP python3-yaml is not installed (contrib/install-deps.sh --test)"
    exit 0
fi
plan 5
python3 - "$top_srcdir/contrib/kubernetes" >"$T/out" 2>&1 <<'PY'
import glob, sys, yaml

# What the restricted profile checks (kubernetes.io/docs/concepts/security/
# pod-security-standards), and the exceptions the agent documents.
ALLOWED_HOST = {"pipit-agent": {"hostPath", "hostNetwork", "hostPID"}}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
problems, pods = [], 0
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") not in ("DaemonSet", "Deployment", "StatefulSet"):
            continue
        pods += 1
        name = doc["metadata"]["name"]
        spec = doc["spec"]["template"]["spec"]
        allowed = ALLOWED_HOST.get(name, set())
        where = "%s: %s" % (path.split("/")[-1], name)
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host) and host not in allowed:
                problems.append("%s: %s" % (where, host))
        for v in spec.get("volumes", []):
            kind = [k for k in v if k != "name"][0]
            if kind not in RESTRICTED_VOLUMES and kind not in allowed:
                problems.append("%s: volume %s is %s" % (where, v["name"], kind))
        psc = spec.get("securityContext", {})
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext", {})
            cw = "%s/%s" % (where, c["name"])
            if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                problems.append(cw + ": runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                problems.append(cw + ": runAsUser 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(cw + ": allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(cw + ": privileged")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                problems.append(cw + ": capabilities do not drop ALL")
            if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                problems.append(cw + ": adds capabilities")
            sp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            if sp.get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(cw + ": no RuntimeDefault seccomp profile")
print("pods: %d" % pods)
for p in problems:
    print("problem: " + p)
sys.exit(1 if problems or pods == 0 else 0)
PY
st=$?
grep -q '^pods: [1-9]' "$T/out"
ok $? "the manifests parse and define pods ($(sed -n 's/^pods: //p' "$T/out"))"
ok $st "every container meets the restricted profile, host access only where documented" ||
    sed 's/^/#   /' "$T/out"

# Each container's -c FILE, written out of its ConfigMap, and what the
# checks below look at: mounts, probes, ports, the Service.
python3 - "$top_srcdir/contrib/kubernetes" "$T" >"$T/facts" 2>&1 <<'PY'
import glob, sys, yaml
docs = [d for p in sorted(glob.glob(sys.argv[1] + "/*.yaml")) for d in yaml.safe_load_all(open(p)) if d]
maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
for d in docs:
    if d["kind"] not in ("DaemonSet", "Deployment"):
        continue
    name, spec = d["metadata"]["name"], d["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec["containers"]:
        args = c.get("args", [])
        conf = args[args.index("-c") + 1]
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for path, m in mounts.items():
            v = vols[m["name"]]
            if "configMap" in v and conf.startswith(path.rstrip("/") + "/"):
                text = maps[v["configMap"]["name"]][conf[len(path.rstrip("/")) + 1:]]
                open("%s/%s.yaml" % (sys.argv[2], name), "w").write(text)
                cfg = yaml.safe_load(text)
                print("config %s %s/%s.yaml" % (name, sys.argv[2], name))
                print("role %s %s" % (name, cfg.get("agent", {}).get("role", "agent")))
                print("listen %s %s" % (name, cfg.get("http", {}).get("listen", "-")))
                for i in cfg.get("inputs", []):
                    if "proc_path" in i:
                        print("proc_path %s %s" % (name, i["proc_path"]))
            if "hostPath" in v:
                print("host %s %s %s %s" % (name, v["hostPath"]["path"], path,
                                            "ro" if m.get("readOnly") else "rw"))
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe"):
            g = c.get(probe, {}).get("httpGet")
            if g:
                print("%s %s %s %s" % (probe, name, g["path"], ports.get(g["port"], g["port"])))
        for p in ports.values():
            print("port %s %s" % (name, p))
for d in docs:
    if d["kind"] == "Service":
        for p in d["spec"]["ports"]:
            print("service %s %s" % (d["spec"]["selector"].get("app"), p.get("targetPort")))
PY
[ $? = 0 ] || sed 's/^/#   /' "$T/facts"
fact() { awk -v k="$1" -v n="$2" '$1 == k && $2 == n { $1 = $2 = ""; sub(/^  /, ""); print }' "$T/facts"; }

bad=
for f in $(awk '$1 == "config" { print $3 }' "$T/facts"); do
    "$PIPIT" check -c "$f" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1 ||
        { bad="$bad $(basename "$f")"; sed 's/^/#   /' "$T/check.out"; }
done
[ "$(grep -c '^config ' "$T/facts")" = 2 ] && [ -z "$bad" ]
ok $? "the configuration each container reads passes pipit check${bad:+ (refused:$bad)}"

proc=$(fact host pipit-agent | awk '$1 == "/proc" && $3 == "ro" { print $2 }')
[ -n "$proc" ] && fact host pipit-agent | grep -q '^/var/log /var/log ro$' &&
    [ -n "$(fact proc_path pipit-agent)" ] &&
    [ -z "$(fact proc_path pipit-agent | grep -vx "$proc")" ]
ok $? "agent: the node's /proc (at $proc, which every proc_path names) and /var/log mounted read-only" ||
    sed 's/^/#   /' "$T/facts"

lport=$(fact listen pipit-aggregator | sed -n 's/^[0-9.]*:\([0-9]*\)$/\1/p')
[ "$(fact role pipit-aggregator)" = aggregator ] && [ -n "$lport" ] &&
    ! fact listen pipit-aggregator | grep -q '^127\.' &&
    [ "$(fact port pipit-aggregator)" = "$lport" ] &&
    [ "$(fact livenessProbe pipit-aggregator)" = "/healthz $lport" ] &&
    [ "$(fact readinessProbe pipit-aggregator)" = "/readyz $lport" ] &&
    [ -n "$(fact service pipit-aggregator)" ]
ok $? "aggregator: role aggregator on the pod's port $lport, probed on /healthz and /readyz, behind a Service" ||
    sed 's/^/#   /' "$T/facts"
done_testing
