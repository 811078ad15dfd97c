/// Watches what the worker writes, for metrics. Called on the writer thread,
/// once per flush, after the flush's writes are acknowledged; keep it quick.
/// Read the blobs with `StoredEntity`.
public protocol WrittenStateObserver: Sendable {
    /// `count` entities were written; `state(i)` is the i-th one's state blob
    /// (`EntityLayout`'s `_state`), valid only during this call.
    func written(count: Int, state: (Int) -> UnsafeRawBufferPointer)
}
