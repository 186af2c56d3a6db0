import Foundation
import FuzzSupport

/// libFuzzer's entry point: one JSON poll body per call.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    PollCheck.run(Data(bytes: start, count: count))
    return 0
}
