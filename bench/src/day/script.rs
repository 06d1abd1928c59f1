//! The day mode's script: the cargo commands a user runs between two edits, as written on
//! the command line (`clippy; run -p app; test -p lib001; build --release`), checked and
//! turned into the arguments both sides run.
//!
//! Parsing only: nothing here runs a command. Arguments are split at whitespace, with no
//! quoting: a script is a few cargo commands, and a quote is refused rather than guessed at.

use anyhow::{bail, ensure};

/// The script of a generated workspace: its binary is `app`, its base library `lib001`.
pub(crate) const GENERATED: &str = "clippy; run -p app; test -p lib001; build --release";

/// The subcommands a script may use: those that compile (and, for `run` and `test`, run
/// what they built).
const SUBCOMMANDS: &[&str] = &[
    "check", "c", "clippy", "build", "b", "run", "r", "test", "t", "bench", "doc", "d", "rustc",
];

/// One of the user's commands, the arguments after `cargo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayCommand {
    pub(crate) args: Vec<String>,
}

impl DayCommand {
    /// `cargo clippy`, `cargo run -p app`: how the report names it.
    pub(crate) fn label(&self) -> String {
        format!("cargo {}", self.args.join(" "))
    }

    /// What a side runs: the command with `--message-format=json`, so that the units it
    /// compiled are counted from cargo's own `fresh` flags. It goes before a `--`, after
    /// which it would be the program's or the test binary's.
    pub(crate) fn with_json(&self) -> Vec<String> {
        let mut args = self.args.clone();
        let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
        args.insert(at, "--message-format=json".to_owned());
        args
    }

    /// Whether its compiler messages are diagnostics an editor would show (`check`,
    /// `clippy`): the first such command is what the daemon's first diagnostic is compared
    /// with.
    pub(crate) fn is_diagnostics(&self) -> bool {
        matches!(self.subcommand(), "check" | "c" | "clippy")
    }

    fn subcommand(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

/// Parses a script: commands separated by `;` or new lines, each optionally starting with
/// `cargo`; blank commands and `#` comments are skipped.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<DayCommand>> {
    let mut commands = Vec::new();
    for (index, written) in text.split([';', '\n']).enumerate() {
        let written = written.trim();
        if written.is_empty() || written.starts_with('#') {
            continue;
        }
        commands.push(command(written).map_err(|e| {
            anyhow::anyhow!("--day-script: command {} (`{written}`): {e}", index + 1)
        })?);
    }
    ensure!(
        !commands.is_empty(),
        "--day-script has no command: give cargo commands separated by `;`, such as `{GENERATED}`"
    );
    Ok(commands)
}

fn command(written: &str) -> anyhow::Result<DayCommand> {
    if written.contains(['"', '\'', '\\']) {
        bail!("quoting is not supported: arguments are split at whitespace");
    }
    let mut args: Vec<String> = written.split_whitespace().map(str::to_owned).collect();
    if args.first().is_some_and(|a| a == "cargo") {
        args.remove(0);
    }
    let Some(first) = args.first() else {
        bail!("`cargo` alone is not a command; give its subcommand, such as `cargo build`");
    };
    if first.starts_with('+') || first.starts_with('-') {
        bail!(
            "it must start with cargo's subcommand, not `{first}` (a toolchain or cargo's own \
             options would give the two sides different builds)"
        );
    }
    if !SUBCOMMANDS.contains(&first.as_str()) {
        bail!(
            "`cargo {first}` is not a command that compiles; use one of {}",
            SUBCOMMANDS.join(", ")
        );
    }
    let before_dashes = || args.iter().take_while(|a| *a != "--");
    if let Some(bad) = before_dashes().find(|a| {
        ["--message-format", "--target-dir"]
            .iter()
            .any(|o| a.as_str() == *o || a.starts_with(&format!("{o}=")))
    }) {
        bail!(
            "remove `{bad}`: the harness sets the message format, and each side builds in its \
             own target dir"
        );
    }
    Ok(DayCommand { args })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Vec<String> {
        parse(text).unwrap().iter().map(DayCommand::label).collect()
    }

    #[test]
    fn the_generated_script_is_the_four_commands_of_a_day() {
        assert_eq!(
            labels(GENERATED),
            [
                "cargo clippy",
                "cargo run -p app",
                "cargo test -p lib001",
                "cargo build --release"
            ]
        );
    }

    #[test]
    fn commands_split_at_semicolons_and_lines_with_an_optional_cargo() {
        let text = "cargo check --all-targets\n# a comment\n\n  build ;; cargo test -- --nocapture";
        assert_eq!(
            labels(text),
            [
                "cargo check --all-targets",
                "cargo build",
                "cargo test -- --nocapture"
            ]
        );
    }

    #[test]
    fn json_goes_before_the_programs_arguments() {
        let commands = parse("run -p app -- 5; clippy").unwrap();
        assert_eq!(
            commands[0].with_json(),
            ["run", "-p", "app", "--message-format=json", "--", "5"]
        );
        assert_eq!(commands[1].with_json(), ["clippy", "--message-format=json"]);
        assert!(commands[1].is_diagnostics() && !commands[0].is_diagnostics());
    }

    #[test]
    fn bad_commands_are_refused_with_the_command_and_what_to_do() {
        for (script, expected) in [
            ("", "has no command"),
            ("  ; # nothing\n", "has no command"),
            ("build; cargo", "command 2 (`cargo`)"),
            ("+nightly build", "must start with cargo's subcommand"),
            ("--locked build", "must start with cargo's subcommand"),
            ("publish", "`cargo publish` is not a command that compiles"),
            ("build --message-format short", "remove `--message-format`"),
            ("build --target-dir=/t", "remove `--target-dir=/t`"),
            ("run -p 'app'", "quoting is not supported"),
        ] {
            let error = format!("{:#}", parse(script).unwrap_err());
            assert!(error.contains(expected), "{script:?}: {error}");
        }
        // After `--` the arguments are the program's.
        assert!(parse("run -- --message-format").is_ok());
    }
}
