public import BackchannelProtocol
import Crypto
import Foundation

/// A message whose parts are encrypted for different audiences, carried as the `data` of a
/// reading or event. The hub stores and forwards it without being able to read it.
///
/// ```json
/// {"sealed":2,"parts":[{"label":"billing","to":"x25519:…","enc":"<base64>","ct":"<base64>"}]}
/// ```
///
/// Each part is HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
/// ChaCha20-Poly1305, to the audience's X25519 key: `enc` is the encapsulated key and `ct` the
/// ciphertext of the part's value in canonical JSON. The HPKE `info` is `backchannel sealed v1`,
/// and the AAD is the canonical JSON of `{"at","device","id","kind","label","name","to","v":2}`
/// (the uplink item's time, device, id, kind and name, the part's label and audience), so a part
/// moved to another label, item or device, or an item whose time, kind or name was changed, does
/// not open. (Format 1, `"sealed":1`, bound only device, id, label and audience; such payloads
/// still open.)
///
/// HPKE base mode authenticates nothing about the sender: anyone with an audience's public key
/// can seal a part for it. A sealed part is confidential, not authentic.
public struct SealedPayload: Sendable, Hashable, Codable {
    /// One encrypted part.
    public struct Part: Sendable, Hashable, Codable {
        /// What the part holds, such as `billing`; unique within the payload.
        public var label: String
        /// The audience's key id, `x25519:…`.
        public var to: String
        /// The HPKE encapsulated key, base64.
        public var enc: String
        /// The ciphertext, base64.
        public var ct: String
    }

    /// A part to seal: a label, a value, an audience.
    public struct Plaintext: Sendable, Hashable {
        /// The label, such as `billing`.
        public var label: String
        /// The value, any JSON.
        public var value: JSONValue
        /// Who may read it.
        public var audience: AudiencePublicKey

        /// Creates a part to seal.
        public init(label: String, value: JSONValue, audience: AudiencePublicKey) {
            self.label = label
            self.value = value
            self.audience = audience
        }
    }

    /// The format version: 2 (1 for payloads whose AAD lacks the item's kind, name and time).
    public var sealed: Int
    /// The parts.
    public var parts: [Part]

    /// The HPKE cipher suite.
    static let suite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly
    /// The HPKE `info` string.
    static let info = Data("backchannel sealed v1".utf8)

    /// The additional authenticated data of a part (format 2).
    public static func aad(
        device: String, itemID: String, kind: UplinkKind, name: String, at: Timestamp, label: String, to keyId: String
    ) -> [UInt8] {
        CanonicalJSON.bytes(
            .object([
                "v": .number(2), "device": .string(device), "id": .string(itemID), "kind": .string(kind.rawValue),
                "name": .string(name), "at": .string(at.description), "label": .string(label), "to": .string(keyId),
            ]))
    }

    /// The additional authenticated data of a part in format 1 (`"sealed":1`).
    public static func aad(device: String, itemID: String, label: String, to keyId: String) -> [UInt8] {
        CanonicalJSON.bytes(
            .object([
                "v": .number(1), "device": .string(device), "id": .string(itemID), "label": .string(label),
                "to": .string(keyId),
            ]))
    }

    /// Seals parts for the uplink item `itemID` of `device`, of `kind`, `name` and time `at`.
    ///
    /// Throws ``SecurityError/Code/invalidPayload`` for no parts, a repeated label, or a label
    /// that is not 1-64 identifier characters.
    public static func seal(
        _ plaintexts: [Plaintext], device: String, itemID: String, kind: UplinkKind, name: String, at: Timestamp
    ) throws(SecurityError) -> SealedPayload {
        guard !plaintexts.isEmpty else { throw .invalidPayload("nothing to seal") }
        var labels = Set<String>()
        var parts: [Part] = []
        for plaintext in plaintexts {
            guard Identifier.isValid(plaintext.label, maxBytes: 64) else {
                throw .invalidPayload("'\(plaintext.label)' is not a part label")
            }
            guard labels.insert(plaintext.label).inserted else {
                throw .invalidPayload("the label '\(plaintext.label)' is used twice")
            }
            let to = plaintext.audience.keyId
            do {
                var sender = try HPKE.Sender(recipientKey: plaintext.audience.cryptoKey, ciphersuite: suite, info: info)
                let ct = try sender.seal(
                    CanonicalJSON.bytes(plaintext.value),
                    authenticating: aad(
                        device: device, itemID: itemID, kind: kind, name: name, at: at, label: plaintext.label, to: to))
                parts.append(
                    Part(
                        label: plaintext.label, to: to, enc: sender.encapsulatedKey.base64EncodedString(),
                        ct: ct.base64EncodedString()))
            } catch {
                throw .invalidPayload("cannot seal '\(plaintext.label)': \(error)")
            }
        }
        return SealedPayload(sealed: 2, parts: parts)
    }

