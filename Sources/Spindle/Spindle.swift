/// Spindle's version, as printed by `spindle --version`.
public enum Spindle {
    /// Semantic version of the library and the CLI.
    public static let version = "0.1.0"
}
