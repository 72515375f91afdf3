internal import CSodium

/// libsodium's one-time set-up, which a program calls before its first crypto call.
public enum Sodium {
    /// Initialises libsodium (idempotent, thread-safe); false if it cannot run here.
    public static func initialise() -> Bool { sodium_init() >= 0 }
}
