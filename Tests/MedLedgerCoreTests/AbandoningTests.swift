import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import Synchronization
import Testing

/// Waits `seconds` without honouring cancellation, as a PostgresNIO query on a connection that
/// closed mid-transaction does (forever, there).
private func ignoringCancellation(seconds: Double) async {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume() }
    }
}

@Suite struct AbandoningTests {
    @Test func answersWhatTheOperationAnswers() async throws {
        #expect(try await abandoning("sum", after: .seconds(5)) { 40 + 2 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await abandoning("refusal", after: .seconds(5)) { () async throws -> Int in throw Refused() } }
    }

    @Test func givesUpOnAnOperationThatIgnoresCancellation() async throws {
        let finished = Mutex(false)
        let error = await #expect(throws: AbandonedOperation.self) {
            try await abandoning("a hung write", after: .milliseconds(200)) {
                await ignoringCancellation(seconds: 3)
                finished.withLock { $0 = true }
                return 1
            }
        }
        // Given up on while the operation still ran (it ignores the cancellation).
        #expect(!finished.withLock { $0 })
        #expect(error?.description == "a hung write gave no answer within 0.2 seconds; abandoned")
        // The abandoned operation ends later by itself; its late answer goes nowhere (no crash).
        while !finished.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(100)) }
    }

    @Test func aHungBatchDoesNotStopTheGroupCommitQueue() async throws {
        let queue = GroupCommitQueue<Int, Int>(batchLimit: 10, what: "numbers", shutdownMessage: "stopping", writeLimit: .milliseconds(200))
        let batches = Mutex(0)
        let runner = Task {
            await queue.run(logger: Logger(label: "test")) { items in
                let batch = batches.withLock { n in defer { n += 1 }; return n }
                if batch == 0 { await ignoringCancellation(seconds: 2) }
                return items.map { $0 * 10 }
            }
        }
        defer { runner.cancel() }
        let problem = await #expect(throws: Problem.self) { try await queue.submit([1]) }
        #expect(problem?.status == .serviceUnavailable)
        // The first batch still hangs; the next one is written at once.
        #expect(try await queue.submit([2, 3]) == [20, 30])
    }
}
