/**
 * The argument of `buildd.showRenderedDiagnostic`, the command of the code action "Show the
 * full compiler output (buildd)": rustc's rendered text of one diagnostic, as `cargo build`
 * prints it. Pure, without `vscode`, so it is unit-tested; `rendered_view.ts` shows it.
 */

export interface RenderedArgument {
    /** The diagnostic's first message line, for the document's name. */
    title: string;
    rendered: string;
}

/** The command's argument, or a message saying what is wrong with it. */
export function parseRenderedArgument(args: readonly unknown[]): RenderedArgument | string {
    const first = args[0];
    if (typeof first !== 'object' || first === null) {
        return 'buildd.showRenderedDiagnostic needs the argument its code action gives: { title, rendered }';
    }
    const { title, rendered } = first as Record<string, unknown>;
    if (typeof rendered !== 'string') {
        return 'buildd.showRenderedDiagnostic: the argument has no `rendered` text';
    }
    return { title: typeof title === 'string' ? title : '', rendered };
}

/**
 * A file name for the read-only document: the diagnostic's words, without what a path cannot
 * hold, short enough for a tab.
 */
export function renderedDocumentName(title: string): string {
    const words = title.replace(/[/\\:*?"<>|\n\r\t`]+/g, ' ').replace(/\s+/g, ' ').trim();
    const short = words.length > 60 ? `${words.slice(0, 59)}…` : words;
    return `${short || 'compiler output'} (buildd).txt`;
}
