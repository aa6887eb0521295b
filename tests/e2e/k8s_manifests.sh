#!/bin/sh
# k8s_manifests.sh: the Kubernetes manifests parse, and every pod meets the "restricted" Pod Security Standard except the agent's documented host access.
. "$top_srcdir/tests/lib.sh"
tmpdir
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "1..0 # SKIP python3-yaml is not installed (contrib/install-deps.sh --test)"
    exit 0
fi
plan 2
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
done_testing
