import BackchannelProtocol
import Foundation
import Testing

@Suite("XMLValue: JSON values as self-describing XML")
struct XMLValueTests {
    /// Encodes, parses and decodes.
    static func roundTrip(_ value: JSONValue) throws -> JSONValue {
        let xml = XMLValue.encode(value, as: "data")
        return try XMLValue.decode(try XMLReader.parse(Data(xml.utf8)))
    }

    static func decode(_ xml: String) throws -> JSONValue {
        try XMLValue.decode(try XMLReader.parse(Data(xml.utf8)))
    }

    static func decodeFailure(_ xml: String) throws -> XMLError? {
        let element = try XMLReader.parse(Data(xml.utf8))
        do {
            _ = try XMLValue.decode(element)
            return nil
        } catch {
            return error
        }
    }

    @Test("writes the common case without annotations")
    func plainEncoding() {
        #expect(XMLValue.encode(["kWh": 4.5], as: "data") == "<data><kWh>4.5</kWh></data>")
        #expect(
            XMLValue.encode(["kWh_month": 45.54, "meter": "M-1", "on": true, "count": 3], as: "billing_information")
                == "<billing_information><count>3</count><kWh_month>45.54</kWh_month><meter>M-1</meter><on>true</on>"
                + "</billing_information>")
        #expect(XMLValue.encode(nil, as: "x") == "<x nil=\"true\"/>")
        #expect(XMLValue.encode(false, as: "x") == "<x>false</x>")
        #expect(XMLValue.encode("a < b & c", as: "x") == "<x>a &lt; b &amp; c</x>")
    }

    @Test("numbers are written in shortest round-trip form; integers have no .0")
    func numbers() {
        let cases: [(Double, String)] = [
            (1, "1"), (-0.0, "0"), (100, "100"), (4.5, "4.5"), (0.1, "0.1"), (-2.25, "-2.25"), (1e20, "1e+20"),
            (1e-7, "1e-07"), (9_007_199_254_740_991, "9007199254740991"),
            (9_007_199_254_740_994, "9.007199254740994e+15"),
        ]
        for (number, text) in cases {
            #expect(XMLValue.encode(.number(number), as: "n") == "<n>\(text)</n>", "\(number)")
        }
        #expect(XMLValue.encode(.number(.nan), as: "n") == "<n nil=\"true\"/>")
        #expect(XMLValue.encode(.number(.infinity), as: "n") == "<n nil=\"true\"/>")
    }

    @Test("type is written only where the plain reading would be wrong or ambiguous")
    func typeAnnotations() {
        #expect(XMLValue.encode("42", as: "s") == "<s type=\"string\">42</s>")
        #expect(XMLValue.encode(" 7 ", as: "s") == "<s type=\"string\"> 7 </s>")
        #expect(XMLValue.encode("true", as: "s") == "<s type=\"string\">true</s>")
        #expect(XMLValue.encode("", as: "s") == "<s type=\"string\"/>")
        #expect(XMLValue.encode("True", as: "s") == "<s>True</s>")
        #expect(XMLValue.encode("01", as: "s") == "<s>01</s>")
        #expect(XMLValue.encode([1, "x"], as: "a") == "<a type=\"array\"><item>1</item><item>x</item></a>")
        #expect(XMLValue.encode([], as: "a") == "<a type=\"array\"/>")
        #expect(XMLValue.encode([:], as: "o") == "<o type=\"object\"/>")
    }

    @Test("keys that cannot be element names are written as <entry key=...>")
    func entryKeys() {
        #expect(XMLValue.encode(["has space": 1], as: "o") == "<o><entry key=\"has space\">1</entry></o>")
        #expect(XMLValue.encode(["XMLish": 1], as: "o") == "<o><entry key=\"XMLish\">1</entry></o>")
        #expect(
            XMLValue.encode(["a:b": 1, "": 2], as: "o")
                == "<o><entry key=\"\">2</entry><entry key=\"a:b\">1</entry></o>")
        #expect(XMLValue.encode(["entry": 1], as: "o") == "<o><entry>1</entry></o>")
        #expect(XMLValue.encode(1, as: "not a name") == "<entry key=\"not a name\">1</entry>")
        let long = String(repeating: "k", count: 65)
        #expect(XMLValue.encode([long: 1], as: "o") == "<o><entry key=\"\(long)\">1</entry></o>")
    }

    @Test("decode(parse(encode(v))) == v for varied values")
    func roundTrips() throws {
        let values: [JSONValue] = [
            nil, true, false, 0, -0.0, 1, -1, 45.54, 0.1, 1e-7, 1e300, -1.5e-300, 9_007_199_254_740_993,
            9_223_372_036_854_775_807, 123_456_789.125, "", " ", "\n", "  hi ", "42", "-1.5e3", "true", "false", "null",
            "x\r\ny\tz", "ünïcødé 😀 中文", "a < b && c > d ]]> \"q\" 's'", "&amp;", "<tag/>",
            [], [:], [nil], [[]], [[:]], [""], [1, "1", true, "true", nil, [1, [2, [3]]], ["k": "v"]],
            [
                "kWh_month": 45.54, "meter": ["id": "M-1", "readings": [1.5, 2.25, 3], "tags": []],
                "has space": "v", "xmlns": 1, "XML": 2, "a:b": 3, "": 4, "entry": ["key": "not an attribute"],
                "item": [:], "type": "array", "nil": "true", "données": "é", "9lives": 9,
                String(repeating: "long", count: 20): "key", "empty": "", "null": nil,
                "nested": ["a": ["b": ["c": [:]]]],
            ],
        ]
        for value in values {
            #expect(try Self.roundTrip(value) == value, "\(XMLValue.encode(value, as: "data"))")
            #expect(try Self.roundTrip(["wrapped": value]) == ["wrapped": value])
            #expect(try Self.roundTrip([value, value]) == [value, value])
        }
    }

    @Test("characters XML cannot carry become U+FFFD")
    func unrepresentable() throws {
        #expect(try Self.roundTrip("a\u{0}b\u{1B}") == "a\u{FFFD}b\u{FFFD}")
    }

    @Test("reads hand-written XML in the same conventions")
    func handWritten() throws {
        let doc = """
            <billing_information xmlns="urn:utility">
              <kWh_month>
                45.54
              </kWh_month>
              <paid>true</paid>
              <account type="string">0042</account>
              <note>  keep  </note>
              <readings type="array">
                <reading>1</reading>
                <reading>2.5</reading>
              </readings>
              <entry key="spaced key" unit="ignored">x</entry>
              <empty/>
              <missing nil="true"/>
              <extra type="object">
              </extra>
            </billing_information>
            """
        let expected: JSONValue = [
            "kWh_month": 45.54, "paid": true, "account": "0042", "note": "  keep  ", "readings": [1, 2.5],
            "spaced key": "x", "empty": "", "missing": nil, "extra": [:],
        ]
        #expect(try Self.decode(doc) == expected)
        #expect(try Self.decode("<n>1.0</n>") == 1)
        #expect(try Self.decode("<n>-0</n>") == 0)
        #expect(try Self.decode("<n>1E2</n>") == 100)
        for text in ["01", "1.", ".5", "+1", "-", "1e", "0x10", "NaN", "Infinity", "1e400", "TRUE", "1 2"] {
            #expect(try Self.decode("<n>\(text)</n>") == .string(text), "\(text)")
        }
    }

    @Test("repeated names, mixed content and contradictory annotations are errors")
    func decodeErrors() throws {
        let repeated = try #require(try Self.decodeFailure("<o><x>1</x><x>2</x></o>"))
        #expect(repeated.isMalformed)
        #expect(repeated.description == "repeated element <x> — mark arrays with type=\"array\"")
        #expect(try Self.decodeFailure("<o><entry key='k'>1</entry><entry key='k'>2</entry></o>")?.isMalformed == true)
        #expect(try Self.decodeFailure("<o><k>1</k><entry key='k'>2</entry></o>")?.isMalformed == true)
        let cases = [
            "<o>text<x>1</x></o>", "<o type='array'>text</o>", "<o type='object'>text</o>", "<o type='string'><x/></o>",
            "<o type='number'>1</o>", "<o nil='false'/>", "<o nil='true'>x</o>", "<o nil='true' type='string'/>",
            "<o><a><b>1</b><b>2</b></a></o>",
        ]
        for xml in cases {
            #expect(try Self.decodeFailure(xml)?.isMalformed == true, "\(xml)")
        }
        #expect(try Self.decode("<a type='array'><x>1</x><x>2</x></a>") == [1, 2])
    }
}
