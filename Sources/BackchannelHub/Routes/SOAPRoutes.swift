import BackchannelProtocol
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

extension Hub {
    /// The SOAP 1.2 binding of `POST /v1/poll`, and its WSDL.
    ///
    /// Every failure is a SOAP 1.2 Fault with the JSON binding's status and error code.
    func soapPoll(_ request: Request, credential: DeviceCredential) async -> Response {
        let body: Data
        do {
            body = try await request.collectBody(limit: configuration.maxBodyBytes)
        } catch {
            // Counted here: the poll handler never saw this request.
            metrics.rejectedPolls.add(1, ordering: .relaxed)
            let failure = (error as? HubError) ?? HubError.malformed("the request body could not be read")
            return fail(SOAPFault(failure.body, status: failure.status.code))
        }
        do {
            let poll = try SOAPCodec.decodePoll(body, limits: configuration.xmlLimits)
            let json = try await self.poll(
                poll, requestHash: Credentials.hash(bytes: body), credential: credential)
            let response = try WireJSON.decode(PollResponse.self, from: json)
            return Self.soapResponse(SOAPCodec.encodeResponse(response), status: .ok)
        } catch let fault as SOAPFault {
            metrics.rejectedPolls.add(1, ordering: .relaxed)
            return fail(fault)
        } catch let error as HubError {
            return fail(SOAPFault(error.body, status: error.status.code))
        } catch {
            logger.error("SOAP poll failed", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            return fail(SOAPFault(HubError.internal.body, status: 500))
        }
    }

    private func fail(_ fault: SOAPFault) -> Response {
        metrics.soapFaults.add(1, ordering: .relaxed)
        var response = Self.soapResponse(fault.xml, status: HTTPResponse.Status(code: fault.status))
        if fault.status == 401 { response.headers[.wwwAuthenticate] = "Bearer" }
        if let retryAfter = fault.retryAfter { response.headers[.retryAfter] = String(Int(retryAfter.rounded(.up))) }
        return response
    }

    static func soapResponse(_ data: Data, status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: SOAP.contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The WSDL 1.1 document, with the service address set to the hub's own URL as the client
    /// reached it (or ``HubConfiguration/publicURL``).
    func wsdl(for request: Request) -> Response {
        let base =
            configuration.publicURL
            ?? "\(configuration.tls == nil ? "http" : "https")://\(request.head.authority ?? "\(configuration.host):\(configuration.port)")"
        let text = WSDLDocument.text.replacingOccurrences(
            of: "{{HUB_URL}}", with: XMLWriter.escapeAttribute(base.hasSuffix("/") ? String(base.dropLast()) : base))
        return Response(
            status: .ok, headers: [.contentType: "text/xml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The WSDL 1.1 document of the SOAP binding, served at `GET /v1/poll?wsdl`.
public enum WSDLDocument {
    /// The document, with `{{HUB_URL}}` where the service address goes.
    public static let text: String = {
        guard let url = Bundle.module.url(forResource: "backchannel", withExtension: "wsdl"),
            let data = try? Data(contentsOf: url)
        else { return "" }
        return String(decoding: data, as: UTF8.self)
    }()
}
