/**
 * The words of the notifications for a server that does not start or does not stay up: what
 * went wrong, in buildd's own words where it said any (the last lines of `buildd lsp`'s
 * stderr), and what to do about it. Pure, without `vscode`, so each case is unit-tested.
 */

/** Keeps the last lines a process wrote, for the message that reports its failure. */
export class Tail {
    private lines: string[] = [];
    private partial = '';

    constructor(private readonly max = 20) {}

    push(chunk: string): void {
        const parts = (this.partial + chunk).split('\n');
        this.partial = parts.pop() ?? '';
        this.lines.push(...parts.filter((l) => l.trim() !== ''));
        if (this.lines.length > this.max) {
            this.lines = this.lines.slice(-this.max);
        }
    }

    /** The lines so far, the unfinished one included. */
    text(): string {
        return [...this.lines, ...(this.partial.trim() ? [this.partial] : [])].join('\n');
    }
}

/**
 * The last error line buildd wrote (`error: ...` from clap, `buildd: ...` from buildd itself),
 * or else its last line.
 */
export function lastError(stderr: string): string | undefined {
    const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const errors = lines.filter((l) => /^(error|buildd)(\[[^\]]*\])?:/i.test(l) || /\bERROR\b/.test(l));
    return errors.pop() ?? lines.pop();
}

/** The notification for a `buildd lsp` that failed to start or to initialize. */
export function startFailureMessage(serverPath: string, stderr: string, error: string): string {
    if (/unrecognized subcommand '?lsp'?/.test(stderr)) {
        return `${serverPath} is a buildd without \`buildd lsp\`, too old for this extension: `
            + 'install a newer buildd (or point buildd.path at one), then restart buildd';
    }
    const said = lastError(stderr);
    const why = said ?? error;
    return `buildd lsp could not start: ${why}. `
        + 'If the daemon is the problem, `buildd status` in a terminal says why, and its log has the details; '
        + 'then run "buildd: Restart the Server"';
}

/** The notification for a `buildd lsp` that stopped after it had started. */
export function crashMessage(stderr: string, crashes: number, willRestart: boolean): string {
    const said = lastError(stderr);
    const head = `buildd lsp stopped unexpectedly${said ? `: ${said}` : ''}.`;
    return willRestart
        ? `${head} It was restarted.`
        : `${head} It stopped ${crashes} times in 3 minutes and is not restarted again: `
            + 'the buildd output has its log; run "buildd: Restart the Server" once the cause is fixed';
}