    /// The payload as the `data` of an uplink item.
    public var jsonValue: JSONValue {
        .object([
            "sealed": .number(Double(sealed)),
            "parts": .array(
                parts.map { part in
                    .object([
                        "label": .string(part.label), "to": .string(part.to), "enc": .string(part.enc),
                        "ct": .string(part.ct),
                    ])
                }),
        ])
    }

    /// The sealed payload in an uplink item's `data`, or nil when it is not one.
    public init?(_ data: JSONValue) {
        guard case .object(let members) = data, let version = members["sealed"],
            version == .number(1) || version == .number(2), case .array(let list)? = members["parts"]
        else { return nil }
        var parts: [Part] = []
        for item in list {
            guard let label = item["label"]?.stringValue, let to = item["to"]?.stringValue,
                let enc = item["enc"]?.stringValue, let ct = item["ct"]?.stringValue
            else { return nil }
            parts.append(Part(label: label, to: to, enc: enc, ct: ct))
        }
        self.init(sealed: version == .number(1) ? 1 : 2, parts: parts)
    }

    /// Creates a payload from its parts.
    public init(sealed: Int = 2, parts: [Part]) {
        self.sealed = sealed
        self.parts = parts
    }

    /// Opens what `key` may open, for the uplink item `itemID` of `device` (of `kind`, `name`
    /// and time `at`, which format 1 does not bind).
    ///
    /// Parts addressed to other keys are listed in ``Opening/closed`` with their audience;
    /// parts addressed to this key that fail authentication (altered, moved to another label,
    /// item or device) are listed there too, never returned.
    public func open(
        with key: AudienceKey, device: String, itemID: String, kind: UplinkKind, name: String, at: Timestamp
    ) -> Opening {
        var opening = Opening()
        let keyId = key.keyId
        for part in parts {
            guard part.to == keyId else {
                opening.closed.append(.init(label: part.label, to: part.to, reason: "sealed for \(part.to)"))
                continue
            }
            guard let enc = Data(base64Encoded: part.enc), let ct = Data(base64Encoded: part.ct),
                var recipient = try? HPKE.Recipient(
                    privateKey: key.key, ciphersuite: Self.suite, info: Self.info, encapsulatedKey: enc),
                let plain = try? recipient.open(
                    ct,
                    authenticating: sealed == 1
                        ? Self.aad(device: device, itemID: itemID, label: part.label, to: part.to)
                        : Self.aad(
                            device: device, itemID: itemID, kind: kind, name: name, at: at, label: part.label,
                            to: part.to)),
                let value = try? WireJSON.decode(JSONValue.self, from: plain)
            else {
                opening.closed.append(
                    .init(label: part.label, to: part.to, reason: "does not authenticate for this item and label"))
                continue
            }
            opening.opened.append(.init(label: part.label, value: value))
        }
        return opening
    }

    /// What one key could open in a sealed payload.
    public struct Opening: Sendable, Hashable {
        /// A part that opened.
        public struct Opened: Sendable, Hashable {
            /// The part's label.
            public var label: String
            /// Its value.
            public var value: JSONValue
        }

        /// A part that did not open.
        public struct Closed: Sendable, Hashable {
            /// The part's label.
            public var label: String
            /// The audience it is sealed for.
            public var to: String
            /// Why it did not open.
            public var reason: String
        }

        /// The parts this key opened, in payload order.
        public var opened: [Opened] = []
        /// The parts it could not open, in payload order.
        public var closed: [Closed] = []

        /// The value of an opened part.
        public subscript(label: String) -> JSONValue? { opened.first { $0.label == label }?.value }
    }
}

/// Opens the sealed items of a listing of readings and events (what `backchannel decrypt` shows).
public enum SealedReader {
    /// One item of the listing and what the key opened in it; `opening` is nil for an item
    /// that is not sealed.
    public struct Item: Sendable, Hashable {
        /// The stored item.
        public var item: UplinkView
        /// What opened and what did not; nil when the item is not sealed.
        public var opening: SealedPayload.Opening?
    }

    /// Opens every sealed item with `key`.
    public static func open(_ items: [UplinkView], with key: AudienceKey) -> [Item] {
        items.map { item in
            Item(
                item: item,
                opening: SealedPayload(item.data)?.open(
                    with: key, device: item.device, itemID: item.id, kind: item.kind, name: item.name, at: item.at))
        }
    }
}
