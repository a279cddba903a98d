extension String {
    /// Without any trailing repeats of `suffix` (a public URL's `/` before paths are appended).
    package func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
