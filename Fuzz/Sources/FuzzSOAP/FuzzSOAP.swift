import BackchannelProtocol
import Foundation

/// The hub's XML limits (`HubConfiguration.xmlLimits`).
let hubLimits: XMLLimits = {
    var limits = XMLLimits()
    limits.maxDepth = 48
    limits.maxElements = 50_000
    return limits
}()

/// libFuzzer's entry point: one SOAP request body per call.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    checkXML(data)
    checkPoll(data)
    return 0
}

/// The XML reader on any document: a tree it returns serialises to a document that parses back
/// to an equal tree (``XMLWriter/serialize(_:)`` promises this), and any element reads as a value
/// or throws.
func checkXML(_ data: Data) {
    let root: XMLElement
    do {
        root = try XMLReader.parse(data, limits: hubLimits)
    } catch {
        _ = error.description
        return
    }
    _ = try? XMLValue.decode(root)
    let text = XMLWriter.serialize(root)
    let again: XMLElement
    do {
        again = try XMLReader.parse(Data(text.utf8), limits: XMLLimits())
    } catch {
        fatalError("a serialised tree does not parse: \(error)")
    }
    guard again == root else { fatalError("a tree changed in a serialise-and-parse round trip") }
}

/// A `bc:Poll` envelope as the hub reads it: decoded with the hub's limits, validated, and, when
/// valid, encoded again (as the agent would write it) and decoded back to the same request.
func checkPoll(_ data: Data) {
    let request: PollRequest
    do {
        request = try SOAPCodec.decodePoll(data, limits: hubLimits)
    } catch {
        _ = error.xml
        return
    }
    do throws(ValidationFailure) {
        try request.validate(PollLimits())
    } catch {
        return
    }
    let encoded = SOAPCodec.encodePoll(request)
    let again: PollRequest
    do {
        again = try SOAPCodec.decodePoll(encoded, limits: XMLLimits())
    } catch {
        fatalError("a re-encoded poll does not decode: \(error)")
    }
    guard again == request else { fatalError("a poll changed in a SOAP round trip") }
}
