/**
 * The wire types the extension shares with `buildd lsp`, mirroring the Rust types by name.
 *
 * The LSP extensions (`buildd/state`, `buildd/status`, the `buildd.rebuild` and `buildd.cancel`
 * commands, the initialization options) are the `lsp` crate's; `StatusReport` and the types
 * below it are `daemon/src/wire/protocol.rs`'s, documented field by field in `docs/protocol.md`.
 * The types of messages (`StateParams`, `StatusParams`, `StatusReport` and everything in it)
 * are generated from the Rust ones into `generated/wire.ts`, which a Rust test keeps in step;
 * what is left here is what no Rust type states: method names, and the initialization
 * options, which the server reads leniently field by field.
 * Only types and method names live here: no logic, and no import of `vscode`, so that every
 * module can use them and the unit tests run without VS Code.
 */

/** The notification `buildd lsp` sends when a workspace's state changes. */
export const STATE_NOTIFICATION = 'buildd/state';
/** The request whose result is exactly `buildd status --json`. */
export const STATUS_REQUEST = 'buildd/status';
/** `workspace/executeCommand` commands of the server; their optional argument is `[uri]`. */
export const REBUILD_COMMAND = 'buildd.rebuild';
export const CANCEL_COMMAND = 'buildd.cancel';
/**
 * The command of the code action "Show the full compiler output (buildd)"; its argument is
 * `{ title, rendered }`. The extension shows it in a read-only document (`rendered_view.ts`).
 */
export const SHOW_RENDERED_COMMAND = 'buildd.showRenderedDiagnostic';

/** The stages a daemon job can run, in the order given. */
export type Stage = 'check' | 'build' | 'test';
export const STAGES: readonly Stage[] = ['check', 'build', 'test'];

/** One job definition of `buildd.jobs` (`[jobs.NAME]` of `buildd.toml`). */
export interface JobDefinition {
    /** cargo's arguments: a subcommand that only compiles, and its options. */
    command?: string[];
    /** Whether its compiler messages are the editor's diagnostics. */
    diagnostics?: boolean;
    /** `false` turns the job (or a default job of that name) off. */
    enabled?: boolean;
}

/** `initializationOptions` of `initialize`; every field is optional. */
export interface InitializationOptions {
    stages?: Stage[];
    /** Job definitions by name, or (the old meaning) cargo's `--jobs`. */
    jobs?: Record<string, JobDefinition> | number;
    cargoJobs?: number;
    learn?: boolean;
    debounceMs?: number;
    nice?: number;
    jobTimeoutSecs?: number;
    linker?: string;
    sccache?: boolean;
    noStart?: boolean;
    /** `false`: register each folder's own workspace only, not those found under it. */
    discoverWorkspaces?: boolean;
}

export * from './generated/wire';
