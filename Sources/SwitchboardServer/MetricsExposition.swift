import Chat
import HTTP
import Reactor
import Store
import Wire

/// The node's metrics in the Prometheus text format (0.0.4), summed over the loops' counters
/// at scrape time (PROTOCOL.md section 25). Any thread: every counter is a relaxed atomic.
struct MetricsExposition {
    let loops: [EventLoop]
    let sessions: [SessionMetrics]
    let http: [HTTPMetrics]
    let push: [PushCounters]
    let store: StoreMetrics

    func render() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ value: Int) { out += "\(name) \(value)\n" }
        func labelled(_ name: String, _ labels: String, _ value: Int) { out += "\(name){\(labels)} \(value)\n" }
        func session(_ counter: SessionMetrics.Counter) -> Int { sessions.reduce(0) { $0 + $1.value(counter) } }
        func web(_ counter: HTTPMetrics.Counter) -> Int { http.reduce(0) { $0 + $1.value(counter) } }
        func pushed(_ counter: PushCounters.Counter) -> Int { push.reduce(0) { $0 + $1.value(counter) } }
        func histogram(_ name: String, _ help: String, _ parts: [AtomicHistogram]) {
            family(name, "histogram", help)
            guard let first = parts.first else { return }
            var cumulative = [Int](repeating: 0, count: first.boundsMicroseconds.count + 1)
            var sum = 0
            for part in parts {
                for (index, value) in part.cumulative().enumerated() { cumulative[index] += value }
                sum += part.sumMicroseconds
            }
            for (index, bound) in first.boundsMicroseconds.enumerated() {
                labelled("\(name)_bucket", "le=\"\(seconds(bound))\"", cumulative[index])
            }
            labelled("\(name)_bucket", "le=\"+Inf\"", cumulative.last!)
            out += "\(name)_sum \(seconds(sum))\n"
            sample("\(name)_count", cumulative.last!)
        }

        let sessionsOpen = session(.connectionsOpened) - session(.connectionsClosed)
        let streamsOpen = web(.streamsOpened) - web(.streamsClosed)
        family("switchboard_connections", "gauge", "Open connections by transport (native sessions; HTTP and HTTPS connections).")
        labelled("switchboard_connections", "transport=\"native\"", sessionsOpen - streamsOpen)
        labelled("switchboard_connections", "transport=\"http\"", web(.plainOpened) - web(.plainClosed))
        labelled("switchboard_connections", "transport=\"https\"", web(.tlsOpened) - web(.tlsClosed))
        family("switchboard_connections_opened_total", "counter", "Connections opened by transport.")
        labelled("switchboard_connections_opened_total", "transport=\"native\"", session(.connectionsOpened) - web(.streamsOpened))
        labelled("switchboard_connections_opened_total", "transport=\"http\"", web(.plainOpened))
        labelled("switchboard_connections_opened_total", "transport=\"https\"", web(.tlsOpened))
        family("switchboard_admission_pauses_total", "counter",
               "Times a native listener stopped accepting because its loop held --max-opening connections in their handshake.")
        sample("switchboard_admission_pauses_total", loops.reduce(0) { $0 + $1.counters.admissionPauses.load(ordering: .relaxed) })
        family("switchboard_opening_evictions_total", "counter",
               "Connections closed in their handshake because their peer sent nothing for 3 s while new ones waited for admission.")
        sample("switchboard_opening_evictions_total", loops.reduce(0) { $0 + $1.counters.openingEvictions.load(ordering: .relaxed) })
        family("switchboard_fallback_streams", "gauge", "Sessions carried by the HTTP fallback (POST /v1/stream).")
        sample("switchboard_fallback_streams", streamsOpen)

        family("switchboard_handshakes_total", "counter", "Noise handshakes by pattern and outcome.")
        labelled("switchboard_handshakes_total", "pattern=\"xx\",outcome=\"ok\"", session(.handshakesXX))
        labelled("switchboard_handshakes_total", "pattern=\"ik\",outcome=\"ok\"", session(.handshakesIK))
        labelled("switchboard_handshakes_total", "pattern=\"xxfallback\",outcome=\"ok\"", session(.handshakesFallback))
        labelled("switchboard_handshakes_total", "pattern=\"any\",outcome=\"failed\"", session(.handshakeFailures))
        labelled("switchboard_handshakes_total", "pattern=\"any\",outcome=\"timeout\"", session(.handshakeTimeouts))
        labelled("switchboard_handshakes_total", "pattern=\"any\",outcome=\"login_refused\"", session(.loginsRefused))
        family("switchboard_ik_static_secret_total", "counter",
               "IK handshakes whose static-static agreement came from the loop's cache (hit) or an X25519 operation (miss); --handshake-cache.")
        labelled("switchboard_ik_static_secret_total", "result=\"hit\"", session(.ikStaticSecretHits))
        labelled("switchboard_ik_static_secret_total", "result=\"miss\"", session(.ikStaticSecretMisses))
        family("switchboard_tls_handshakes_total", "counter", "TLS handshakes on the HTTPS listeners by outcome.")
        labelled("switchboard_tls_handshakes_total", "outcome=\"ok\"", web(.tlsHandshakes))
        labelled("switchboard_tls_handshakes_total", "outcome=\"failed\"", web(.tlsHandshakeFailures))

        family("switchboard_frames_total", "counter", "Encrypted transport frames.")
        labelled("switchboard_frames_total", "direction=\"in\"", session(.framesIn))
        labelled("switchboard_frames_total", "direction=\"out\"", session(.framesOut))
        family("switchboard_bytes_total", "counter", "Bytes read from and written to sockets, every transport.")
        labelled("switchboard_bytes_total", "direction=\"in\"", loops.reduce(0) { $0 + $1.counters.bytesRead.load(ordering: .relaxed) })
        labelled("switchboard_bytes_total", "direction=\"out\"", loops.reduce(0) { $0 + $1.counters.bytesWritten.load(ordering: .relaxed) })

        family("switchboard_messages_accepted_total", "counter", "Messages accepted from senders: committed to the store, or sent directly.")
        sample("switchboard_messages_accepted_total", session(.messagesAccepted))
        family("switchboard_messages_routed_total", "counter", "Copies of accepted messages routed to recipient devices.")
        sample("switchboard_messages_routed_total", session(.copiesRouted))
        family("switchboard_direct_copies_total", "counter",
               "Copies sent directly that their device acknowledged (delivered) or that were stored instead (stored).")
        labelled("switchboard_direct_copies_total", "outcome=\"delivered\"", session(.directDelivered))
        labelled("switchboard_direct_copies_total", "outcome=\"stored\"", session(.directStored))
        family("switchboard_deliveries_total", "counter", "Deliver stanzas written to devices (messages and receipts).")
        sample("switchboard_deliveries_total", session(.deliveries))
        family("switchboard_offline_queue_messages", "gauge", "Deliveries stored and waiting for their device's acknowledgement.")
        sample("switchboard_offline_queue_messages", store.value(.queuedMessages))

        family("switchboard_store_batches_total", "counter", "Store transactions (group commits).")
        sample("switchboard_store_batches_total", store.value(.batches))
        family("switchboard_store_batch_operations_total", "counter", "Jobs committed in store batches (divide by batches for the mean batch size).")
        sample("switchboard_store_batch_operations_total", store.value(.operations))
        family("switchboard_store_failed_batches_total", "counter", "Store batches rolled back.")
        sample("switchboard_store_failed_batches_total", store.value(.failedBatches))
        family("switchboard_store_refused_jobs_total", "counter", "Store jobs refused because the queue was full.")
        sample("switchboard_store_refused_jobs_total", store.value(.refusedJobs))
        histogram("switchboard_store_batch_seconds", "Time from a batch's BEGIN to its durable COMMIT.", [store.batchLatency])

        family("switchboard_push_total", "counter", "Push gateway notifications by outcome.")
        labelled("switchboard_push_total", "outcome=\"delivered\"", pushed(.delivered))
        labelled("switchboard_push_total", "outcome=\"failed_attempt\"", pushed(.failedAttempts))
        labelled("switchboard_push_total", "outcome=\"abandoned\"", pushed(.abandoned))
        labelled("switchboard_push_total", "outcome=\"dropped\"", pushed(.dropped))
        labelled("switchboard_push_total", "outcome=\"coalesced\"", pushed(.coalesced))

        family("switchboard_protocol_errors_total", "counter", "Fatal protocol errors sent to clients, by code.")
        for code in ErrorCode.allNamed where code.isFatal {
            let count = sessions.reduce(0) { $0 + $1.errors(code: code.rawValue) }
            if count > 0 { labelled("switchboard_protocol_errors_total", "code=\"\(code.name)\"", count) }
        }
        family("switchboard_http_requests_total", "counter", "HTTP responses by status class.")
        labelled("switchboard_http_requests_total", "status=\"1xx\"", web(.status1xx))
        labelled("switchboard_http_requests_total", "status=\"2xx\"", web(.status2xx))
        labelled("switchboard_http_requests_total", "status=\"3xx\"", web(.status3xx))
        labelled("switchboard_http_requests_total", "status=\"4xx\"", web(.status4xx))
        labelled("switchboard_http_requests_total", "status=\"5xx\"", web(.status5xx))
        family("switchboard_http_timeouts_total", "counter", "HTTP requests cut by a deadline.")
        labelled("switchboard_http_timeouts_total", "phase=\"head\"", web(.headerTimeouts))
        labelled("switchboard_http_timeouts_total", "phase=\"body\"", web(.bodyTimeouts))

        histogram("switchboard_loop_iteration_seconds", "Work per event-loop iteration (how long an event can wait).",
                  loops.map(\.counters.iterationLatency))
        return out
    }

    private func seconds(_ microseconds: Int) -> String {
        let whole = microseconds / 1_000_000
        var fraction = String(microseconds % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }
}
