/**
 * The extension's entry point: creates the `Ctx`, registers the commands, starts the server.
 * Everything else lives in the modules it names.
 */
import * as vscode from 'vscode';

import { registerCommands } from './commands';
import { Ctx } from './ctx';
import { offerToDisableCheckOnSave } from './offer';

let ctx: Ctx | undefined;

export function activate(extension: vscode.ExtensionContext): void {
    ctx = new Ctx(extension);
    extension.subscriptions.push(...registerCommands(ctx));
    void offerToDisableCheckOnSave(extension, ctx.resolvedConfig.offerToDisableCheckOnSave, ctx.output);
    // Not awaited: registering a workspace can take a while (cargo metadata), and activation
    // should not wait for it; the status bar shows the progress.
    void ctx.restart();
}

export async function deactivate(): Promise<void> {
    await ctx?.dispose();
    ctx = undefined;
}
