import Glibc
import Reactor

/// A unit of store work. It runs on the store thread inside the batch's transaction and returns
/// what to do once the batch's fate is known: `committed` is true when the batch is durable.
/// It is called with nil instead of the database when it cannot run (the transaction could not
/// be opened or was lost, or the queue is full); it must then do nothing but return its
/// completion, which will be called with false.
public typealias StoreJob = @Sendable (SQLiteDatabase?) -> (@Sendable (_ committed: Bool) -> Void)

/// The embedded store's own thread. Loops never touch the disk: they submit jobs, the thread
/// takes every job waiting, runs them in one transaction (each inside a savepoint, so one
/// job's failure does not undo the others) and commits once — one fsync per batch (group
/// commit). Each job's completion then runs; jobs post their results back to the loop that
/// asked (`EventLoop.execute`).
///
/// `@unchecked Sendable`: `queue` is guarded by `mutex`/`condition`; `database` is touched only
/// by the store thread after `start()`.
public final class StoreThread: @unchecked Sendable {
    private let database: SQLiteDatabase
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var queue: [(job: StoreJob, readOnly: Bool)] = []
    private var stopping = false
    private var thread = pthread_t()
    private var running = false
    public let metrics = StoreMetrics()
    /// Changes to device lists and mutes (any thread may read it).
    public var directoryVersion: DirectoryVersion { database.directoryVersion }
    /// Jobs that may wait at once; more are refused at once (a peer that connects, asks and
    /// disconnects in a loop cannot grow the queue without bound).
    public let maxQueued: Int

    public init(database: SQLiteDatabase, maxQueued: Int = 50_000) {
        self.database = database
        self.maxQueued = maxQueued
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    public func start() {
        if let queued = try? database.query("SELECT COUNT(*) FROM messages").first?.first?.integer {
            metrics.add(.queuedMessages, Int(queued))
        }
        running = true
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<StoreThread>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
    }

    /// Queues a job. Any thread. When the queue is full the job is refused on the spot: it is
    /// called with nil and its completion with false.
    /// - Parameter readOnly: the job only reads: it runs without a savepoint of its own (two
    ///   statements fewer), since there is nothing of its own to undo.
    public func submit(readOnly: Bool = false, _ job: @escaping StoreJob) {
        pthread_mutex_lock(&mutex)
        let accepted = queue.count < maxQueued && !stopping
        if accepted {
            queue.append((job, readOnly))
            pthread_cond_signal(&condition)
        }
        pthread_mutex_unlock(&mutex)
        if !accepted {
            metrics.add(.refusedJobs)
            job(nil)(false)
        }
    }

    /// Runs every queued job, then stops the thread and waits for it.
    public func stop() {
        guard running else { return }
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
        running = false
    }

    private func run() {
        var batch: [(job: StoreJob, readOnly: Bool)] = []
        while true {
            pthread_mutex_lock(&mutex)
            while queue.isEmpty && !stopping { pthread_cond_wait(&condition, &mutex) }
            swap(&batch, &queue)
            let done = stopping && batch.isEmpty
            pthread_mutex_unlock(&mutex)
            if done { return }
            runBatch(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func runBatch(_ jobs: [(job: StoreJob, readOnly: Bool)]) {
        var completions: [@Sendable (Bool) -> Void] = []
        completions.reserveCapacity(jobs.count)
        let started = monotonicNanoseconds()
        database.queuedDelta = 0
        // Without a transaction nothing runs: jobs must never commit one by one.
        var open = (try? database.execute("BEGIN IMMEDIATE")) != nil
        for (job, readOnly) in jobs {
            if readOnly && open {
                completions.append(job(database))
                continue
            }
            guard open, (try? database.execute("SAVEPOINT job")) != nil else {
                completions.append(job(nil))
                continue
            }
            completions.append(job(database))
            if (try? database.execute("RELEASE job")) == nil || !database.inTransaction {
                // SQLite rolled the whole transaction back (disk full, I/O error): every job of
                // the batch so far is lost, and the rest must not run in autocommit mode.
                open = false
            }
        }
        var committed = false
        if open {
            if (try? database.execute("COMMIT")) != nil {
                committed = true
            } else {
                _ = try? database.execute("ROLLBACK")
            }
        } else if database.inTransaction {
            _ = try? database.execute("ROLLBACK")
        }
        metrics.add(.batches)
        metrics.add(.operations, jobs.count)
        if committed {
            metrics.add(.queuedMessages, database.queuedDelta)
        } else {
            metrics.add(.failedBatches)
        }
        database.queuedDelta = 0
        metrics.batchLatency.observe(microseconds: Int((monotonicNanoseconds() - started) / 1_000))
        for completion in completions { completion(committed) }
    }

    /// Runs a job and posts its result to `loop` once the batch is durable. A convenience for
    /// request/response work: `body` computes a value (or an error) on the store thread.
    public func request<T: Sendable>(
        on loop: EventLoop, readOnly: Bool = false, _ body: @escaping @Sendable (SQLiteDatabase) throws(StoreError) -> T,
        completion: @escaping @Sendable (Result<T, StoreError>) -> Void
    ) {
        submit(readOnly: readOnly) { database in
            guard let database else {
                let refused = StoreError(operation: "queue", code: 5, message: "store busy or unavailable")
                return { _ in loop.execute { completion(.failure(refused)) } }
            }
            let queuedBefore = database.queuedDelta
            let result = Result { () throws(StoreError) -> T in try body(database) }
            if case .failure = result, !readOnly {
                _ = try? database.execute("ROLLBACK TO job")
                database.queuedDelta = queuedBefore
            }
            return { committed in
                let final: Result<T, StoreError> =
                    committed ? result : .failure(StoreError(operation: "commit", code: 10, message: "batch not committed"))
                loop.execute { completion(final) }
            }
        }
    }
}
