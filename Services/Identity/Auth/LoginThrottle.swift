import Foundation

/// Failed logins per source address in a sliding window. In memory: it slows down guessing from
/// one address against many accounts (per-account lockout lives in the database). With several
/// identity instances each counts its own share.
actor LoginThrottle {
    let limit: Int
    let window: TimeInterval
    var failures: [String: [Date]] = [:]
    /// Bounds memory under a flood from many addresses.
    let maxAddresses = 100_000

    init(limit: Int, windowSeconds: Int) {
        self.limit = limit
        self.window = TimeInterval(windowSeconds)
    }

    /// Seconds to wait when the address is over its limit, nil when it may try.
    func retryAfter(_ address: String) -> Int? {
        let now = Date()
        guard let recent = failures[address]?.filter({ now.timeIntervalSince($0) < window }) else { return nil }
        failures[address] = recent.isEmpty ? nil : recent
        guard recent.count >= limit, let oldest = recent.first else { return nil }
        return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
    }

    func recordFailure(_ address: String) {
        if failures[address] == nil && failures.count >= maxAddresses { failures.removeAll(keepingCapacity: true) }
        let now = Date()
        var recent = (failures[address] ?? []).filter { now.timeIntervalSince($0) < window }
        recent.append(now)
        failures[address] = Array(recent.suffix(limit))
    }
}
