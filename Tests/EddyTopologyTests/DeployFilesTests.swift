import EddyCore
import EddyTopology
import Foundation
import Testing
import Yams

/// The deployment files in Deploy/: every YAML parses, the Kubernetes
/// documents are well-formed, the compose file has its services, the
/// topology shipped in the ConfigMap is the repository's clickstream topology,
/// and the Grafana dashboard queries only metrics the code exports.
@Suite struct DeployFilesTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let deploy = root.appendingPathComponent("Deploy")

    /// Every `.yml` / `.yaml` file under Deploy/, relative to the repository.
    static func yamlFiles() -> [String] {
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: deploy.path) else { return [] }
        var files: [String] = []
        while let p = e.nextObject() as? String {
            if p.hasSuffix(".yml") || p.hasSuffix(".yaml") { files.append("Deploy/" + p) }
        }
        return files.sorted()
    }

    static func read(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
    }

    /// All documents of a YAML file (empty documents dropped).
    static func documents(_ relative: String) throws -> [Any] {
        var docs: [Any] = []
        for doc in try Yams.load_all(yaml: try read(relative)) where !(doc is NSNull) {
            docs.append(doc)
        }
        return docs
    }

    @Test func theDeployFolderHasItsFiles() {
        let files = Self.yamlFiles()
        for f in ["Deploy/docker-compose.yml", "Deploy/prometheus.yml", "Deploy/k8s/kustomization.yaml",
                  "Deploy/k8s/namespace.yaml", "Deploy/k8s/configmap-topology.yaml", "Deploy/k8s/worker-deployment.yaml",
                  "Deploy/k8s/worker-pdb.yaml", "Deploy/k8s/server-deployment.yaml", "Deploy/k8s/server-service.yaml",
                  "Deploy/grafana/provisioning/datasources/prometheus.yml", "Deploy/grafana/provisioning/dashboards/eddy.yml"] {
            #expect(files.contains(f), "\(f) is missing")
        }
    }

    @Test(arguments: yamlFiles())
    func everyYAMLFileParses(_ file: String) throws {
        let docs = try Self.documents(file)
        #expect(!docs.isEmpty, "\(file) has no document")
    }

    @Test func kubernetesDocumentsHaveKindAPIVersionAndName() throws {
        let files = Self.yamlFiles().filter { $0.hasPrefix("Deploy/k8s/") }
        var kinds: [String] = []
        for file in files {
            for doc in try Self.documents(file) {
                let d = try #require(doc as? [String: Any], "\(file): a document is not a mapping")
                let kind = try #require(d["kind"] as? String, "\(file): no kind")
                #expect((d["apiVersion"] as? String)?.isEmpty == false, "\(file): no apiVersion")
                if kind == "Kustomization" {
                    // Every manifest is listed, and every listed file exists.
                    let resources = d["resources"] as? [String] ?? []
                    for r in resources {
                        #expect(FileManager.default.fileExists(atPath: Self.deploy.appendingPathComponent("k8s/\(r)").path),
                                "kustomization lists \(r), which does not exist")
                    }
                    for f in files where f != file {
                        #expect(resources.contains(String(f.dropFirst("Deploy/k8s/".count))), "\(f) is not in kustomization.yaml")
                    }
                    continue
                }
                let metadata = try #require(d["metadata"] as? [String: Any], "\(file): no metadata")
                #expect((metadata["name"] as? String)?.isEmpty == false, "\(file): no metadata.name")
                kinds.append(kind)
            }
        }
        for kind in ["Namespace", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service"] {
            #expect(kinds.contains(kind), "no \(kind) in Deploy/k8s")
        }
    }

    @Test func composeHasTheServices() throws {
        let compose = try #require(try Self.documents("Deploy/docker-compose.yml").first as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        for name in ["kafka", "redis", "worker", "server", "prometheus", "grafana"] {
            #expect(services[name] != nil, "docker-compose.yml has no \(name) service")
        }
        // Redis runs with the settings the README's Production section explains.
        let redis = try #require(services["redis"] as? [String: Any])
        let command = (redis["command"] as? [Any] ?? []).map { "\($0)" }.joined(separator: " ")
        #expect(command.contains("--appendonly yes"))
        #expect(command.contains("--hash-max-listpack-value 1024"))
    }

    @Test func theConfigMapTopologyIsTheRepositoryTopology() throws {
        let docs = try Self.documents("Deploy/k8s/configmap-topology.yaml")
        let configMap = try #require(docs.compactMap { $0 as? [String: Any] }.first { $0["kind"] as? String == "ConfigMap" })
        let data = try #require(configMap["data"] as? [String: Any])
        let embedded = try #require(data["clickstream.yaml"] as? String)
        #expect(embedded == (try Self.read("Topologies/clickstream.yaml")))
        let topology = try TopologyLoader(environment: [:]).parse(embedded, file: "configmap-topology.yaml")
        #expect(topology.name == "clickstream")
    }

    // MARK: Grafana

    static let dashboardPath = "Deploy/grafana/eddy.json"

    static func dashboard() throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent(dashboardPath))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "eddy.json is not an object")
    }

    /// Every panel, rows' nested panels included.
    static func panels(_ dashboard: [String: Any]) -> [[String: Any]] {
        func walk(_ list: [Any]) -> [[String: Any]] {
            list.compactMap { $0 as? [String: Any] }.flatMap { [$0] + walk($0["panels"] as? [Any] ?? []) }
        }
        return walk(dashboard["panels"] as? [Any] ?? [])
    }

    /// The PromQL of every panel target and every query variable.
    static func queries(_ dashboard: [String: Any]) -> [(where: String, expr: String)] {
        var out: [(String, String)] = []
        for p in panels(dashboard) {
            for t in p["targets"] as? [[String: Any]] ?? [] {
                out.append(("panel \(p["title"] ?? "?")", t["expr"] as? String ?? ""))
            }
        }
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for v in variables where v["type"] as? String == "query" {
            out.append(("variable \(v["name"] ?? "?")", v["definition"] as? String ?? ""))
        }
        return out
    }

    static func matches(_ pattern: String, in text: String, group: Int = 1) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map {
            ns.substring(with: $0.range(at: group))
        }
    }

    /// The metric names the code exports, read from the Swift sources under
    /// Sources/ (searched recursively, so moving a file between modules does
    /// not break this): every string literal `"eddy_..."`. Histograms are
    /// those written with `name: "eddy_..."` (`PrometheusText.histogram`,
    /// `export(..., name:)`) or timed with `Timer(label: "eddy_...")`; they
    /// also export `_bucket`, `_sum` and `_count`.
    static func exportedMetrics() throws -> (all: Set<String>, histograms: Set<String>) {
        let sources = root.appendingPathComponent("Sources")
        let fm = FileManager.default
        var all: Set<String> = [], histograms: Set<String> = []
        guard let e = fm.enumerator(atPath: sources.path) else { return ([], []) }
        while let p = e.nextObject() as? String {
            guard p.hasSuffix(".swift") else { continue }
            let text = try String(contentsOf: sources.appendingPathComponent(p), encoding: .utf8)
            all.formUnion(try matches(#""(eddy_[a-z0-9_]+)""#, in: text))
            histograms.formUnion(try matches(#"(?:\bname:|Timer\(label:)\s*"(eddy_[a-z0-9_]+)""#, in: text))
        }
        return (all, histograms)
    }

    @Test func theDashboardIsGrafanaJSONWithAQueryInEveryPanel() throws {
        let d = try Self.dashboard()
        #expect(d["uid"] as? String == "eddy")
        #expect((d["schemaVersion"] as? Int).map { $0 >= 36 } == true, "schemaVersion \(d["schemaVersion"] ?? "none")")
        let panels = Self.panels(d)
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count, "a panel has no id")
        #expect(Set(ids).count == ids.count, "panel ids are not unique")
        let visual = panels.filter { $0["type"] as? String != "row" }
        #expect(visual.count >= 20, "only \(visual.count) panels")
        for p in visual {
            let title = p["title"] as? String ?? "?"
            #expect(p["gridPos"] is [String: Any], "\(title): no gridPos")
            let targets = p["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "\(title): no query")
            for t in targets {
                #expect((t["expr"] as? String)?.contains("eddy_") == true || (t["expr"] as? String)?.contains("up{") == true,
                        "\(title): target \(t["refId"] ?? "?") has no Prometheus query")
            }
            // Every datasource reference is the provisioned Prometheus (uid `prometheus`), never `${DS_...}`.
            for ds in [p["datasource"]] + targets.map({ $0["datasource"] }) {
                let ref = ds as? [String: Any]
                #expect(ref?["type"] as? String == "prometheus" && ref?["uid"] as? String == "prometheus",
                        "\(title): datasource \(String(describing: ds))")
            }
        }
        // Rows for what the dashboard is for.
        let rows = panels.filter { $0["type"] as? String == "row" }.compactMap { $0["title"] as? String }
        for row in ["Throughput", "Consumer lag", "Freshness and latency", "Flushes and Redis writes",
                    "Errors and dead letters", "Keys and state", "Feature server"] {
            #expect(rows.contains(row), "no row \(row)")
        }
    }

    @Test func theDashboardQueriesOnlyMetricsTheCodeExports() throws {
        let (exported, histograms) = try Self.exportedMetrics()
        // A sanity floor: if the scan finds nothing, the sources moved.
        for name in ["eddy_worker_events_consumed_total", "eddy_worker_consumer_lag", "eddy_http_requests_total"] {
            #expect(exported.contains(name), "\(name) not found under Sources/: the scan is broken")
        }
        #expect(histograms.isSuperset(of: ["eddy_worker_kafka_freshness_seconds", "eddy_worker_flush_duration_seconds",
                                           "eddy_http_request_duration_seconds"]),
                "histograms found: \(histograms.sorted())")
        let prometheusOwn: Set<String> = ["up"]
        let d = try Self.dashboard()
        var used: Set<String> = []
        for (place, expr) in Self.queries(d) {
            #expect(!expr.isEmpty, "\(place): empty query")
            // Metric names: every eddy_ identifier, and any identifier before a selector `{`.
            var names = Set(try Self.matches(#"\b(eddy_[a-zA-Z0-9_]+)"#, in: expr))
            names.formUnion(try Self.matches(#"(?:^|[^a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\{"#, in: expr))
            for name in names {
                used.insert(name)
                if exported.contains(name) || prometheusOwn.contains(name) { continue }
                var base: String?
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    base = String(name.dropLast(suffix.count))
                }
                if let base, histograms.contains(base) { continue }
                Issue.record("\(place): \(name) is not a metric the code exports (\(expr))")
            }
            // Histogram quantiles read `_bucket` series.
            if expr.contains("histogram_quantile") {
                #expect(expr.contains("_bucket{"), "\(place): histogram_quantile without _bucket")
            }
        }
        // The worker and server metrics the dashboard is for are all used.
        for name in ["eddy_worker_events_consumed_total", "eddy_worker_events_applied_total", "eddy_worker_consumer_lag",
                     "eddy_worker_kafka_freshness_seconds_bucket", "eddy_worker_pipeline_latency_seconds_bucket",
                     "eddy_worker_flush_duration_seconds_bucket", "eddy_worker_entities_written_total",
                     "eddy_worker_writes_fenced_total", "eddy_worker_dead_letters_total", "eddy_worker_events_invalid_total",
                     "eddy_worker_redis_errors_total", "eddy_worker_kafka_errors_total", "eddy_worker_commit_errors_total",
                     "eddy_worker_keys_in_memory", "eddy_worker_keys_evicted_total", "eddy_worker_keys_loaded_total",
                     "eddy_http_requests_total", "eddy_http_request_duration_seconds_bucket", "eddy_feature_value_bucket"] {
            #expect(used.contains(name), "the dashboard does not use \(name)")
        }
    }

    @Test func theDashboardVariablesAreDefined() throws {
        let d = try Self.dashboard()
        let variables = ((d["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        for name in ["worker_job", "worker", "server_job", "server"] {
            #expect(variables.contains(name), "no template variable \(name)")
        }
        let builtIn: Set<String> = ["__rate_interval", "__interval", "__range"]
        for (place, expr) in Self.queries(d) {
            for v in try Self.matches(#"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)"#, in: expr) where !builtIn.contains(v) {
                #expect(variables.contains(v), "\(place) uses $\(v), which is not defined")
            }
        }
        for p in Self.panels(d) {
            if let r = p["repeat"] as? String { #expect(variables.contains(r), "panel repeats over undefined $\(r)") }
        }
    }

    @Test func grafanaIsProvisionedInCompose() throws {
        let compose = try #require(try Self.documents("Deploy/docker-compose.yml").first as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        let grafana = try #require(services["grafana"] as? [String: Any], "no grafana service")
        let image = try #require(grafana["image"] as? String)
        #expect(image.hasPrefix("grafana/grafana:") && !image.hasSuffix(":latest"), "image \(image) is not pinned")
        #expect((grafana["ports"] as? [Any] ?? []).map { "\($0)" }.contains("3000:3000"))
        let env = grafana["environment"] as? [String: Any] ?? [:]
        #expect("\(env["GF_AUTH_ANONYMOUS_ENABLED"] ?? "")" == "true")
        #expect("\(env["GF_AUTH_ANONYMOUS_ORG_ROLE"] ?? "")" == "Viewer")
        // Mounts: host path (relative to Deploy/) -> container path.
        var mounts: [String: String] = [:]
        for v in grafana["volumes"] as? [String] ?? [] {
            let parts = v.split(separator: ":").map(String.init)
            if parts.count >= 2 { mounts[parts[1]] = parts[0] }
        }
        #expect(mounts["/etc/grafana/provisioning"] == "./grafana/provisioning")
        let dashboardMount = try #require(mounts.first { $0.value == "./grafana/eddy.json" }?.key, "eddy.json is not mounted")

        // The datasource is the compose Prometheus under the uid the panels use.
        let dsFile = "Deploy/grafana/provisioning/datasources/prometheus.yml"
        let ds = try #require(try Self.documents(dsFile).first as? [String: Any])
        let sources = ds["datasources"] as? [[String: Any]] ?? []
        let prometheus = try #require(sources.first { $0["uid"] as? String == "prometheus" }, "no datasource with uid prometheus")
        #expect(prometheus["type"] as? String == "prometheus")
        #expect(prometheus["url"] as? String == "http://prometheus:9090")
        #expect(services["prometheus"] != nil)

        // The dashboard provider reads the folder eddy.json is mounted in.
        let providerFile = "Deploy/grafana/provisioning/dashboards/eddy.yml"
        let provider = try #require(try Self.documents(providerFile).first as? [String: Any])
        let providers = provider["providers"] as? [[String: Any]] ?? []
        let paths = providers.compactMap { ($0["options"] as? [String: Any])?["path"] as? String }
        #expect(paths.contains { dashboardMount.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") },
                "the provider reads \(paths), eddy.json is mounted at \(dashboardMount)")
    }

    @Test func prometheusScrapesTheWorkersAndTheServer() throws {
        let config = try #require(try Self.documents("Deploy/prometheus.yml").first as? [String: Any])
        let jobs = config["scrape_configs"] as? [[String: Any]] ?? []
        let text = try Self.read("Deploy/prometheus.yml")
        #expect(jobs.contains { $0["job_name"] as? String == "eddy-worker" })
        #expect(jobs.contains { $0["job_name"] as? String == "eddy-server" })
        #expect(text.contains("names: [worker]") && text.contains("port: 9100"), "workers are not scraped at worker:9100")
        #expect(text.contains("server:8080"), "the server is not scraped at server:8080")
    }
}
