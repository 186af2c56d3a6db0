import ArgumentParser
import BackchannelTLS
import Foundation

/// `backchannel certs`: a private CA for the hub's TLS and the devices' client certificates.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create a private CA, the hub's TLS certificate and device client certificates.",
        discussion: """
            A certificate directory holds:
              ca.crt, ca.key             the private CA (P-256); keep ca.key safe, offline once devices are issued
              hub.crt, hub.key           the hub's server certificate, for `hub --tls-cert --tls-key`
              devices/<id>.crt, .key     device client certificates, for mutual TLS

            Start the hub with `hub --tls-cert <dir>/hub.crt --tls-key <dir>/hub.key \
            --client-ca <dir>/ca.crt`; give agents and clients the CA with `--ca <dir>/ca.crt`. \
            A device presenting its certificate needs no bearer token (it must still be \
            provisioned with `devices add`). Keys are written with mode 0600; existing files are \
            never replaced without --force.
            """,
        subcommands: [Initialize.self, Device.self, HubCertificate.self]
    )

    /// `certs init`.
    struct Initialize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a private CA and a hub certificate in a directory.",
            discussion: """
                The hub certificate is valid for localhost, 127.0.0.1 and ::1, plus every \
                --hub-name (DNS names or IP addresses devices use to reach the hub). Example: \
                backchannel certs init --dir certs --hub-name hub.example.net --hub-name 10.0.0.5
                """
        )

        @Option(help: "The certificate directory (created if missing).")
        var dir: String

        @Option(name: .customLong("hub-name"), help: "A DNS name or IP address of the hub (repeatable).")
        var hubNames: [String] = []

        @Option(name: .customLong("ca-name"), help: "The CA's common name.")
        var caName = "Backchannel CA"

        @Option(name: .customLong("ca-days"), help: "Days the CA certificate is valid.")
        var caDays = 3650

        @Option(help: "Days the hub certificate is valid.")
        var days = 825

        @Flag(help: "Replace existing files.")
        var force = false

        func validate() throws {
            guard caDays >= 1, days >= 1 else { throw ValidationError("--ca-days and --days must be 1 or more") }
        }

        func run() throws {
            let directory = CertificateDirectory(URL(fileURLWithPath: dir, isDirectory: true).standardizedFileURL)
            try certsStep {
                try PEMFiles.refuseExisting(
                    [directory.caCertificate, directory.caKey, directory.hubCertificate, directory.hubKey],
                    overwrite: force)
                let authority = try CertificateAuthority.create(name: caName, validity: Double(caDays) * 86400)
                try PEMFiles.write(authority.privateKey, to: directory.caKey, overwrite: force)
                try PEMFiles.write(authority.certificate, to: directory.caCertificate, overwrite: force)
                let hub = try issueHub(authority, names: hubNames, days: days)
                try PEMFiles.write(
                    hub, certificate: directory.hubCertificate, key: directory.hubKey, overwrite: force)
                print("created a CA and a hub certificate in \(directory.url.path)")
                describe(authority.summary, at: directory.caCertificate)
                describe(hub.summary, at: directory.hubCertificate)
                print(
                    """
                    next:
                      backchannel hub --tls-cert \(directory.hubCertificate.path) --tls-key \(directory.hubKey.path) \\
                        --client-ca \(directory.caCertificate.path)
                      backchannel certs device <id> --dir \(directory.url.path)
                    """)
            }
        }
    }

    /// `certs device`.
    struct Device: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "device",
            abstract: "Issue a device's client certificate (mutual TLS) from the CA in a directory.",
            discussion: """
                Writes <dir>/devices/<id>.crt and <id>.key. The certificate names the device by \
                its common name and the URI urn:backchannel:device:<id>, and its tenant by the URI \
                urn:backchannel:tenant:<tenant>; the hub started with --client-ca <dir>/ca.crt \
                identifies a device presenting it, without a token, provided the device is \
                provisioned in that tenant (a device of another tenant with the same id is refused). \
                Simulate it with: backchannel simulate --hub https://… --ca <dir>/ca.crt \
                --cert-dir <dir>/devices
                """
        )

        @Argument(help: "The device id, as provisioned in the hub.")
        var id: String

        @Option(help: "The certificate directory made by `certs init`.")
        var dir: String

        @Option(help: "The tenant the device is provisioned in (default: default, the system tenant).")
        var tenant = "default"

        @Option(help: "Days the certificate is valid.")
        var days = 1825

        @Flag(help: "Replace an existing certificate of this device.")
        var force = false

        func validate() throws {
            guard DeviceCertificate.isValidDeviceID(id) else {
                throw ValidationError("the device id must be 1-128 of A-Z a-z 0-9 . _ : -")
            }
            guard DeviceCertificate.isValidTenant(tenant) else {
                throw ValidationError("the tenant must be 1-64 of A-Z a-z 0-9 . _ : -")
            }
            guard days >= 1 else { throw ValidationError("--days must be 1 or more") }
        }

        func run() throws {
            let directory = CertificateDirectory(URL(fileURLWithPath: dir, isDirectory: true).standardizedFileURL)
            try certsStep {
                let authority = try directory.loadAuthority()
                let issued = try authority.issueDeviceCertificate(
                    deviceID: id, tenant: tenant, validity: Double(days) * 86400)
                try PEMFiles.write(
                    issued, certificate: directory.deviceCertificate(id), key: directory.deviceKey(id),
                    overwrite: force)
                describe(issued.summary, at: directory.deviceCertificate(id))
                print("  \(directory.deviceKey(id).path) (key, mode 0600)")
            }
        }
    }

    /// `certs hub`.
    struct HubCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hub",
            abstract: "Issue a new hub certificate from the CA in a directory (other names, renewal).",
            discussion: "Replaces <dir>/hub.crt and hub.key only with --force; restart the hub to use them."
        )

        @Option(help: "The certificate directory made by `certs init`.")
        var dir: String

        @Option(name: .customLong("hub-name"), help: "A DNS name or IP address of the hub (repeatable).")
        var hubNames: [String] = []

        @Option(help: "Days the hub certificate is valid.")
        var days = 825

        @Flag(help: "Replace the existing hub certificate and key.")
        var force = false

        func validate() throws {
            guard days >= 1 else { throw ValidationError("--days must be 1 or more") }
        }

        func run() throws {
            let directory = CertificateDirectory(URL(fileURLWithPath: dir, isDirectory: true).standardizedFileURL)
            try certsStep {
                let authority = try directory.loadAuthority()
                let hub = try issueHub(authority, names: hubNames, days: days)
                try PEMFiles.write(
                    hub, certificate: directory.hubCertificate, key: directory.hubKey, overwrite: force)
                describe(hub.summary, at: directory.hubCertificate)
            }
        }
    }
}

/// Issues a hub certificate for the loopback names plus `names` (DNS names or IP addresses).
private func issueHub(_ authority: CertificateAuthority, names: [String], days: Int) throws(TLSError)
    -> IssuedCertificate
{
    var dnsNames = ["localhost"]
    var addresses = ["127.0.0.1", "::1"]
    for name in names {
        if name.contains(":") || name.allSatisfy({ $0.isNumber || $0 == "." }) {
            if !addresses.contains(name) { addresses.append(name) }
        } else if !dnsNames.contains(name.lowercased()) {
            dnsNames.append(name.lowercased())
        }
    }
    // The first name given is the subject's common name.
    return try authority.issueServerCertificate(
        commonName: names.first ?? "localhost", dnsNames: dnsNames, ipAddresses: addresses,
        validity: Double(days) * 86400)
}

/// Runs a step, reporting a ``TLSError`` as one line.
private func certsStep(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as TLSError {
        throw CLIError(error.reason)
    }
}

/// Prints where a certificate is and what it says.
private func describe(_ summary: CertificateSummary, at url: URL) {
    print("  \(url.path)")
    print("    \(summary)")
}
