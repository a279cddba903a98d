import Synchronization

/// An operation given up after its time limit (`abandoning(after:_:)`).
package struct AbandonedOperation: Error, CustomStringConvertible {
    let what: String
    let limit: Duration
    package var description: String { "\(what) gave no answer within \(limit); abandoned" }
}

/// Runs `operation` in a task of its own and returns its result, or throws `AbandonedOperation`
/// once `limit` has passed (cancelling the task and leaving it to end by itself).
///
/// Why: PostgresNIO (1.33.2) never completes a query written to a connection that closed
/// between two statements of a transaction, as happens when PostgreSQL restarts under load, and
/// that query ignores cancellation. A loop that awaited it (a group-commit writer, an outbox
/// worker) would stop for good while the service still looked healthy. What is abandoned is
/// safe to redo: a transaction on a closed connection cannot commit, and one that was merely
/// slow and commits after all is deduplicated by the idempotency keys it is retried with.
package func abandoning<T: Sendable>(
    _ what: String, after limit: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let outcome = Outcome(continuation)
        let work = Task {
            do {
                outcome.settle(.success(try await operation()))
            } catch {
                outcome.settle(.failure(error))
            }
        }
        outcome.startTimer {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            work.cancel()
            outcome.settle(.failure(AbandonedOperation(what: what, limit: limit)))
        }
    }
}

/// Whichever of the operation and its timer ends first resumes the caller, exactly once.
private final class Outcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var timer: Task<Void, Never>?
    }
    private let state: Mutex<State>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        state = Mutex(State(continuation: continuation))
    }

    func startTimer(_ body: @escaping @Sendable () async -> Void) {
        let timer = Task(operation: body)
        let settled = state.withLock { state in
            state.timer = timer
            return state.continuation == nil
        }
        if settled { timer.cancel() }
    }

    func settle(_ result: Result<T, any Error>) {
        let (continuation, timer) = state.withLock { state in
            defer { state.continuation = nil }
            return (state.continuation, state.timer)
        }
        guard let continuation else { return }
        timer?.cancel()
        continuation.resume(with: result)
    }
}
