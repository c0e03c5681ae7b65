/// The library's version, as `spindle --version` prints it. (Not named `Spindle`: a type named
/// like its module would hide the module in qualified names such as `Spindle.Engine`.)
public enum SpindleVersion {
    /// Semantic version of the library and the CLI.
    public static let current = "0.1.0"
}
