import BackchannelProtocol
import Foundation
import Testing

/// Parses `text` as UTF-8.
func parseXML(_ text: String, limits: XMLLimits = XMLLimits()) throws(XMLError) -> XMLElement {
    try XMLReader.parse(Data(text.utf8), limits: limits)
}

/// The error parsing `data` fails with, or `nil` when it parses.
func xmlFailure(_ data: Data, limits: XMLLimits = XMLLimits()) -> XMLError? {
    do {
        _ = try XMLReader.parse(data, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// The error parsing `text` fails with, or `nil` when it parses.
func xmlFailure(_ text: String, limits: XMLLimits = XMLLimits()) -> XMLError? {
    xmlFailure(Data(text.utf8), limits: limits)
}

@Suite("XMLReader: well-formed documents")
struct XMLReaderTests {
    static let meter = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- leading comment -->
        <?app hint?>
        <root xmlns="urn:default" xmlns:m="urn:meter" xml:lang="en" id='r1'>
          <m:reading unit="kWh" m:kind="total">45.54</m:reading>
          <plain xmlns="">no namespace</plain>
          <child/>
        </root>
        <!-- trailing comment -->

        """

    @Test("resolves default, prefixed, undeclared-default and xml namespaces")
    func namespaces() throws {
        let root = try parseXML(Self.meter)
        #expect(root.name == XMLName(namespace: "urn:default", local: "root"))
        #expect(root.prefix == nil)
        #expect(root.namespaceDeclarations == ["": "urn:default", "m": "urn:meter"])
        #expect(
            root.attributes.map(\.name) == [
                XMLName("lang", namespace: "http://www.w3.org/XML/1998/namespace"), XMLName("id"),
            ])
        #expect(root.attributes.first?.prefix == "xml")
        #expect(root.attribute("id") == "r1")
        #expect(root.attribute("lang", namespace: "http://www.w3.org/XML/1998/namespace") == "en")
        #expect(root.children.count == 3, "whitespace between elements is dropped")
        let reading = try #require(root.first("reading", namespace: "urn:meter"))
        #expect(reading.prefix == "m")
        #expect(reading.attribute("unit") == "kWh")
        #expect(reading.attribute("kind") == nil)
        #expect(reading.attribute("kind", namespace: "urn:meter") == "total")
        #expect(reading.text == "45.54")
        #expect(root.first("plain", namespace: nil)?.text == "no namespace")
        #expect(root.first("plain", namespace: nil)?.namespaceDeclarations == ["": ""])
        #expect(root.all("child", namespace: "urn:default").count == 1)
        #expect(root.first("child", namespace: nil) == nil)
        #expect(root.elements.map(\.name.local) == ["reading", "plain", "child"])
    }

    @Test("replaces entities and character references; merges CDATA; skips comments and PIs; keeps mixed text")
    func content() throws {
        let root = try parseXML(
            "<a>x &lt; y &amp;&amp; &quot;q&quot; &apos;s&apos; &gt; &#65;&#x1F600;<![CDATA[<raw> & ]]]]>"
                + "<!-- c --><?pi data?>tail<b/> mixed </a>")
        let head = "x < y && \"q\" 's' > A😀<raw> & ]]tail"
        #expect(
            root.children == [.text(head), .element(XMLElement(name: XMLName("b"), range: 0..<0)), .text(" mixed ")])
        #expect(root.text == head + " mixed ")
        #expect(
            try parseXML("<a>  </a>").children == [.text("  ")],
            "an element without child elements keeps its whitespace")
        #expect(try parseXML("<a><![CDATA[]]></a>").children.isEmpty)
        #expect(try parseXML("<é xmlns:ñ='urn:x'><ñ:ü/></é>").first("ü", namespace: "urn:x") != nil)
    }

    @Test("normalises line ends in text and whitespace in attribute values; char refs survive")
    func normalisation() throws {
        let root = try parseXML("<a t=\"x\ty\r\nz\nw\" r=\"&#9;&#10;&#13;\" s = 'it\"s'>l1\r\nl2\rl3&#13;</a>")
        #expect(root.attribute("t") == "x y z w")
        #expect(root.attribute("r") == "\t\n\r")
        #expect(root.attribute("s") == "it\"s")
        #expect(root.text == "l1\nl2\nl3\r")
    }

    @Test("accepts a UTF-8 byte-order mark and a UTF-8 declaration in any case")
    func declaration() throws {
        let bom = Data([0xEF, 0xBB, 0xBF]) + Data("<?xml version='1.0' encoding='utf-8' standalone='yes'?><a/>".utf8)
        #expect(try XMLReader.parse(bom).name.local == "a")
        #expect(try parseXML("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<a/>").name.local == "a")
        #expect(try parseXML("<?xml version=\"1.0\"?><a/>").name.local == "a")
    }

    @Test("range slices an element out of its document; the slice parses alone when it declares its namespaces")
    func rangeSlicing() throws {
        let doc =
            "<outer xmlns:o=\"urn:o\"><o:mid>text"
            + "<inner xmlns=\"urn:i\" xmlns:p=\"urn:p\" p:a=\"1\"><p:leaf>t</p:leaf><e/></inner>"
            + "<o:leaf2 x='y'/></o:mid></outer>"
        // A Data slice with a non-zero start index: ranges index into it directly.
        let padded = Data("pad".utf8) + Data(doc.utf8)
        let data = padded[3...]
        let outer = try XMLReader.parse(data)
        #expect(outer.range == data.startIndex..<data.endIndex)
        let mid = try #require(outer.first("mid", namespace: "urn:o"))
        let inner = try #require(mid.first("inner", namespace: "urn:i"))
        let source = String(decoding: data[inner.range], as: UTF8.self)
        #expect(source.hasPrefix("<inner ") && source.hasSuffix("</inner>"))
        #expect(try XMLReader.parse(Data(data[inner.range])) == inner)
        let empty = try #require(inner.first("e", namespace: "urn:i"))
        #expect(String(decoding: data[empty.range], as: UTF8.self) == "<e/>")

        let leaf2 = try #require(mid.first("leaf2", namespace: "urn:o"))
        #expect(String(decoding: data[leaf2.range], as: UTF8.self) == "<o:leaf2 x='y'/>")
        #expect(xmlFailure(Data(data[leaf2.range]))?.isUnboundPrefix == true)
        #expect(xmlFailure(Data(data[mid.range]))?.isUnboundPrefix == true)
    }

    // Speed belongs to benchmarks, not to a timed test: this checks a large document parses whole.
    @Test("parses a 1 MB document")
    func speed() throws {
        var doc = "<readings xmlns:m='urn:m'>"
        var i = 0
        while doc.utf8.count < 1 << 20 {
            doc +=
                "<m:reading id=\"r\(i)\" unit='kWh'><value>\(i).5</value>"
                + "<note>a &amp; b &#x263A; ünï</note></m:reading>\n"
            i += 1
        }
        doc += "</readings>"
        let data = Data(doc.utf8)
        let root = try XMLReader.parse(data, limits: XMLLimits())
        #expect(root.elements.count == i)
        #expect(root.elements.last?.first("note", namespace: nil)?.text == "a & b ☺ ünï")
    }

    @Test("serialize round-trips a parsed tree; escaping keeps documents well-formed")
    func writer() throws {
        let root = try parseXML(Self.meter)
        let again = try parseXML(XMLWriter.serialize(root))
        #expect(again == root)
        let tricky = try parseXML(
            "<a q='&quot;&lt;&#9;&#10;&#13;&amp;' xmlns:p='urn:&amp;'>&lt;x&gt; &#13;\n<p:b/>]]&gt;</a>")
        #expect(try parseXML(XMLWriter.serialize(tricky)) == tricky)
        #expect(XMLWriter.serialize(XMLElement(name: XMLName("e"))) == "<e/>")

        #expect(XMLWriter.escapeText("a<b>&c\r\n\t\"'") == "a&lt;b&gt;&amp;c&#13;\n\t\"'")
        #expect(XMLWriter.escapeAttribute("a<b>&c\r\n\t\"'") == "a&lt;b&gt;&amp;c&#13;&#10;&#9;&quot;'")
        #expect(XMLWriter.escapeText("nul\u{0}bell\u{7}\u{FFFE}ok") == "nul\u{FFFD}bell\u{FFFD}\u{FFFD}ok")
        #expect(XMLWriter.escapeText("plain ünï 😀") == "plain ünï 😀")

        #expect(XMLWriter.isValidName("kWh_month"))
        #expect(XMLWriter.isValidName("données"))
        #expect(XMLWriter.isValidName("_a-b.c9"))
        for bad in ["", "9a", "-a", ".a", "a:b", "a b", "a\u{0}", "\u{B7}a", "a&"] {
            #expect(!XMLWriter.isValidName(bad), "\(bad)")
        }
    }
}

@Suite("XMLReader: hostile and malformed documents")
struct XMLReaderTestsHostile {
    @Test("billion laughs is refused at the DOCTYPE, with its position")
    func billionLaughs() throws {
        var doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            doc += " <!ENTITY lol\(level) \"\(String(repeating: "&\(previous);", count: 10))\">\n"
        }
        doc += "]>\n<lolz>&lol9;</lolz>"
        let error = try #require(xmlFailure(doc))
        #expect(error.isDoctypeForbidden)
        #expect(!error.isLimit)
        #expect((error.line, error.column) == (2, 1))
        #expect(error.description == "line 2, column 1: DOCTYPE is not allowed")
    }

    @Test("XXE is refused at the DOCTYPE and the error quotes nothing of it")
    func xxe() throws {
        let doc = "<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>"
        let error = try #require(xmlFailure(doc))
        #expect(error.isDoctypeForbidden)
        for leak in ["root:", "passwd", "file:", "xxe", "SYSTEM"] {
            #expect(!error.description.contains(leak))
            #expect(!error.message.contains(leak))
        }
        #expect(xmlFailure("<a/><!doctype a>")?.isDoctypeForbidden == true)
        #expect(xmlFailure("<a><!DOCTYPE a></a>")?.isDoctypeForbidden == true)
    }

    @Test("a 50 MB document is refused before it is scanned")
    func tooLarge() throws {
        let data = Data(repeating: UInt8(ascii: "<"), count: 50 << 20)
        let error = xmlFailure(data)
        #expect(error?.isTooLarge == true)
        #expect(error?.isLimit == true)
        // Line 0: refused by its size, before the first byte was read as XML.
        #expect(error?.line == 0)
        var limits = XMLLimits()
        limits.maxBytes = 4
        #expect(xmlFailure("<a/>", limits: limits) == nil)
        #expect(xmlFailure("<a />", limits: limits)?.isTooLarge == true)
    }

    @Test("10,000 nested elements fail with tooDeep, fast and without recursion")
    func tooDeep() throws {
        let depth = 10_000
        let doc = String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)
        let error = try #require(xmlFailure(doc))
        #expect(error.isTooDeep && error.isLimit)
        #expect((error.line, error.column) == (1, 64 * 3 + 1))
        var limits = XMLLimits()
        limits.maxDepth = 3
        #expect(xmlFailure("<a><b><c/></b></a>", limits: limits) == nil)
        #expect(xmlFailure("<a><b><c><d/></c></b></a>", limits: limits)?.isTooDeep == true)
    }

    @Test("200,000 siblings fail with tooManyElements")
    func tooManyElements() throws {
        let doc = "<r>" + String(repeating: "<e/>", count: 200_000) + "</r>"
        var limits = XMLLimits()
        limits.maxBytes = 64 << 20
        let error = try #require(xmlFailure(doc, limits: limits))
        #expect(error.isTooManyElements && error.isLimit)
        limits.maxElements = 3
        #expect(xmlFailure("<r><e/><e/></r>", limits: limits) == nil)
        #expect(xmlFailure("<r><e/><e/><e/></r>", limits: limits)?.isTooManyElements == true)
    }

    @Test("attribute count, name length and text length limits")
    func otherLimits() throws {
        var limits = XMLLimits()
        limits.maxAttributesPerElement = 2
        #expect(xmlFailure("<a x='1' xmlns:p='u'/>", limits: limits) == nil)
        #expect(xmlFailure("<a x='1' y='2' z='3'/>", limits: limits)?.isTooManyAttributes == true)
        limits = XMLLimits()
        limits.maxNameBytes = 8
        #expect(xmlFailure("<ab:cdefg xmlns:ab='u'/>", limits: limits) == nil)
        let long = try #require(xmlFailure("<ab:cdefgh xmlns:ab='u'/>", limits: limits))
        #expect(long.isNameTooLong && long.isLimit)
        #expect(xmlFailure("<a abcdefghi='1'/>", limits: limits)?.isNameTooLong == true)
        limits = XMLLimits()
        limits.maxTextBytes = 4
        #expect(xmlFailure("<a v='abcd'>ab<b/>cd&amp;</a>", limits: limits) == nil)
        #expect(xmlFailure("<a>abcde</a>", limits: limits)?.isTextTooLong == true)
        #expect(xmlFailure("<a>ab<!-- x -->c<![CDATA[de]]></a>", limits: limits)?.isTextTooLong == true)
        #expect(xmlFailure("<a v='abcde'/>", limits: limits)?.isTextTooLong == true)
    }

    @Test("undefined entities and invalid character references are malformed")
    func references() throws {
        let undefined = try #require(xmlFailure("<a>&nbsp;</a>"))
        #expect(undefined.isMalformed)
        #expect(undefined.message == "undefined entity reference")
        #expect(xmlFailure("<a v='&foo;'/>")?.message == "undefined entity reference")
        for bad in [
            "&#0;", "&#xD800;", "&#x110000;", "&#1;", "&#xFFFE;", "&#99999999999999999999;", "&#;", "&#x;", "&#65",
            "& b", "&;",
        ] {
            #expect(xmlFailure("<a>\(bad)</a>")?.isMalformed == true, "\(bad)")
        }
    }

    @Test("structural errors are malformed, with line and column")
    func structure() throws {
        let mismatch = try #require(xmlFailure("<a>\n  <b></c>\n</a>"))
        #expect(mismatch.isMalformed)
        #expect(mismatch.description == "line 2, column 6: end tag </c> does not match <b>")
        let wide = try #require(xmlFailure("<a>\r\n\rünï😀&bad;</a>"))
        #expect((wide.line, wide.column) == (3, 5), "columns count characters; CRLF and CR end lines")
        let twoRoots = try #require(xmlFailure("<a/>\n<b/>"))
        #expect(twoRoots.message == "more than one root element")
        #expect((twoRoots.line, twoRoots.column) == (2, 1))
        let cases = [
            "", "   ", "text", "<!-- only a comment -->", "<a>", "<a></a>trailing", "x<a/>", "<a></A>",
            "<a><b></a></b>",
            "<a x='1' x='2'/>", "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>", "<a xmlns:p='u' xmlns:p='v'/>",
            "<a v='<'/>", "<a v=1/>", "<a v='1'w='2'/>", "<a v/>", "<a><!ELEMENT a ANY></a>", "<!ENTITY a 'b'><a/>",
            "<a>]]></a>", "<a><!-- a -- b --></a>", "<a><!-- open</a>", "<a><![CDATA[open</a>", "<a><?pi open</a>",
            " <?xml version='1.0'?><a/>", "<a/><?xml version='1.0'?>", "<?xml version='2.0'?><a/>",
            "<?xml encoding='UTF-8'?><a/>", "<a:b:c/>", "<1a/>", "<a:/>", "<:a/>", "<xmlns:a/>", "<a xmlns:xmlns='u'/>",
            "<a xmlns:p=''/>", "<a xmlns:xml='urn:other'/>", "<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>",
            "<a>\u{1}</a>", "<a/ >", "< a/>",
        ]
        for doc in cases {
            #expect(xmlFailure(doc)?.isMalformed == true, "\(doc)")
        }
    }

    @Test("only UTF-8: declared encodings, byte-order marks and invalid bytes")
    func encodings() throws {
        let latin1 = try #require(xmlFailure("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"))
        #expect(latin1.isMalformed)
        #expect(latin1.message == "only UTF-8 is accepted")
        #expect(xmlFailure(Data([0xFF, 0xFE, 0x3C, 0x00, 0x61, 0x00]))?.message == "only UTF-8 is accepted")
        let invalid: [[UInt8]] = [
            [0xC3, 0x28], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xE2, 0x82],
        ]
        for bytes in invalid {
            let data = Data("<a>x".utf8) + Data(bytes) + Data("</a>".utf8)
            let error = try #require(xmlFailure(data), "\(bytes)")
            #expect(error.isMalformed && error.message == "invalid UTF-8", "\(bytes)")
            #expect((error.line, error.column) == (1, 5))
        }
    }

    @Test("prefixes must be declared in scope; unprefixed attributes have no namespace")
    func unboundPrefixes() throws {
        let element = try #require(xmlFailure("<a><p:b/></a>"))
        #expect(element.isUnboundPrefix && !element.isMalformed)
        #expect(element.description == "line 1, column 4: namespace prefix p of p:b is not declared")
        #expect(xmlFailure("<a p:x='1'/>")?.isUnboundPrefix == true)
        #expect(xmlFailure("<a><b xmlns:p='u'/><p:c/></a>")?.isUnboundPrefix == true, "declarations are scoped")
        let root = try parseXML("<a xmlns='urn:d' x='1'/>")
        #expect(root.name.namespace == "urn:d")
        #expect(root.attributes.first?.name == XMLName("x"))
    }

    @Test("long names are cut to 64 bytes in messages")
    func quotedNames() throws {
        let name = String(repeating: "n", count: 200)
        let error = try #require(xmlFailure("<\(name)></x>"))
        #expect(error.isMalformed)
        #expect(error.description.utf8.count < 200)
        #expect(error.message.contains(String(repeating: "n", count: 61) + "..."))
    }
}
