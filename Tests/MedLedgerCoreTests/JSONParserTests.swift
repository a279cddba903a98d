import MedLedgerCore
import Testing

@Suite struct JSONParserTests {
    @Test func keepsNumberTextAndMemberOrder() throws {
        let value = try JSONParser.parse(#" {"b": 1.50, "a": [1e2, -0, 0.000], "c": {"z": null, "y": true}} "#)
        #expect(value.serializedString == #"{"b":1.50,"a":[1e2,-0,0.000],"c":{"z":null,"y":true}}"#)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#""a\"b\\c\/\b\f\n\r\t\u00e9\ud83d\ude00""#)
        #expect(value == .string("a\"b\\c/\u{08}\u{0C}\n\r\té😀"))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "\"abc", "\"\\x\"",
        "\"\\ud800\"", "\"\\udc00x\"", "\"\\ud800\\u0041\"", "{\"a\" 1}", "{1:2}", "[1 2]", "1 2", "\"\u{01}\"", "NaN", "Infinity",
        "{\"a\":1,\"a\":2}",
    ])
    func rejectsMalformedJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: JSONParser.maximumDepth + 2) + String(repeating: "]", count: JSONParser.maximumDepth + 2)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try JSONParser.parse(fine).arrayValue?.count == 1)
    }

    @Test func reportsWhereTheErrorIs() {
        #expect {
            try JSONParser.parse(#"{"a":1, "a":2}"#)
        } throws: { error in
            (error as? JSONParseError)?.offset == 8 && (error as? JSONParseError)?.message == "duplicate key \"a\""
        }
    }
}
