import Foundation
import Hummingbird
import Metrics
import Prometheus

/// `eddy_http_requests_total{route,method,status}` and
/// `eddy_http_request_duration_seconds{route,method,status}` (swift-metrics
/// Counter and Timer, written into the hub's Prometheus registry). `route`
/// is the matched route pattern (`/v1/features/{topology}/{key}`), or
/// `unmatched`, so keys never become label values.
final class RequestMetrics: @unchecked Sendable {
    struct Key: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var cache: [Key: (Metrics.Counter, Metrics.Timer)] = [:]

    init(factory: PrometheusMetricsFactory) { self.factory = factory }

    func record(route: String, method: String, status: Int, nanoseconds: Int64) {
        let metrics = self.metrics(route: route, method: method, status: status)
        metrics.count.increment()
        metrics.duration.recordNanoseconds(nanoseconds)
    }

    /// The counter and timer of one route, method and status (made on first use).
    func metrics(route: String, method: String, status: Int) -> (count: Metrics.Counter, duration: Metrics.Timer) {
        let key = Key(route: route, method: method, status: status)
        lock.lock()
        let metrics: (Metrics.Counter, Metrics.Timer)
        if let m = cache[key] {
            metrics = m
        } else {
            let dimensions = [("route", route), ("method", method), ("status", String(status))]
            metrics = (Metrics.Counter(label: "eddy_http_requests_total", dimensions: dimensions, factory: factory),
                       Metrics.Timer(label: "eddy_http_request_duration_seconds", dimensions: dimensions, factory: factory))
            cache[key] = metrics
        }
        lock.unlock()
        return metrics
    }
}

/// Wraps the router's responder to time every request, matched or not.
struct MeteredResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context: RequestContext {
    typealias Context = Inner.Context
    let inner: Inner
    let metrics: RequestMetrics

    func respond(to request: Request, context: Context) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            var response = try await inner.respond(to: request, context: context)
            if response.status == .notFound, context.endpointPath == "NotFound" {
                response = EddyHTTPServer.error(.notFound, "no route \(request.method) \(request.uri.path)")
            }
            record(request, context, status: response.status.code, start: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(request, context, status: status, start: start)
            throw error
        }
    }

    func record(_ request: Request, _ context: Context, status: Int, start: UInt64) {
        // The router stores the matched pattern ("NotFound" when none matched).
        let path = context.endpointPath
        let route = path == nil || path == "NotFound" ? "unmatched" : path!
        metrics.record(route: route, method: request.method.rawValue, status: status,
                       nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}
