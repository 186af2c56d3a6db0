import BackchannelAgent
import Foundation
import Testing

@Suite struct SecretFileTests {
    @Test func secretsAreOwnerOnlyAndReplacedWhole() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bc-secret-\(UUID().uuidString)")
        let file = directory.appendingPathComponent("nested/token")
        try SecretFile.write(Data("first".utf8), to: file)
        try SecretFile.write(Data("second".utf8), to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "second")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path)
        #expect(leftovers == ["token"], "no temporary files left behind")
    }
}
