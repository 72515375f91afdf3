import Noise
import Testing

/// The responder's cache of `ss` results: a cached handshake is the same handshake, a returning
/// key hits, and a changed local key, a colliding remote key or a zero capacity never serve a
/// stale secret.
@Suite struct StaticSecretCacheTests {
    /// One IK handshake with fixed ephemeral keys; returns the responder's handshake hash after
    /// checking that a transport message crosses in each direction.
    private func handshake(server: KeyPair, client: KeyPair, ephemerals: (KeyPair, KeyPair),
                           cache: StaticSecretCache?) throws -> [UInt8] {
        var initiator = try HandshakeState<SHA256>(pattern: .IK, initiator: true, localStatic: client,
                                                   localEphemeral: ephemerals.0, remoteStatic: server.publicKey)
        var responder = try HandshakeState<SHA256>(pattern: .IK, initiator: false, localStatic: server,
                                                   localEphemeral: ephemerals.1)
        let (first, _) = try initiator.writeMessage(Array("hello".utf8))
        let (payload, _) = try responder.readMessage(first, staticSecrets: cache)
        #expect(payload == Array("hello".utf8))
        #expect(responder.remoteStatic == client.publicKey)
        let (second, serverSide) = try responder.writeMessage()
        let (_, clientSide) = try initiator.readMessage(second)
        var toServer = try #require(clientSide).initiatorToResponder
        var atServer = try #require(serverSide).initiatorToResponder
        #expect(try atServer.decryptWithAd([], toServer.encryptWithAd([], Array("up".utf8))) == Array("up".utf8))
        var toClient = try #require(serverSide).responderToInitiator
        var atClient = try #require(clientSide).responderToInitiator
        #expect(try atClient.decryptWithAd([], toClient.encryptWithAd([], Array("down".utf8))) == Array("down".utf8))
        #expect(serverSide?.handshakeHash == clientSide?.handshakeHash)
        return responder.handshakeHash
    }

    @Test func aReturningClientHitsAndGetsTheSameHandshake() throws {
        let server = KeyPair.generate(), client = KeyPair.generate()
        let ephemerals = (KeyPair.generate(), KeyPair.generate())
        let cache = StaticSecretCache(capacity: 16)
        let uncached = try handshake(server: server, client: client, ephemerals: ephemerals, cache: nil)
        let filling = try handshake(server: server, client: client, ephemerals: ephemerals, cache: cache)
        #expect((cache.hits, cache.misses) == (0, 1))
        let served = try handshake(server: server, client: client, ephemerals: ephemerals, cache: cache)
        #expect((cache.hits, cache.misses) == (1, 1))
        #expect(filling == uncached)
        #expect(served == uncached)
        // Fresh ephemerals: still a hit, still a working handshake.
        _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: cache)
        #expect(cache.hits == 2)
    }

    @Test func aNewServerKeyOrAnotherClientInTheSameSlotMisses() throws {
        let cache = StaticSecretCache(capacity: 1)  // one slot: every client collides
        let oldServer = KeyPair.generate(), newServer = KeyPair.generate()
        let alice = KeyPair.generate(), bob = KeyPair.generate()
        for (server, client) in [(oldServer, alice), (newServer, alice), (newServer, bob), (newServer, alice), (newServer, alice)] {
            // A stale secret would fail the handshake (the first message would not decrypt).
            _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: cache)
        }
        #expect((cache.hits, cache.misses) == (1, 4))
    }

    @Test func capacityZeroKeepsNothingAndCapacityRoundsUp() throws {
        let none = StaticSecretCache(capacity: 0)
        let server = KeyPair.generate(), client = KeyPair.generate()
        for _ in 0..<2 { _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: none) }
        #expect((none.hits, none.misses, none.capacity) == (0, 0, 0))
        #expect(StaticSecretCache(capacity: 1000).capacity == 1024)
    }

    @Test func aMessageThatDoesNotAuthenticateLeavesNothingBehind() throws {
        let cache = StaticSecretCache(capacity: 4)
        let server = KeyPair.generate(), client = KeyPair.generate()
        var initiator = try HandshakeState<SHA256>(pattern: .IK, initiator: true, localStatic: client,
                                                   remoteStatic: server.publicKey)
        var (first, _) = try initiator.writeMessage(Array("hello".utf8))
        first[first.count - 1] ^= 1  // the payload's tag
        var responder = try HandshakeState<SHA256>(pattern: .IK, initiator: false, localStatic: server)
        #expect(throws: NoiseError.decryptFailed) { try responder.readMessage(first, staticSecrets: cache) }
        // The ss it computed was not kept: the next handshake of the same pair computes it again.
        _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: cache)
        #expect((cache.hits, cache.misses) == (0, 2))
        _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: cache)
        #expect(cache.hits == 1)
        cache.removeAll()
        _ = try handshake(server: server, client: client, ephemerals: (.generate(), .generate()), cache: cache)
        #expect((cache.hits, cache.misses) == (1, 3))
    }
}
