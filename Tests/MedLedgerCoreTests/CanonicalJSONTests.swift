import MedLedgerCore
import Testing

/// RFC 8785's own examples (section 3.2.2, 3.2.3 and appendix B).
@Suite struct CanonicalJSONTests {
    func canonical(_ text: String) throws -> String {
        String(decoding: try JSONParser.parse(text).canonicalized(), as: UTF8.self)
    }

    @Test func rfc8785Section323Example() throws {
        let input = #"""
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        let expected = #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try canonical(input) == expected)
    }

    @Test func sortsKeysByUTF16CodeUnits() throws {
        // RFC 8785 section 3.2.3's sorting example: keys with astral characters sort by their surrogates.
        let input = #"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#
        let keys = try JSONParser.parse(try canonical(input))
        guard case .object(let members) = keys else { Issue.record("not an object"); return }
        #expect(members.map(\.value.stringValue!) == [
            "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign", "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ])
    }

    /// Appendix B: IEEE 754 doubles and their ECMAScript text.
    @Test(arguments: [
        (0x0000_0000_0000_0000, "0"), (0x8000_0000_0000_0000, "0"), (0x0000_0000_0000_0001, "5e-324"), (0x8000_0000_0000_0001, "-5e-324"),
        (0x7FEF_FFFF_FFFF_FFFF, "1.7976931348623157e+308"), (0xFFEF_FFFF_FFFF_FFFF, "-1.7976931348623157e+308"),
        (0x4340_0000_0000_0000, "9007199254740992"), (0xC340_0000_0000_0000, "-9007199254740992"), (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44B5_2D02_C7E1_4AF5, "9.999999999999997e+22"), (0x44B5_2D02_C7E1_4AF6, "1e+23"), (0x44B5_2D02_C7E1_4AF7, "1.0000000000000001e+23"),
        (0x444B_1AE4_D6E2_EF4E, "999999999999999700000"), (0x444B_1AE4_D6E2_EF4F, "999999999999999900000"), (0x444B_1AE4_D6E2_EF50, "1e+21"),
        (0x3EB0_C6F7_A0B5_ED8C, "9.999999999999997e-7"), (0x3EB0_C6F7_A0B5_ED8D, "0.000001"), (0x41B3_DE43_5555_5553, "333333333.3333332"),
        (0x41B3_DE43_5555_5554, "333333333.33333325"), (0x41B3_DE43_5555_5555, "333333333.3333333"), (0x41B3_DE43_5555_5556, "333333333.3333334"),
        (0x41B3_DE43_5555_5557, "333333333.33333343"), (0xBECB_F647_612F_3696, "-0.0000033333333333333333"),
        (0x4314_3FF3_C1CB_0959, "1424953923781206.2"),
    ] as [(UInt64, String)])
    func formatsDoublesLikeECMAScript(_ bits: UInt64, _ expected: String) throws {
        let value = Double(bitPattern: bits)
        #expect(ECMAScriptNumber.format(value) == expected)
        // And through the parser: the shortest text reads back to the same double.
        #expect(try canonical(String(value)) == expected)
    }

    @Test func rejectsNumbersOutsideDoubleRange() throws {
        #expect(throws: CanonicalizationError.self) { try JSONParser.parse("[1e400]").canonicalized() }
        #expect(try canonical("[1e-400, 1.50, -0.0, 100, 1e21, 1e-7, 123e-2]") == "[0,1.5,0,100,1e+21,1e-7,1.23]")
    }

    @Test func exactIntegersRejectsWhatADoubleWouldRound() throws {
        let big = try JSONParser.parse(#"{"n":12345678901234567890}"#)
        #expect(String(decoding: try big.canonicalized(), as: UTF8.self) == #"{"n":12345678901234567000}"#)
        #expect(throws: CanonicalizationError.self) { try big.canonicalized(exactIntegers: true) }
        let fine = try JSONParser.parse(#"[9007199254740991, -9007199254740991, 1e300, 0.1]"#)
        #expect(String(decoding: try fine.canonicalized(exactIntegers: true), as: UTF8.self) == "[9007199254740991,-9007199254740991,1e+300,0.1]")
    }

    @Test func escapesOnlyWhatJSONRequires() throws {
        #expect(try canonical(#""\u0000\u001f\u007f\u2028<>&'""#) == "\"\\u0000\\u001f\u{7f}\u{2028}<>&'\"")
    }
}
