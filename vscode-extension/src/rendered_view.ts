/**
 * The read-only documents that show rustc's rendered output (`buildd-rendered:` URIs), opened
 * by the code action's `buildd.showRenderedDiagnostic`.
 *
 * The server advertises that command, so the language client registers it in VS Code and
 * sends it to the server, which would answer with a `window/showMessage` meant for editors
 * without documents of their own. A second registration of the id by the extension would
 * throw; instead the client's `executeCommand` middleware (in `ctx.ts`) hands the command here.
 */
import * as vscode from 'vscode';

import { parseRenderedArgument, renderedDocumentName } from './rendered';

export const RENDERED_SCHEME = 'buildd-rendered';

export class RenderedView implements vscode.TextDocumentContentProvider, vscode.Disposable {
    private readonly texts = new Map<string, string>();
    private next = 1;
    private readonly registration: vscode.Disposable;

    constructor() {
        this.registration = vscode.workspace.registerTextDocumentContentProvider(RENDERED_SCHEME, this);
    }

    provideTextDocumentContent(uri: vscode.Uri): string {
        return this.texts.get(uri.query) ?? 'buildd: this compiler output is no longer kept; run the code action again';
    }

    /** Opens the command's text beside the editor, as a preview. */
    async show(args: readonly unknown[]): Promise<void> {
        const parsed = parseRenderedArgument(args);
        if (typeof parsed === 'string') {
            throw new Error(parsed);
        }
        // Each opening is a document of its own: the text of an older one stays as it was.
        const key = String(this.next++);
        this.texts.set(key, parsed.rendered);
        const uri = vscode.Uri.from({ scheme: RENDERED_SCHEME, path: `/${renderedDocumentName(parsed.title)}`, query: key });
        const doc = await vscode.workspace.openTextDocument(uri);
        await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
    }

    dispose(): void {
        this.registration.dispose();
        this.texts.clear();
    }
}
