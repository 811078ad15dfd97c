import EddyCore
import EddyTopology
import Foundation
import Testing
import Yams

/// The deployment files in Deploy/: every YAML parses, the Kubernetes
/// documents are well-formed, the compose file has its services, and the
/// topology shipped in the ConfigMap is the repository's clickstream topology.
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
                  "Deploy/k8s/worker-pdb.yaml", "Deploy/k8s/server-deployment.yaml", "Deploy/k8s/server-service.yaml"] {
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
        for name in ["kafka", "redis", "worker", "server", "prometheus"] {
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
}
