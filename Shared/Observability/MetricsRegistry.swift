public import Prometheus

/// The process-wide Prometheus registry: `main` bootstraps swift-metrics with a factory over it,
/// and `/metrics` renders it. Tests never bootstrap, so the registry simply stays empty there.
public enum MetricsRegistry {
    public static let shared = PrometheusCollectorRegistry()
}
