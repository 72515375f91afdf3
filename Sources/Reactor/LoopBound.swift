/// Carries a reference that belongs to one loop through a `@Sendable` closure (a store
/// completion posted back with `execute`, say) and hands it out only on that loop.
///
/// `@unchecked Sendable`: the value is read only through `value`, which asserts it is on `loop`;
/// the wrapper itself is immutable.
public struct LoopBound<Value>: @unchecked Sendable {
    public let loop: EventLoop
    private let wrapped: Value

    public init(_ value: Value, on loop: EventLoop) {
        loop.assertInEventLoop()
        self.loop = loop
        self.wrapped = value
    }

    public var value: Value {
        loop.assertInEventLoop()
        return wrapped
    }
}
