/**
 * The one-time offer to turn off rust-analyzer's check on save (see `rust_analyzer.ts` for
 * why). It asks; it never changes rust-analyzer's settings without the user's answer, and it
 * asks once per workspace, whatever the answer.
 */
import * as vscode from 'vscode';

import {
    KEEP,
    OFFER_MESSAGE,
    OFFERED_KEY,
    RUST_ANALYZER_ID,
    shouldOfferToDisableCheckOnSave,
    TURN_OFF,
} from './rust_analyzer';

export async function offerToDisableCheckOnSave(
    extension: vscode.ExtensionContext,
    offerEnabled: boolean,
    log: vscode.LogOutputChannel,
): Promise<void> {
    const raConfig = vscode.workspace.getConfiguration('rust-analyzer');
    const offer = shouldOfferToDisableCheckOnSave({
        rustAnalyzerInstalled: vscode.extensions.getExtension(RUST_ANALYZER_ID) !== undefined,
        checkOnSave: raConfig.get('checkOnSave'),
        alreadyOffered: extension.workspaceState.get<boolean>(OFFERED_KEY) === true,
        offerEnabled,
    });
    if (!offer) {
        return;
    }
    await extension.workspaceState.update(OFFERED_KEY, true);
    const choice = await vscode.window.showInformationMessage(OFFER_MESSAGE, TURN_OFF, KEEP);
    if (choice === TURN_OFF) {
        const target = vscode.workspace.workspaceFolders?.length
            ? vscode.ConfigurationTarget.Workspace
            : vscode.ConfigurationTarget.Global;
        await raConfig.update('checkOnSave', false, target);
        log.info('turned off rust-analyzer.checkOnSave at the user\'s request');
        void vscode.window.showInformationMessage(
            'rust-analyzer\'s check on save is off in this workspace; set rust-analyzer.checkOnSave to turn it back on.',
        );
    }
}
