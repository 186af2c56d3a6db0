public import BackchannelProtocol
public import BackchannelSecurity

extension Agent {
    /// Queues one reading or event whose data is sealed: each part encrypted for its own
    /// audience (see ``SealedPayload``), bound to this device and the item's fresh id, kind, name
    /// and time. The hub
    /// stores and forwards it without being able to read it. Returns the item's id.
    ///
    /// Throws ``SecurityError`` for parts that cannot be sealed (no parts, a repeated or invalid
    /// label) and ``ValidationFailure`` for an item the hub would refuse.
    @discardableResult
    public func emitSealed(_ kind: UplinkKind, name: String, parts: [SealedPayload.Plaintext]) throws -> String {
        let id = MessageID.make(at: clock.deviceNow())
        let at = clock.hubNow()
        let payload = try SealedPayload.seal(
            parts, device: configuration.deviceID, itemID: id, kind: kind, name: name, at: at)
        try send([UplinkItem(id: id, kind: kind, name: name, at: at, data: payload.jsonValue)])
        return id
    }
}
