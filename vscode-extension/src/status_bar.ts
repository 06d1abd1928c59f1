/**
 * What the status bar item says: a pure function of the server's state and the latest
 * `buildd/state` of each workspace. The item itself (a `vscode.StatusBarItem`) lives in the
 * `Ctx`; this module does not import `vscode`, so every text is unit-tested.
 *
 * The text uses VS Code's `$(icon)` syntax; the words after the icon carry the meaning on
 * their own (a screen reader, or a test reading the DOM, sees only them).
 */
import * as path from 'node:path';

import { StateParams, WorkspaceState } from './protocol';

/** The language client's side of things, which `buildd/state` cannot tell. */
export type ServerStatus =
    | { kind: 'starting' }
    | { kind: 'running' }
    | { kind: 'stopped'; reason: string };

export interface StatusBarView {
    text: string;
    tooltip: string;
    /** Which of the two status bar backgrounds VS Code allows, if any. */
    background: 'error' | 'warning' | undefined;
}

const CLICK = 'Click to show the status.';

export function statusBarView(
    server: ServerStatus,
    states: readonly StateParams[],
    activeFile?: string,
    daemonDownIsNews = true,
): StatusBarView {
    if (server.kind === 'stopped') {
        return {
            text: '$(circle-slash) buildd: stopped',
            tooltip: `buildd is not running: ${server.reason}\nRun "buildd: Restart the Server" to start it again.`,
            background: 'error',
        };
    }
    const state = pickState(states, activeFile);
    if (server.kind === 'starting' || state === undefined) {
        return {
            text: '$(loading~spin) buildd: starting',
            tooltip: 'buildd is registering the workspace with the daemon.',
            background: undefined,
        };
    }
    const others = states.length > 1 ? `\n(${states.length} workspaces: this is ${path.basename(state.root)})` : '';
    const where = `${state.root}${others}`;
    if (state.daemon === 'down' && !daemonDownIsNews) {
        return {
            text: '$(loading~spin) buildd: connecting',
            tooltip: `buildd lsp is connecting to the daemon, starting it if needed.${state.error ? `\n${state.error}` : ''}\n${where}`,
            background: undefined,
        };
    }
    if (state.daemon === 'down') {
        return {
            text: '$(debug-disconnect) buildd: daemon down',
            tooltip: `The buildd daemon is not reachable; nothing is being built.${state.error ? `\n${state.error}` : ''}\n${where}\n`
                + 'Run "buildd: Restart the Server" to start it again, or "buildd: Open the Daemon Log" to see why it stopped.',
            background: 'error',
        };
    }
    const counts = countsText(state.errors, state.warnings);
    const withCounts = (text: string) => (counts ? `${text}, ${counts}` : text);
    switch (state.state) {
        case 'idle':
            return {
                text: withCounts('$(check) buildd: warm'),
                tooltip: `Warm: cargo finds nothing left to compile.\n${where}\n${CLICK}`,
                background: state.warnings > 0 ? 'warning' : undefined,
            };
        case 'queued':
            return {
                text: withCounts('$(clock) buildd: queued'),
                tooltip: `Changes are waiting for the next build.\n${where}\n${CLICK}`,
                background: undefined,
            };
        case 'running': {
            const pct = state.percentage === null ? '' : ` ${Math.max(0, Math.min(100, Math.round(state.percentage)))}%`;
            const doing = state.message ? `\n${state.message}` : '';
            return {
                text: withCounts(`$(sync~spin) buildd: building${pct}`),
                tooltip: `Building${state.job === null ? '' : ` (job ${state.job})`}.${doing}\n${where}\n${CLICK}`,
                background: undefined,
            };
        }
        case 'failed':
            return {
                text: `$(error) buildd: ${counts || 'failed'}`,
                tooltip: `The last build failed${counts ? ` with ${counts}` : ''}; see the Problems panel.\n${where}\n${CLICK}`,
                background: 'error',
            };
        case 'error':
            return {
                text: '$(alert) buildd: cannot build',
                tooltip: `The workspace cannot be built as it is: ${state.error ?? 'no reason given'}\n`
                    + `It recovers by itself once fixed.\n${where}\n${CLICK}`,
                background: 'error',
            };
        default:
            return unknownState(state.state);
    }
}

function unknownState(state: never): StatusBarView {
    return { text: `$(question) buildd: ${String(state)}`, tooltip: CLICK, background: undefined };
}

/** "1 error", "2 warnings", "1 error, 2 warnings", or "" when both are zero. */
export function countsText(errors: number, warnings: number): string {
    const parts: string[] = [];
    if (errors > 0) {
        parts.push(`${errors} ${errors === 1 ? 'error' : 'errors'}`);
    }
    if (warnings > 0) {
        parts.push(`${warnings} ${warnings === 1 ? 'warning' : 'warnings'}`);
    }
    return parts.join(', ');
}

const SEVERITY: Record<WorkspaceState, number> = { error: 4, failed: 3, running: 2, queued: 1, idle: 0 };

/**
 * The state to show: the workspace containing the active file (the innermost, for nested
 * workspaces); with no such file, the only workspace, or the one that most needs attention.
 */
export function pickState(states: readonly StateParams[], activeFile?: string): StateParams | undefined {
    if (activeFile !== undefined) {
        const containing = states
            .filter((s) => isInside(activeFile, s.root))
            .sort((a, b) => b.root.length - a.root.length);
        if (containing.length > 0) {
            return containing[0];
        }
    }
    let worst: StateParams | undefined;
    for (const s of states) {
        if (worst === undefined || SEVERITY[s.state] > SEVERITY[worst.state]) {
            worst = s;
        }
    }
    return worst;
}

export function isInside(file: string, root: string): boolean {
    const rel = path.relative(root, file);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
