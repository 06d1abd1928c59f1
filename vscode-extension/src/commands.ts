/**
 * The commands of the palette. Each is a thin function of the `Ctx`: it picks the workspace the
 * user means, asks the server (or `buildd`), and shows the result or a message saying what to
 * do. The ids differ from the server's `buildd.rebuild` and `buildd.cancel` on purpose: the
 * language client registers a VS Code command for each command the server advertises, and two
 * registrations of one id fail.
 */
import * as vscode from 'vscode';

import { Ctx } from './ctx';
import { CANCEL_COMMAND, REBUILD_COMMAND } from './protocol';
import { renderStatus } from './status_report';
import { terminalOptionsEnv } from './terminal_env';

const STATUS_SCHEME = 'buildd-status';
const STATUS_URI = vscode.Uri.from({ scheme: STATUS_SCHEME, path: '/buildd status.md' });

export function registerCommands(ctx: Ctx): vscode.Disposable[] {
    const statusView = new StatusView();
    return [
        vscode.workspace.registerTextDocumentContentProvider(STATUS_SCHEME, statusView),
        command('buildd.showStatus', () => showStatus(ctx, statusView)),
        command('buildd.rebuildWorkspace', async () => {
            await ctx.executeServerCommand(REBUILD_COMMAND, await pickWorkspace());
            vscode.window.setStatusBarMessage('buildd: rebuild requested', 3000);
        }),
        command('buildd.cancelJob', async () => {
            await ctx.executeServerCommand(CANCEL_COMMAND, await pickWorkspace());
            vscode.window.setStatusBarMessage('buildd: cancelled', 3000);
        }),
        command('buildd.restartServer', () => ctx.restart()),
        command('buildd.openLog', () => openLog(ctx)),
        command('buildd.openTerminal', () => openTerminal(ctx)),
    ];
}

/** Registers a command whose failure becomes an error message rather than a silent rejection. */
function command(id: string, run: () => Promise<unknown>): vscode.Disposable {
    return vscode.commands.registerCommand(id, async () => {
        try {
            await run();
        } catch (e) {
            void vscode.window.showErrorMessage(`buildd: ${e instanceof Error ? e.message : String(e)}`);
        }
    });
}

class StatusView implements vscode.TextDocumentContentProvider {
    private readonly changed = new vscode.EventEmitter<vscode.Uri>();
    readonly onDidChange = this.changed.event;
    private text = '';

    update(text: string): void {
        this.text = text;
        this.changed.fire(STATUS_URI);
    }

    provideTextDocumentContent(): string {
        return this.text;
    }
}

async function showStatus(ctx: Ctx, view: StatusView): Promise<void> {
    const report = await ctx.status();
    view.update(renderStatus(report));
    const doc = await vscode.workspace.openTextDocument(STATUS_URI);
    await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    await vscode.window.showTextDocument(doc, { preview: true });
}

async function openLog(ctx: Ctx): Promise<void> {
    let logPath: string | undefined;
    try {
        logPath = (await ctx.status()).daemon.log_path;
    } catch (e) {
        logPath = ctx.knownLogPath;
        if (logPath === undefined) {
            throw new Error(`the daemon is not reachable and its log path is not known yet (${String(e)})`);
        }
    }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(logPath));
    const editor = await vscode.window.showTextDocument(doc, { preview: true });
    // The latest lines are the interesting ones.
    const end = new vscode.Position(doc.lineCount, 0);
    editor.revealRange(new vscode.Range(end, end));
}

async function openTerminal(ctx: Ctx): Promise<void> {
    const folder = await pickFolder();
    if (folder === undefined) {
        return;
    }
    const env = await ctx.warmEnv(folder.uri);
    const terminal = vscode.window.createTerminal({
        name: `cargo (buildd): ${folder.name}`,
        cwd: folder.uri,
        env: terminalOptionsEnv(env),
    });
    terminal.show();
}

/** The workspace folder of the active file; with none, the only folder, or the user's pick. */
async function pickFolder(): Promise<vscode.WorkspaceFolder | undefined> {
    const active = vscode.window.activeTextEditor?.document.uri;
    const folder = active === undefined ? undefined : vscode.workspace.getWorkspaceFolder(active);
    if (folder !== undefined) {
        return folder;
    }
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0) {
        throw new Error('open a folder with a cargo workspace first');
    }
    return folders.length === 1 ? folders[0] : vscode.window.showWorkspaceFolderPick();
}

/** A URI in the workspace the user means: the active Rust file's, else a folder's. */
async function pickWorkspace(): Promise<vscode.Uri | undefined> {
    const active = vscode.window.activeTextEditor?.document.uri;
    if (active?.scheme === 'file' && vscode.workspace.getWorkspaceFolder(active) !== undefined) {
        return active;
    }
    return (await pickFolder())?.uri;
}
