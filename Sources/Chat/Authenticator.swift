import Glibc
import Handshake
import Noise
import Reactor
import Store
import Wire

/// Decides what a client's hello earns: a welcome (with a fresh resumption token) or an error.
/// Registration and login go to the store; resumption is checked with no lookup at all (the
/// token's seal, its binding to the client's static key, its expiry, the node's memory of used
/// tokens and of revoked devices).
struct Authenticator {
    let services: SessionServices

    /// Runs on `loop`; `completion` runs there too.
    func answer(
        _ hello: Hello, clientKey: [UInt8], on loop: EventLoop,
        completion: @escaping @Sendable (Stanza, DeviceRecord?) -> Void
    ) {
        guard hello.version == UInt64(WireLimits.protocolVersion) else {
            completion(error(.unsupportedVersion, "this node speaks protocol version \(WireLimits.protocolVersion)"), nil)
            return
        }
        let now = Authenticator.unixSeconds()
        switch hello.mode {
        case .register:
            if services.registration == .invite && (hello.inviteCode ?? "").isEmpty {
                completion(error(.registrationClosed, "registration needs an invite code"), nil)
                return
            }
            guard let name = hello.accountName else {
                completion(error(.helloInvalid, "register needs an account name"), nil)
                return
            }
            guard Authenticator.isValidAccountName(name) else {
                completion(error(.accountNameInvalid, "account names are 3-32 of a-z 0-9 . _ - starting with a letter or digit"), nil)
                return
            }
            let services = self.services
            services.accounts.register(
                accountName: name, deviceName: hello.deviceName ?? "device", deviceKey: clientKey,
                inviteCode: hello.inviteCode, requireInvite: services.registration == .invite, now: Int64(now), on: loop
            ) { result in
                switch result {
                case .success(let device):
                    completion(Authenticator(services: services).welcome(device, clientKey: clientKey, now: now, newAccount: true), device)
                case .failure(let code):
                    completion(Authenticator.errorStanza(code, Authenticator.message(for: code)), nil)
                }
            }
        case .login:
            let services = self.services
            services.accounts.findDevice(key: clientKey, on: loop) { result in
                switch result {
                case .success(let device?) where !device.revoked:
                    completion(Authenticator(services: services).welcome(device, clientKey: clientKey, now: now, newAccount: false), device)
                case .success(let device?):
                    _ = device
                    completion(Authenticator.errorStanza(.deviceRevoked, "this device was removed from its account"), nil)
                case .success(nil):
                    completion(Authenticator.errorStanza(.unknownDevice, "no device is registered with this key"), nil)
                case .failure:
                    completion(Authenticator.errorStanza(.internalError, "the store failed"), nil)
                }
            }
        case .resume:
            guard let token = hello.resumptionToken else {
                completion(error(.helloInvalid, "resume needs a resumption token"), nil)
                return
            }
            let claims: ResumptionClaims
            do {
                claims = try services.tokens.open(token, deviceKey: clientKey, now: now)
            } catch {
                completion(self.error(error, Authenticator.message(for: error)), nil)
                return
            }
            guard !services.ledger.isRevoked(deviceID: claims.deviceID) else {
                completion(error(.deviceRevoked, "this device was removed from its account"), nil)
                return
            }
            guard services.ledger.consume(tokenID: claims.tokenID, expiresAt: claims.expiresAt, now: now) else {
                completion(error(.tokenReplayed, "this resumption token was already used; log in"), nil)
                return
            }
            let device = DeviceRecord(accountID: claims.accountID, deviceID: claims.deviceID, accountName: "",
                                      deviceName: "", revoked: false)
            completion(welcome(device, clientKey: clientKey, now: now, newAccount: false), device)
        }
    }

    func welcome(_ device: DeviceRecord, clientKey: [UInt8], now: UInt64, newAccount: Bool) -> Stanza {
        let expires = now + services.tokenLifetimeSeconds
        let token = services.tokens.seal(ResumptionClaims(
            accountID: device.accountID, deviceID: device.deviceID, issuedAt: now, expiresAt: expires,
            tokenID: SecretBytes.random(count: 16).array, deviceKey: clientKey))
        return .welcome(Welcome(
            accountID: device.accountID, deviceID: device.deviceID, accountName: device.accountName,
            resumptionToken: token, tokenExpiresAt: expires, serverTimeMilliseconds: Authenticator.unixMilliseconds(),
            newAccount: newAccount, idleTimeoutSeconds: services.idleTimeoutSeconds))
    }

    private func error(_ code: ErrorCode, _ message: String) -> Stanza { Authenticator.errorStanza(code, message) }

    static func errorStanza(_ code: ErrorCode, _ message: String) -> Stanza {
        .error(ErrorStanza(code: code, message: message, reference: StanzaType.hello))
    }

    static func message(for code: ErrorCode) -> String {
        switch code {
        case .accountNameTaken: return "that account name is taken"
        case .deviceAlreadyRegistered: return "this device key is already registered; log in"
        case .inviteInvalid: return "the invite code is unknown or used"
        case .tokenExpired: return "the resumption token expired; log in"
        case .tokenInvalid: return "the resumption token is not valid here; log in"
        case .tokenWrongDevice: return "the resumption token belongs to another device"
        default: return code.name
        }
    }

    /// 3 to 32 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.
    static func isValidAccountName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...WireLimits.maxAccountName).contains(bytes.count) else { return false }
        func allowed(_ b: UInt8) -> Bool { (97...122).contains(b) || (48...57).contains(b) || b == 46 || b == 95 || b == 45 }
        return bytes.allSatisfy(allowed) && ((97...122).contains(bytes[0]) || (48...57).contains(bytes[0]))
    }

    static func unixSeconds() -> UInt64 { UInt64(time(nil)) }

    static func unixMilliseconds() -> UInt64 { EventLoop.unixMilliseconds() }
}
