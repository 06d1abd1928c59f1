/**
 * The wire types the extension shares with `buildd lsp`, mirroring the Rust types by name.
 *
 * The LSP extensions (`buildd/state`, `buildd/status`, the `buildd.rebuild` and `buildd.cancel`
 * commands, the initialization options) are the `lsp` crate's; `StatusReport` and the types
 * below it are `daemon/src/wire/protocol.rs`'s, documented field by field in `docs/protocol.md`.
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

/** The stages a daemon job can run, in the order given. */
export type Stage = 'check' | 'build' | 'test';
export const STAGES: readonly Stage[] = ['check', 'build', 'test'];

/** `initializationOptions` of `initialize`; every field is optional. */
export interface InitializationOptions {
    stages?: Stage[];
    jobs?: number;
    debounceMs?: number;
    nice?: number;
    jobTimeoutSecs?: number;
    linker?: string;
    sccache?: boolean;
    noStart?: boolean;
}

/** `WorkspaceState` in `daemon/src/wire/protocol.rs`. */
export type WorkspaceState = 'idle' | 'queued' | 'running' | 'failed' | 'error';

/** The params of `buildd/state`. */
export interface StateParams {
    /** The cargo workspace root, an absolute path. */
    root: string;
    /** The same root as a `file://` URI. */
    uri: string;
    state: WorkspaceState;
    /** Why the workspace cannot be built, in the `error` state. */
    error: string | null;
    errors: number;
    warnings: number;
    /** The running (or last) job's generation number. */
    job: number | null;
    /** 0 to 100, while a job runs and its size is known. */
    percentage: number | null;
    /** What the job is doing, such as the crate being compiled. */
    message: string | null;
    /** The isolated target dir; null until the build key is known. */
    targetDir: string | null;
    daemon: DaemonLink;
}

/** Whether `buildd lsp` is connected to the daemon. */
export type DaemonLink = 'up' | 'down';

/** The params of `buildd/status`: any URI inside a workspace, or none for all of them. */
export interface StatusParams {
    uri?: string;
}

/** `StatusReport`: the result of `buildd/status`, and the output of `buildd status --json`. */
export interface StatusReport {
    daemon: DaemonInfo;
    workspaces: WorkspaceStatus[];
}

export interface DaemonInfo {
    pid: number;
    version: string;
    protocol: number;
    uptime_secs: number;
    socket: string;
    log_path: string;
    cache_dir: string;
    idle_timeout_secs: number;
    clients: number;
}

export interface WorkspaceStatus {
    root: string;
    state: WorkspaceState;
    error: string | null;
    target_dir: string | null;
    target_dir_size: number | null;
    key: BuildKeyInfo | null;
    // The fields below are optional here so that the view still works with a daemon from
    // before they existed.
    last_change?: LastChange | null;
    current_job?: CurrentJob | null;
    last_job: JobSummary | null;
    last_tests?: TestReport | null;
    jobs_started?: number;
    prediction?: PredictionStats;
    watcher?: WatcherStatus;
    diagnostics: DiagnosticSummary[];
}

/** The last test run a `buildd watch --test` loop reported. */
export interface TestReport {
    job: number;
    runner: string;
    passed: number;
    failed: number;
    ignored: number;
    failing: FailingTest[];
    duration_ms: number;
    exit_code: number | null;
}

export interface FailingTest {
    name: string;
    file: string | null;
    line: number | null;
    column: number | null;
    message: string | null;
}

export interface CurrentJob {
    id: number;
    stages: string[];
    stage: string | null;
    units_done: number;
}

export interface LastChange {
    files: string[];
    predicted: string[];
    full: boolean;
}

export interface PredictionStats {
    jobs: number;
    precision: number | null;
    recall: number | null;
}

export interface WatcherStatus {
    /** `native` or `poll`. */
    kind: string;
    rescans: number;
    note: string | null;
}

export interface BuildKeyInfo {
    hash: string;
    rustc: string;
    host: string;
    target: string;
    profile: string;
    features: string;
    env: Record<string, string>;
}

export type JobResult = 'success' | 'failed' | 'cancelled' | 'yielded';

export interface JobSummary {
    id: number;
    stages: string[];
    result: JobResult;
    duration_ms: number;
    units_compiled: number;
    errors: number;
    warnings: number;
    rebuilt?: string[];
    failure: string | null;
}

export type Severity = 'error' | 'warning' | 'note' | 'help';

export interface DiagnosticSummary {
    file: string;
    /** 1-based. */
    line: number;
    /** 1-based, in characters. */
    column: number;
    severity: Severity;
    message: string;
}
