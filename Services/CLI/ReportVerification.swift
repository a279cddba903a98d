import MedLedgerCore

/// Why an offline verification failed, as one line for the user.
struct VerifyFailure: Error, Equatable {
    var message: String

    init(_ message: String) { self.message = message }
}

/// What the user holds of a version; the committed bytes come from it (design guide, "Integrity
/// and privacy of every version"): a resource's RFC 8785 form, a Binary's content, or nothing.
enum HeldVersion: Sendable {
    /// The resource JSON as vread served it, in any formatting (a Binary's `data` is its content).
    case resource([UInt8])
    /// A Binary version's raw content.
    case content([UInt8])
    /// A deletion version, which commits to the empty byte string.
    case deleted
}

/// A version proven to be a leaf of the log.
struct VerifiedVersion: Sendable, Equatable {
    var target: String
    var leafIndex: Int64
    var origin: String
    var treeSize: Int64

    var summary: String { "verified: \(target) is leaf \(leafIndex) of \(origin) (tree size \(treeSize))" }
}

/// `medledger verify --parameters`: checks a downloaded version against its `$verify` Parameters
/// offline. Nothing the server says is trusted on its word: the entry is recomputed from the held
/// version and the salt, and only the log's verifier key vouches for the leaf.
enum ReportVerification {
    static func verify(_ held: HeldVersion, parameters: [UInt8], verifier: NoteVerifier) throws(VerifyFailure) -> VerifiedVersion {
        let anchor = try AnchorParameters(parameters)
        let committed = try committedBytes(held, anchor: anchor)
        guard LedgerEntry.ref(salt: anchor.salt, versionReference: anchor.target) == anchor.entry.ref else {
            throw VerifyFailure("the entry's ref is not SHA3-256(salt ‖ \"\(anchor.target)\"): a wrong salt, or another version's entry")
        }
        guard LedgerEntry.commitment(salt: anchor.salt, canonical: committed) == anchor.entry.commitment else {
            throw VerifyFailure("the \(held.noun) does not match the entry's commitment: it was changed, or is not \(anchor.target)")
        }
        // The leaf is the entry's RFC 8785 form, re-serialised from its parsed fields.
        let checkpoint: Checkpoint
        do {
            checkpoint = try anchor.proof.verify(leafData: anchor.entry.canonical, verifier: verifier)
        } catch {
            throw VerifyFailure("the entry is not proven to be in the log: \(error.message)")
        }
        return VerifiedVersion(target: anchor.target, leafIndex: anchor.proof.index, origin: checkpoint.origin, treeSize: checkpoint.size)
    }

    /// The bytes the commitment covers, after checking that the held version is the target and,
    /// where it carries one, that its `meta.lastUpdated` is the entry's time.
    static func committedBytes(_ held: HeldVersion, anchor: AnchorParameters) throws(VerifyFailure) -> [UInt8] {
        let isBinary = anchor.target.hasPrefix("Binary/")
        switch held {
        case .deleted:
            return []
        case .content(let bytes):
            guard isBinary else {
                throw VerifyFailure("--content is for Binary versions, but the Parameters are for \(anchor.target) (use --resource)")
            }
            return bytes
        case .resource(let bytes):
            let resource: JSONValue
            do {
                resource = try JSONParser.parse(bytes)
            } catch {
                throw VerifyFailure("the resource is not valid JSON: \(error)")
            }
            guard let type = resource["resourceType"]?.stringValue, let id = resource["id"]?.stringValue,
                let version = resource["meta"]?["versionId"]?.stringValue, let lastUpdated = resource["meta"]?["lastUpdated"]?.stringValue
            else { throw VerifyFailure("the resource lacks resourceType, id, meta.versionId or meta.lastUpdated (use the version's vread JSON)") }
            let reference = "\(type)/\(id)/_history/\(version)"
            guard reference == anchor.target else { throw VerifyFailure("the resource is \(reference), but the Parameters are for \(anchor.target)") }
            guard lastUpdated == anchor.entry.time else {
                throw VerifyFailure("the entry's time \(anchor.entry.time) is not the resource's meta.lastUpdated \(lastUpdated)")
            }
            guard !isBinary else {
                // A Binary commits to its content, which its JSON carries as base64 `data` (absent when empty).
                guard let data = resource["data"]?.stringValue else { return [] }
                guard let content = Base64.decode(data) else { throw VerifyFailure("the Binary's data is not base64") }
                return content
            }
            do {
                return try resource.canonicalized()
            } catch {
                throw VerifyFailure("the resource has no RFC 8785 form: \(error)")
            }
        }
    }
}

extension HeldVersion {
    fileprivate var noun: String {
        switch self {
        case .resource: "resource"
        case .content: "content"
        case .deleted: "deletion (the empty byte string)"
        }
    }
}

/// The parts of a `$verify` Parameters that the offline check uses.
struct AnchorParameters {
    /// "Type/id/_history/vid".
    var target: String
    var salt: [UInt8]
    var entry: LedgerEntry
    var proof: TlogProof

    init(_ bytes: [UInt8]) throws(VerifyFailure) {
        let parameters: JSONValue
        do {
            parameters = try JSONParser.parse(bytes)
        } catch {
            throw VerifyFailure("the Parameters are not valid JSON: \(error)")
        }
        guard parameters["resourceType"]?.stringValue == "Parameters", let list = parameters["parameter"]?.arrayValue else {
            throw VerifyFailure("the Parameters file is not a FHIR Parameters resource (download it from $verify)")
        }
        func value(_ name: String, _ key: String) throws(VerifyFailure) -> JSONValue? {
            let matches = list.filter { $0["name"]?.stringValue == name }
            guard matches.count <= 1 else { throw VerifyFailure("the Parameters have more than one \(name)") }
            guard let match = matches.first else { return nil }
            guard let value = match[key] else { throw VerifyFailure("the Parameters' \(name) has no \(key)") }
            return value
        }
        func string(_ name: String, _ key: String = "valueString") throws(VerifyFailure) -> String? {
            guard let value = try value(name, key) else { return nil }
            guard let text = value.stringValue else { throw VerifyFailure("the Parameters' \(name) is not a string") }
            return text
        }

        guard let target = try value("target", "valueReference")?["reference"]?.stringValue else {
            throw VerifyFailure("the Parameters have no target reference")
        }
        let parts = target.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[2] == "_history", !parts[0].isEmpty, !parts[1].isEmpty, !parts[3].isEmpty,
            parts[3].allSatisfy({ $0.isASCII && $0.isNumber })
        else {
            throw VerifyFailure("the target \(target) is not a versioned reference Type/id/_history/vid")
        }
        self.target = target
        if try string("result", "valueCode") == "mismatch" {
            let issues = list.filter { $0["name"]?.stringValue == "issue" }.compactMap { $0["valueString"]?.stringValue }
            throw VerifyFailure("the server reports a mismatch for \(target)" + (issues.isEmpty ? "" : ": " + issues.joined(separator: "; ")))
        }
        guard let proofText = try string("tlogProof") else {
            throw VerifyFailure("\(target) is still pending: its Parameters have no tlogProof yet (download them again once it is anchored)")
        }
        guard let saltText = try string("salt", "valueBase64Binary") else { throw VerifyFailure("the Parameters have no salt") }
        guard let salt = Base64.decode(saltText), salt.count == LedgerEntry.saltSize else {
            throw VerifyFailure("the salt is not \(LedgerEntry.saltSize) base64 bytes")
        }
        self.salt = salt
        guard let entryText = try string("entry") else { throw VerifyFailure("the Parameters have no entry") }
        guard let json = try? JSONParser.parse(Array(entryText.utf8)), let entry = LedgerEntry(json) else {
            throw VerifyFailure("the entry is not a version entry {\"v\":1,\"commitment\",\"ref\",\"time\"}")
        }
        self.entry = entry
        do {
            proof = try TlogProof.parse(proofText)
        } catch {
            throw VerifyFailure("the tlogProof: \(error.message)")
        }
    }
}
